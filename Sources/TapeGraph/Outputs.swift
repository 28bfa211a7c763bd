import TapeCore

/// A bar timeframe, in seconds. Written `1m`, `5m`, `15m`, `1h`, `30s`.
public struct Timeframe: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var seconds: Int64
    public init(seconds: Int64) { self.seconds = seconds }
    public var nanos: Nanos { seconds * TimeUtil.nsPerSecond }
    public static func < (a: Timeframe, b: Timeframe) -> Bool { a.seconds < b.seconds }
    public var description: String {
        if seconds % 86400 == 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
    /// Parses `30s`, `1m`, `15m`, `1h`, `1d`; nil beyond `TimeUtil.durationNanosMax` (366 days).
    public init?(_ s: String) {
        guard let unit = s.last, let n = Int64(s.dropLast()), n > 0 else { return nil }
        let unitSeconds: Int64
        switch unit {
        case "s": unitSeconds = 1
        case "m": unitSeconds = 60
        case "h": unitSeconds = 3600
        case "d": unitSeconds = 86400
        default: return nil
        }
        guard n <= TimeUtil.durationNanosMax / TimeUtil.nsPerSecond / unitSeconds else { return nil }
        seconds = n * unitSeconds
    }
}

/// A closed bar. `start` inclusive, `end` exclusive, both aligned to UTC multiples of the timeframe.
public struct BarOutput: Sendable, Equatable {
    public var symbol: SymbolID
    public var timeframe: Timeframe
    public var start: Nanos
    public var end: Nanos
    public var open: Double
    public var high: Double
    public var low: Double
    public var close: Double
    /// NaN when the input has no volume (e.g. an FX bar file without a volume column).
    public var volume: Double
    /// NaN when volume is NaN or zero.
    public var vwap: Double
    /// Trades in the bar (for bars built from 1-minute bars: the number of input bars).
    public var trades: Int
    public init(symbol: SymbolID, timeframe: Timeframe, start: Nanos, end: Nanos, open: Double, high: Double,
                low: Double, close: Double, volume: Double, vwap: Double, trades: Int) {
        self.symbol = symbol; self.timeframe = timeframe; self.start = start; self.end = end
        self.open = open; self.high = high; self.low = low; self.close = close
        self.volume = volume; self.vwap = vwap; self.trades = trades
    }
}

/// Indicator values at one bar close. NaN while an indicator is in its lookback (printed empty).
public struct IndicatorOutput: Sendable, Equatable {
    public var symbol: SymbolID
    public var timeframe: Timeframe
    public var end: Nanos
    public var sma = Double.nan
    public var ema = Double.nan
    public var rsi = Double.nan
    public var macd = Double.nan
    public var macdSignal = Double.nan
    public var macdHist = Double.nan
    public var bbMiddle = Double.nan
    public var bbUpper = Double.nan
    public var bbLower = Double.nan
    /// Running session VWAP (since the first trade of the UTC day) at this bar close.
    public var sessionVwap = Double.nan
    public init(symbol: SymbolID, timeframe: Timeframe, end: Nanos) {
        self.symbol = symbol; self.timeframe = timeframe; self.end = end
    }
}

public enum Severity: String, Sendable { case info, warning, critical }

/// An anomaly raised by a rule.
public struct AnomalyOutput: Sendable, Equatable {
    public var symbol: SymbolID
    public var time: Nanos
    /// `price_spike`, `volume_spike`, `bad_tick`, `stale_feed`.
    public var rule: String
    public var value: Double
    public var threshold: Double
    public var severity: Severity
    public init(symbol: SymbolID, time: Nanos, rule: String, value: Double, threshold: Double, severity: Severity) {
        self.symbol = symbol; self.time = time; self.rule = rule; self.value = value
        self.threshold = threshold; self.severity = severity
    }
}

/// A tick that arrived after its window had closed (later than the allowed lateness): kept, not dropped.
public struct LateTickOutput: Sendable, Equatable {
    public var symbol: SymbolID
    public var eventTime: Nanos
    public var receiveTime: Nanos
    public var price: Double
    public var size: Double
    /// The watermark when it arrived.
    public var watermark: Nanos
    public init(symbol: SymbolID, eventTime: Nanos, receiveTime: Nanos, price: Double, size: Double, watermark: Nanos) {
        self.symbol = symbol; self.eventTime = eventTime; self.receiveTime = receiveTime
        self.price = price; self.size = size; self.watermark = watermark
    }
}

/// A model prediction at a bar close (forward log return over the model's horizon).
public struct PredictionOutput: Sendable, Equatable {
    public var symbol: SymbolID
    public var timeframe: Timeframe
    public var end: Nanos
    public var prediction: Double
    public init(symbol: SymbolID, timeframe: Timeframe, end: Nanos, prediction: Double) {
        self.symbol = symbol; self.timeframe = timeframe; self.end = end; self.prediction = prediction
    }
}

/// Everything the graph emits.
public enum GraphOutput: Sendable, Equatable {
    case bar(BarOutput)
    case indicators(IndicatorOutput)
    case anomaly(AnomalyOutput)
    case lateTick(LateTickOutput)
    case prediction(PredictionOutput)
    /// What the trading layer did: an order's change, a fill, a position or an equity mark (docs/backtesting.md).
    case trading(TradingOutput)
}

/// Receives what the graph emits, in emission order. Sinks may batch and do I/O; the graph never
/// waits on them.
public protocol GraphSink: AnyObject {
    func emit(_ output: GraphOutput)
}

/// Fans one emission out to several sinks, in order.
public final class SinkFanout: GraphSink {
    public var sinks: [GraphSink]
    public init(_ sinks: [GraphSink]) { self.sinks = sinks }
    public func emit(_ output: GraphOutput) { for s in sinks { s.emit(output) } }
}

/// Collects emissions in memory (tests, training).
public final class CollectingSink: GraphSink {
    public private(set) var outputs: [GraphOutput] = []
    public init() {}
    public func emit(_ output: GraphOutput) { outputs.append(output) }
}

// MARK: - Canonical text (the digest contract and the CSV rows)

extension GraphOutput {
    /// The CSV row of this output in its file (no newline), columns as in the file's header.
    /// The digest line is `<kind>,<row>`.
    public func csvRow(symbols: SymbolTable) -> String {
        let f = Numbers.format
        switch self {
        case .bar(let b):
            return "\(symbols.name(b.symbol)),\(b.timeframe),\(b.start),\(b.end),\(f(b.open)),\(f(b.high)),\(f(b.low)),\(f(b.close)),\(f(b.volume)),\(f(b.vwap)),\(b.trades)"
        case .indicators(let i):
            return "\(symbols.name(i.symbol)),\(i.timeframe),\(i.end),\(f(i.sma)),\(f(i.ema)),\(f(i.rsi)),\(f(i.macd)),\(f(i.macdSignal)),\(f(i.macdHist)),\(f(i.bbMiddle)),\(f(i.bbUpper)),\(f(i.bbLower)),\(f(i.sessionVwap))"
        case .anomaly(let a):
            return "\(symbols.name(a.symbol)),\(a.time),\(a.rule),\(f(a.value)),\(f(a.threshold)),\(a.severity.rawValue)"
        case .lateTick(let l):
            return "\(symbols.name(l.symbol)),\(l.eventTime),\(l.receiveTime),\(f(l.price)),\(f(l.size)),\(l.watermark)"
        case .prediction(let p):
            return "\(symbols.name(p.symbol)),\(p.timeframe),\(p.end),\(f(p.prediction))"
        case .trading(let t):
            return t.csvRow(symbols: symbols)
        }
    }

    /// The symbol this output belongs to (outputs are partitioned and compared per symbol); nil only for
    /// an account-wide trading row (the total equity), which belongs to no symbol.
    public var symbol: SymbolID? {
        switch self {
        case .bar(let bar): return bar.symbol
        case .indicators(let indicators): return indicators.symbol
        case .anomaly(let anomaly): return anomaly.symbol
        case .lateTick(let late): return late.symbol
        case .prediction(let prediction): return prediction.symbol
        case .trading(let trading): return trading.symbol
        }
    }

    /// Short name of the output kind; also the CSV file stem.
    public var kindName: String {
        switch self {
        case .bar: return "bars"
        case .indicators: return "indicators"
        case .anomaly: return "anomalies"
        case .lateTick: return "late_ticks"
        case .prediction: return "predictions"
        case .trading(let trading): return trading.kindName
        }
    }

    public static let csvHeaders: [String: String] = [
        "bars": "symbol,timeframe,start_ns,end_ns,open,high,low,close,volume,vwap,trades",
        "indicators": "symbol,timeframe,end_ns,sma,ema,rsi,macd,macd_signal,macd_hist,bb_middle,bb_upper,bb_lower,session_vwap",
        "anomalies": "symbol,time_ns,rule,value,threshold,severity",
        "late_ticks": "symbol,event_time_ns,receive_time_ns,price,size,watermark_ns",
        "predictions": "symbol,timeframe,end_ns,prediction",
    ].merging(TradingOutput.csvHeaders) { first, _ in first }

    /// One line of the digest's canonical stream (no newline).
    public func canonicalLine(symbols: SymbolTable) -> String { "\(kindName),\(csvRow(symbols: symbols))" }
}
