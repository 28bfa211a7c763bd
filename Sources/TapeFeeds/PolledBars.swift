import TapeCore

/// The bars of one polled message (REST vendors answer with the last N bars, newest first, and
/// successive polls overlap), turned into events exactly as the 1-minute bar reader turns a row into one
/// (`BarRowDecoder`: kind `.bar`, event time = bar open + 1 minute), with two rules the reader does not
/// need:
/// - **never twice**: per symbol the end time of the newest bar emitted is kept; only newer bars are
///   emitted, oldest first;
/// - **complete only**: a bar whose end is after the message's receive time is still forming and is
///   not emitted (a later poll emits it once complete).
/// `sequence` = the bar's end time in minutes since the epoch (increasing per symbol).
/// Shared by `AlphaVantageDecoder` and `FMPDecoder`.
public struct PolledBars {
    struct Bar {
        var openTime: Nanos
        var open, high, low, close, volume: Double
    }

    private var newestEnd: [SymbolID: Nanos] = [:]
    /// Snapshot state of quote endpoints: per symbol, the trading day and the day volume last seen.
    private var newestDayVolume: [SymbolID: (day: Int64, volume: Double)] = [:]
    private var pending: [Bar] = []

    public init() {}

    /// End time of the newest bar emitted for `symbol` (nil: none yet).
    public func newestEndTime(of symbol: SymbolID) -> Nanos? { newestEnd[symbol] }

    /// Decoders mark an unparsable number with a signaling NaN (a quiet NaN is a parsed `"NaN"`, which
    /// the validator reports as `nan_value`); the name of the first one marked, nil if none.
    static func firstBadNumber(
        _ open: Double, _ high: Double, _ low: Double, _ close: Double, _ volume: Double,
        names: (String, String, String, String, String)
    ) -> String? {
        if open.isSignalingNaN { return names.0 }
        if high.isSignalingNaN { return names.1 }
        if low.isSignalingNaN { return names.2 }
        if close.isSignalingNaN { return names.3 }
        return volume.isSignalingNaN ? names.4 : nil
    }

    mutating func beginMessage() { pending.removeAll(keepingCapacity: true) }

    mutating func add(_ bar: Bar) { pending.append(bar) }

    var pendingCount: Int { pending.count }

    /// Appends the new complete bars of this message to `out`, oldest first; returns how many.
    mutating func emit(symbol: SymbolID, receiveTime: Nanos, into out: inout [MarketEvent]) -> Int {
        // Vendors send newest first; sorting a few hundred bars once per poll is off the hot path.
        pending.sort { $0.openTime < $1.openTime }
        var newest = newestEnd[symbol] ?? Nanos.min
        var count = 0
        for bar in pending {
            let end = bar.openTime + TimeUtil.nsPerMinute
            if end > receiveTime { break }  // still forming (and every later bar too)
            if end <= newest { continue }  // emitted by an earlier poll (or twice in this one)
            out.append(
                .bar(
                    endTime: end, receiveTime: receiveTime, symbol: symbol, open: bar.open, high: bar.high,
                    low: bar.low, close: bar.close, volume: bar.volume,
                    sequence: end / TimeUtil.nsPerMinute))
            newest = end
            count += 1
        }
        if count > 0 { newestEnd[symbol] = newest }
        pending.removeAll(keepingCapacity: true)
        return count
    }

    /// A quote snapshot (day volume so far, last price) → the volume traded since the previous snapshot
    /// of the same day (the whole day volume for the day's first snapshot), or nil when the volume did
    /// not grow (a repeated snapshot). Updates the per-symbol state.
    mutating func volumeSincePreviousSnapshot(symbol: SymbolID, day: Int64, dayVolume: Double) -> Double? {
        let previous = newestDayVolume[symbol]
        let base = previous.map { $0.day == day ? $0.volume : (day > $0.day ? 0 : Double.infinity) } ?? 0
        guard dayVolume > base else { return nil }
        newestDayVolume[symbol] = (day, dayVolume)
        return dayVolume - base
    }
}
