import TapeCore
import TapeGraph

/// The kinds of graph output, in a fixed order (an index for per-kind arrays). The name is the CSV
/// file stem and the first field of the digest line.
public enum OutputKind: Int, CaseIterable, Sendable {
    case bars, indicators, anomalies, lateTicks, predictions
    /// The trading layer's rows (docs/backtesting.md).
    case orders, fills, positions, equity

    public init(_ output: GraphOutput) {
        switch output {
        case .bar: self = .bars
        case .indicators: self = .indicators
        case .anomaly: self = .anomalies
        case .lateTick: self = .lateTicks
        case .prediction: self = .predictions
        case .trading(.order): self = .orders
        case .trading(.fill): self = .fills
        case .trading(.position): self = .positions
        case .trading(.equity): self = .equity
        }
    }

    /// The trading kinds, in file order.
    public static let trading: [OutputKind] = [.orders, .fills, .positions, .equity]

    /// Same text as `GraphOutput.kindName`.
    public var name: String {
        switch self {
        case .bars: return "bars"
        case .indicators: return "indicators"
        case .anomalies: return "anomalies"
        case .lateTicks: return "late_ticks"
        case .predictions: return "predictions"
        case .orders: return "orders"
        case .fills: return "fills"
        case .positions: return "positions"
        case .equity: return "equity"
        }
    }

    public var csvHeader: String { GraphOutput.csvHeaders[name]! }
}

/// Formats each output once, into a reused byte buffer, as its canonical digest line
/// `<kind>,<csv row>\n` — the bytes of `GraphOutput.canonicalLine(symbols:)` plus the newline. The CSV
/// row (with its newline) is the tail from `rowStart`. The digest hashes `line`, the run folder
/// writes `row`: one formatting feeds both.
///
/// No allocation per output once the buffer has grown to the longest line (numbers through
/// `Numbers.append`; see there for the rare long numbers that still make a String).
public struct OutputLineFormatter {
    /// Starting capacity; lines are about 60–250 bytes.
    public static let initialCapacity = 512
    public private(set) var bytes: [UInt8] = []
    /// Offset of the CSV row in `bytes` (after `<kind>,`).
    public private(set) var rowStart = 0
    public private(set) var kind = OutputKind.bars
    /// nil for an account-wide trading row.
    public private(set) var symbol: SymbolID? = 0

    public init() { bytes.reserveCapacity(OutputLineFormatter.initialCapacity) }

    /// Formats `output` into `bytes` (replacing the previous line). `symbols` is read for the name.
    public mutating func format(_ output: GraphOutput, symbols: SymbolTable) {
        bytes.removeAll(keepingCapacity: true)
        kind = OutputKind(output)
        symbol = output.symbol
        appendText(kind.name)
        rowStart = bytes.count + 1
        appendComma()
        if case .trading(let trading) = output {
            // Rare (an order, a fill, a mark per bar): formatted as a String by the record itself.
            appendText(trading.csvRow(symbols: symbols))
            bytes.append(UInt8(ascii: "\n"))
            return
        }
        bytes.append(contentsOf: symbols.utf8(output.symbol!))
        switch output {
        case .bar(let bar):
            appendField(bar.timeframe)
            appendField(bar.start)
            appendField(bar.end)
            appendField(bar.open)
            appendField(bar.high)
            appendField(bar.low)
            appendField(bar.close)
            appendField(bar.volume)
            appendField(bar.vwap)
            appendField(Int64(bar.trades))
        case .indicators(let indicators):
            appendField(indicators.timeframe)
            appendField(indicators.end)
            appendField(indicators.sma)
            appendField(indicators.ema)
            appendField(indicators.rsi)
            appendField(indicators.macd)
            appendField(indicators.macdSignal)
            appendField(indicators.macdHist)
            appendField(indicators.bbMiddle)
            appendField(indicators.bbUpper)
            appendField(indicators.bbLower)
            appendField(indicators.sessionVwap)
        case .anomaly(let anomaly):
            appendField(anomaly.time)
            appendComma()
            appendText(anomaly.rule)
            appendField(anomaly.value)
            appendField(anomaly.threshold)
            appendComma()
            appendText(anomaly.severity.rawValue)
        case .lateTick(let lateTick):
            appendField(lateTick.eventTime)
            appendField(lateTick.receiveTime)
            appendField(lateTick.price)
            appendField(lateTick.size)
            appendField(lateTick.watermark)
        case .prediction(let prediction):
            appendField(prediction.timeframe)
            appendField(prediction.end)
            appendField(prediction.prediction)
        case .trading:
            break
        }
        bytes.append(UInt8(ascii: "\n"))
        assert(rowStart <= bytes.count && bytes[rowStart - 1] == UInt8(ascii: ","), "row follows `<kind>,`")
    }

    /// Calls `body` with the whole line `<kind>,<row>\n`.
    @inline(__always)
    public func withLine<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBytes(body)
    }

    /// Calls `body` with the CSV row and its newline.
    @inline(__always)
    public func withRow<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[rowStart...])) }
    }

    @inline(__always) private mutating func appendComma() { bytes.append(UInt8(ascii: ",")) }

    private mutating func appendText(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    private mutating func appendField(_ value: Double) {
        appendComma()
        Numbers.append(value, to: &bytes)
    }

    private mutating func appendField(_ value: Int64) {
        appendComma()
        Numbers.append(value, to: &bytes)
    }

    /// Same text as `Timeframe.description` (`1d`, `4h`, `15m`, `30s`).
    private mutating func appendField(_ timeframe: Timeframe) {
        appendComma()
        let seconds = timeframe.seconds
        let secondsPerDay: Int64 = 86_400
        let secondsPerHour: Int64 = 3_600
        let secondsPerMinute: Int64 = 60
        if seconds % secondsPerDay == 0 {
            Numbers.append(seconds / secondsPerDay, to: &bytes)
            bytes.append(UInt8(ascii: "d"))
        } else if seconds % secondsPerHour == 0 {
            Numbers.append(seconds / secondsPerHour, to: &bytes)
            bytes.append(UInt8(ascii: "h"))
        } else if seconds % secondsPerMinute == 0 {
            Numbers.append(seconds / secondsPerMinute, to: &bytes)
            bytes.append(UInt8(ascii: "m"))
        } else {
            Numbers.append(seconds, to: &bytes)
            bytes.append(UInt8(ascii: "s"))
        }
    }
}
