import TapeCore
import TapeIO
import TapeSources
import TapeFeeds

/// An input that cannot be used at all (cannot be opened, format not recognised).
public struct UnusableInputError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Detects a recording's format from its first non-empty line, never from the file name.
public enum FormatDetector {
    public static func detect(path: String) throws -> RecordingFormat {
        let r: LineReader
        do { r = try LineReader(path: path, rejects: nil, threaded: false) }
        catch { throw UnusableInputError("\(error)") }
        while let l = r.next() {
            if l.count == 0 { continue }
            if let f = detect(firstLine: String(decoding: l.prefix(4096), as: UTF8.self)) { return f }
            throw UnusableInputError("\(path): unknown format (first line: \(String(decoding: l.prefix(100), as: UTF8.self))); use --format")
        }
        throw UnusableInputError("\(path): empty or unreadable (no line could be read)")
    }

    public static func detect(firstLine l: String) -> RecordingFormat? {
        let digits = l.prefix(while: { $0.isNumber })
        if digits.count >= 10, l.dropFirst(digits.count).hasPrefix(" {") || l.dropFirst(digits.count).hasPrefix(" [") { return .rawCapture }
        let cols = Set(l.split(separator: ",").map { String($0).trimmingCharacters(in: " \"\r\u{FEFF}") })
        if cols.isSuperset(of: ["event_time_ns", "receive_time_ns", "symbol", "kind"]) { return .tickCSV }
        if cols.isSuperset(of: ["ticker", "sip_timestamp", "bid_price", "ask_price"]) { return .polygonQuotes }
        if cols.isSuperset(of: ["ticker", "sip_timestamp", "price", "size"]) { return .polygonTrades }
        if cols.isSuperset(of: ["ticker", "window_start", "open", "close"]) { return .polygonMinuteAggs }
        if cols.isSuperset(of: ["exchange", "symbol", "timestamp", "local_timestamp", "price", "amount"]) { return .tardisTrades }
        if cols.isSuperset(of: ["timestamp", "open", "high", "low", "close"]) { return .bars }
        return nil
    }
}

/// Opens a recording as an `EventSource`: `format` nil = detected from the content.
public func openSource(path: String, format: RecordingFormat?, options: ReaderOptions) throws -> EventSource {
    let f = try format ?? FormatDetector.detect(path: path)
    do {
        switch f {
        case .rawCapture: return try RawCaptureReader<BinanceDecoder>(path: path, options: options)
        case .tickCSV: return try CSVEventReader<TickRowDecoder>(path: path, options: options)
        case .polygonTrades: return try CSVEventReader<PolygonTradeRowDecoder>(path: path, options: options)
        case .polygonQuotes: return try CSVEventReader<PolygonQuoteRowDecoder>(path: path, options: options)
        case .polygonMinuteAggs: return try CSVEventReader<PolygonMinuteAggRowDecoder>(path: path, options: options)
        case .tardisTrades: return try CSVEventReader<TardisTradeRowDecoder>(path: path, options: options)
        case .bars: return try CSVEventReader<BarRowDecoder>(path: path, options: options)
        }
    } catch let e as UnusableInputError { throw e } catch { throw UnusableInputError("\(error)") }
}
