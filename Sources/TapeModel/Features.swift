import TapeCore
import TapeGraph
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One feature row: the bar it belongs to and its feature values (order = `FeatureBuilder.featureNames`).
public struct FeatureRow: Sendable, Equatable {
    public var symbol: SymbolID
    public var timeframe: Timeframe
    /// Bar end (the row's time: it uses only outputs emitted at or before this bar's close).
    public var end: Nanos
    public var close: Double
    public var values: [Double]
    public init(symbol: SymbolID, timeframe: Timeframe, end: Nanos, close: Double, values: [Double]) {
        self.symbol = symbol; self.timeframe = timeframe; self.end = end; self.close = close; self.values = values
    }

    /// Bitwise equality (NaN == NaN), for tests and determinism checks.
    public func bitwiseEqual(_ o: FeatureRow) -> Bool {
        symbol == o.symbol && timeframe == o.timeframe && end == o.end && close.bitPattern == o.close.bitPattern
            && values.count == o.values.count && zip(values, o.values).allSatisfy { $0.bitPattern == $1.bitPattern }
    }
}

/// Turns the graph's `.bar` / `.indicators` outputs into one feature vector per bar close, per
/// (symbol, timeframe). A row is produced when the `.indicators` output of a bar arrives (it follows
/// that bar's `.bar`). State per (symbol, timeframe) is a few fixed-size rings; producing a row into a
/// caller's buffer does not allocate. Uses only what was emitted so far: no look-ahead.
///
/// Features (fixed names, fixed order; NaN where not yet defined):
/// - `ret_1`, `ret_2`, `ret_3`, `ret_5`, `ret_10`: log(close_t / close_{t-k}), k bars back (bar count, not
///   clock time: a gap in the data is not filled).
/// - `bb_pos`: (close − bb_middle) / (bb_upper − bb_lower) (NaN if the band width is 0 or NaN).
/// - `rsi`: RSI / 100.
/// - `macd_hist`: MACD histogram / close.
/// - `sma_dev`: (close − sma) / close. `ema_dev`: (close − ema) / close.
/// - `log_vol_ratio`: log(volume_t / mean(volume over the 20 bars ending at t, t included)); NaN with
///   fewer than 20 bars, NaN/zero volume or a zero mean.
/// - `range`: (high − low) / close.
/// - `tod_sin`, `tod_cos`: sin/cos(2π · m / 1440), m = UTC minute of day of the bar end.
public final class FeatureBuilder: GraphSink, DownstreamNode {
    public static let featureNames: [String] = [
        "ret_1", "ret_2", "ret_3", "ret_5", "ret_10",
        "bb_pos", "rsi", "macd_hist", "sma_dev", "ema_dev",
        "log_vol_ratio", "range", "tod_sin", "tod_cos",
    ]
    public static var featureCount: Int { featureNames.count }
    public static let volumeWindow = 20
    static let lags = [1, 2, 3, 5, 10]
    static let closeRing = 16  // > max lag

    struct Key: Hashable { var symbol: SymbolID; var seconds: Int64 }

    final class State {
        var closes = [Double](repeating: .nan, count: FeatureBuilder.closeRing)
        var nCloses = 0
        var vols = [Double](repeating: .nan, count: FeatureBuilder.volumeWindow)
        var nVols = 0
        var pending: BarOutput? = nil
    }

    /// Only these timeframes produce rows (nil = all).
    public let timeframes: Set<Timeframe>?
    private var states: [Key: State] = [:]
    /// Called with each row when used as a sink/node (allocates the row's array).
    public var onRow: ((FeatureRow) -> Void)?

    public init(timeframes: Set<Timeframe>? = nil, onRow: ((FeatureRow) -> Void)? = nil) {
        self.timeframes = timeframes
        self.onRow = onRow
    }

    /// Feeds one output. When it completes a bar close, writes the row's features into `out`
    /// (`featureCount` long) and returns the bar; otherwise returns nil and leaves `out` alone.
    public func consume(_ output: GraphOutput, into out: UnsafeMutableBufferPointer<Double>) -> BarOutput? {
        switch output {
        case .bar(let b):
            if let tfs = timeframes, !tfs.contains(b.timeframe) { return nil }
            let st = state(Key(symbol: b.symbol, seconds: b.timeframe.seconds))
            st.closes[st.nCloses % FeatureBuilder.closeRing] = b.close
            st.nCloses += 1
            st.vols[st.nVols % FeatureBuilder.volumeWindow] = b.volume
            st.nVols += 1
            st.pending = b
            return nil
        case .indicators(let ind):
            if let tfs = timeframes, !tfs.contains(ind.timeframe) { return nil }
            guard let st = states[Key(symbol: ind.symbol, seconds: ind.timeframe.seconds)],
                  let b = st.pending, b.end == ind.end else { return nil }
            st.pending = nil
            fill(st, b, ind, out)
            return b
        default:
            return nil
        }
    }

    /// Allocating convenience: the row completed by `output`, if any.
    public func consume(_ output: GraphOutput) -> FeatureRow? {
        var vals = [Double](repeating: .nan, count: FeatureBuilder.featureCount)
        let bar = vals.withUnsafeMutableBufferPointer { consume(output, into: $0) }
        guard let b = bar else { return nil }
        return FeatureRow(symbol: b.symbol, timeframe: b.timeframe, end: b.end, close: b.close, values: vals)
    }

    public func emit(_ output: GraphOutput) {
        if let r = consume(output) { onRow?(r) }
    }

    public func process(_ output: GraphOutput, emit: (GraphOutput) -> Void) {
        if let r = consume(output) { onRow?(r) }
    }

    /// Snapshot (docs/snapshot.md): per (symbol, timeframe), sorted by symbol then timeframe: the close
    /// and volume rings with their counts, and the bar waiting for its indicators.
    public func snapshot(into writer: inout SnapshotWriter) {
        let keys = states.keys.sorted { ($0.symbol, $0.seconds) < ($1.symbol, $1.seconds) }
        writer.appendCount(keys.count)
        for key in keys {
            guard let state = states[key] else { preconditionFailure("a sorted key is in the table") }
            writer.append(UInt32(key.symbol))
            writer.append(key.seconds)
            writer.appendCount(state.nCloses)
            for close in state.closes { writer.append(close) }
            writer.appendCount(state.nVols)
            for volume in state.vols { writer.append(volume) }
            writer.append(state.pending != nil)
            if let bar = state.pending { FeatureBuilder.write(bar, &writer) }
        }
    }

    public func restore(from reader: inout SnapshotReader) throws {
        let stateBytesMin = 8 * (FeatureBuilder.closeRing + FeatureBuilder.volumeWindow)
        let count = try reader.readCount(minimumElementBytes: stateBytesMin)
        var restored: [Key: State] = [:]
        for _ in 0..<count {
            let key = Key(symbol: try reader.readUInt32(), seconds: try reader.readInt64())
            let state = State()
            state.nCloses = try reader.readCount(minimumElementBytes: 0)
            for index in 0..<FeatureBuilder.closeRing { state.closes[index] = try reader.readDouble() }
            state.nVols = try reader.readCount(minimumElementBytes: 0)
            for index in 0..<FeatureBuilder.volumeWindow { state.vols[index] = try reader.readDouble() }
            if try reader.readBool() { state.pending = try FeatureBuilder.readBar(&reader) }
            guard restored.updateValue(state, forKey: key) == nil else { throw reader.error("feature state repeated") }
        }
        states = restored
    }

    static func write(_ bar: BarOutput, _ writer: inout SnapshotWriter) {
        writer.append(UInt32(bar.symbol))
        writer.append(bar.timeframe.seconds)
        writer.append(bar.start)
        writer.append(bar.end)
        for value in [bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap] { writer.append(value) }
        writer.append(Int64(bar.trades))
    }

    static func readBar(_ reader: inout SnapshotReader) throws -> BarOutput {
        let symbol = try reader.readUInt32()
        let seconds = try reader.readInt64()
        guard seconds > 0 else { throw reader.error("bar timeframe of \(seconds) s") }
        return BarOutput(symbol: symbol, timeframe: Timeframe(seconds: seconds), start: try reader.readInt64(),
                         end: try reader.readInt64(), open: try reader.readDouble(), high: try reader.readDouble(),
                         low: try reader.readDouble(), close: try reader.readDouble(), volume: try reader.readDouble(),
                         vwap: try reader.readDouble(), trades: Int(try reader.readInt64()))
    }

    private func state(_ k: Key) -> State {
        if let s = states[k] { return s }
        let s = State()
        states[k] = s
        return s
    }

    private func fill(_ st: State, _ b: BarOutput, _ ind: IndicatorOutput, _ out: UnsafeMutableBufferPointer<Double>) {
        precondition(out.count >= FeatureBuilder.featureCount)
        let c = b.close
        let ring = FeatureBuilder.closeRing
        let last = st.nCloses - 1  // index of this bar's close
        for (j, k) in FeatureBuilder.lags.enumerated() {
            if last - k >= 0 {
                out[j] = log(c / st.closes[(last - k) % ring])
            } else {
                out[j] = .nan
            }
        }
        let width = ind.bbUpper - ind.bbLower
        out[5] = (width.isFinite && width != 0) ? (c - ind.bbMiddle) / width : .nan
        out[6] = ind.rsi / 100
        out[7] = ind.macdHist / c
        out[8] = (c - ind.sma) / c
        out[9] = (c - ind.ema) / c
        var lv = Double.nan
        if st.nVols >= FeatureBuilder.volumeWindow && b.volume.isFinite && b.volume > 0 {
            var sum = 0.0
            // Sum in chronological order (oldest first) so the value is independent of ring position.
            let n = FeatureBuilder.volumeWindow
            for i in 0..<n { sum += st.vols[(st.nVols - n + i) % n] }
            let mean = sum / Double(n)
            if mean.isFinite && mean > 0 { lv = log(b.volume / mean) }
        }
        out[10] = lv
        out[11] = (b.high - b.low) / c
        var minute = (b.end / TimeUtil.nsPerMinute) % 1440
        if minute < 0 { minute += 1440 }
        let ang = 2 * Double.pi * Double(minute) / 1440
        out[12] = sin(ang)
        out[13] = cos(ang)
    }
}
