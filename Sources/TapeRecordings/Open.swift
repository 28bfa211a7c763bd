import TapeCore
import TapeIO
import TapeSources
import TapeFeeds

/// An input that cannot be used at all (cannot be opened, format not recognised).
public struct UnusableInputError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = MessageText.escaped(d) }
}

/// Detects a recording's format from its first non-empty line, never from the file name.
///
/// Detection peeks at the line through the reader's own `LineReader` (`peekFirstLine`): the input is
/// opened once and the reader continues from the same buffer, so standard input (`-`), a FIFO or
/// `<(zcat …)` lose nothing.
public enum FormatDetector {
    /// What an unrecognised first line should have been, for the message.
    static let expected = "expected a bar file (\(BarLayoutDetector.expected)), a Tape tick CSV, Polygon/Massive "
        + "or tardis.dev CSV header, or a raw capture (docs/formats.md); or give --format"

    /// The format of the input behind `lines`, leaving its first line unread. `fallback` is taken for
    /// a text line no format recognises (`--columns` given: a bar file); nil throws.
    public static func detect(lines: LineReader, fallback: RecordingFormat? = nil) throws -> RecordingFormat {
        let path = lines.fileName
        guard let line = lines.peekFirstLine() else {
            if let readFailure = lines.readFailure { throw UnusableInputError("\(path): \(readFailure)") }
            throw UnusableInputError("\(path): empty (no line could be read)")
        }
        if let format = detect(firstLine: String(decoding: line.prefix(4096), as: UTF8.self)) { return format }
        if !looksLikeText(line) {
            let bytes = MessageText.hex(lines.stream.firstBytes)
            throw UnusableInputError(lines.stream.isPlain
                ? "\(path): not gzip or text: first bytes \(bytes)"
                : "\(path): gzip holding something that is not text: first decompressed bytes "
                    + MessageText.hex(line.prefix(16)))
        }
        if let fallback { return fallback }
        throw UnusableInputError("\(path): unknown format (first line: "
                                 + "\(String(decoding: line.prefix(200), as: UTF8.self))); \(expected)")
    }

    /// The format of the file at `path` (opens it; for a pipe use `detect(lines:)` on the reader's lines).
    public static func detect(path: String) throws -> RecordingFormat {
        let lines: LineReader
        do { lines = try LineReader(path: path, rejects: nil, threaded: false) }
        catch { throw UnusableInputError("\(error)") }
        return try detect(lines: lines)
    }

    /// Text: no control byte but tab and carriage return in the first 256 bytes of the line.
    static func looksLikeText(_ line: UnsafeRawBufferPointer) -> Bool {
        !line.prefix(256).contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0D }
    }

    public static func detect(firstLine l: String) -> RecordingFormat? {
        if l.hasPrefix(RawCapture.Header.prefix) { return .rawCapture }
        let digits = l.prefix(while: { $0.isNumber })
        if digits.count >= 10, l.dropFirst(digits.count).hasPrefix(" {") || l.dropFirst(digits.count).hasPrefix(" [") { return .rawCapture }
        let cols = Set(l.split(separator: ",").map { String($0).trimmingCharacters(in: " \"\r\u{FEFF}") })
        if cols.isSuperset(of: ["event_time_ns", "receive_time_ns", "symbol", "kind"]) { return .tickCSV }
        if cols.isSuperset(of: ["ticker", "sip_timestamp", "bid_price", "ask_price"]) { return .polygonQuotes }
        if cols.isSuperset(of: ["ticker", "sip_timestamp", "price", "size"]) { return .polygonTrades }
        if cols.isSuperset(of: ["ticker", "window_start", "open", "close"]) { return .polygonMinuteAggs }
        if cols.isSuperset(of: ["exchange", "symbol", "timestamp", "local_timestamp", "price", "amount"]) { return .tardisTrades }
        if BarLayoutDetector.looksLikeBarFile(firstLine: Array(l.utf8)) { return .bars }
        return nil
    }
}

/// Opens a recording as an `EventSource`: `format` nil = detected from the content. The input is opened
/// once (`path` `-` is standard input); detection and the reader share one `LineReader`.
public func openSource(path: String, format: RecordingFormat?, options: ReaderOptions) throws -> EventSource {
    do {
        let lines = try LineReader(path: path, rejects: options.rejects, maxLineBytes: options.maxLineBytes)
        // Peeked even when the format is given: a leading byte order mark is dropped the same way.
        let detected: RecordingFormat
        if let format {
            _ = lines.peekFirstLine()
            detected = format
        } else {
            detected = try FormatDetector.detect(lines: lines, fallback: options.bars.columns.isEmpty ? nil : .bars)
        }
        switch detected {
        case .rawCapture: return try openRawCapture(lines: lines, options: options)
        case .tickCSV: return CSVEventReader<TickRowDecoder>(lines: lines, options: options)
        case .polygonTrades: return CSVEventReader<PolygonTradeRowDecoder>(lines: lines, options: options)
        case .polygonQuotes: return CSVEventReader<PolygonQuoteRowDecoder>(lines: lines, options: options)
        case .polygonMinuteAggs: return CSVEventReader<PolygonMinuteAggRowDecoder>(lines: lines, options: options)
        case .tardisTrades: return CSVEventReader<TardisTradeRowDecoder>(lines: lines, options: options)
        case .bars: return CSVEventReader<BarRowDecoder>(lines: lines, options: options)
        }
    } catch let e as UnusableInputError { throw e } catch { throw UnusableInputError("\(error)") }
}

/// A raw capture: Binance unless its first line is a `RawCapture.Header` naming another wire protocol.
/// `options.venue` (`--venue`) wins over the header's venue, which wins over the file name.
func openRawCapture(lines: LineReader, options: ReaderOptions) throws -> EventSource {
    let first = lines.peekFirstLine().map { String(decoding: $0.prefix(512), as: UTF8.self) } ?? ""
    let header: RawCapture.Header?
    do { header = try RawCapture.Header.parse(first) } catch { throw UnusableInputError("\(lines.fileName): \(error)") }
    guard let header else { return RawCaptureReader<BinanceDecoder>(lines: lines, options: options) }
    let venue = options.venue ?? header.venue
    let ids = header.wireProtocol.hasIds
    switch header.wireProtocol {
    case .binance:
        return RawCaptureReader(lines: lines, options: options,
                                decoder: BinanceDecoder(symbols: options.symbols, venue: venue), checkDuplicates: ids)
    case .polygon:
        return RawCaptureReader(lines: lines, options: options,
                                decoder: PolygonDecoder(symbols: options.symbols, venue: venue), checkDuplicates: ids)
    case .finage:
        return RawCaptureReader(lines: lines, options: options,
                                decoder: FinageDecoder(symbols: options.symbols, venue: venue), checkDuplicates: ids)
    case .alphavantage:
        return RawCaptureReader(lines: lines, options: options,
                                decoder: AlphaVantageDecoder(symbols: options.symbols, venue: venue),
                                checkDuplicates: ids)
    case .fmp:
        return RawCaptureReader(lines: lines, options: options,
                                decoder: FMPDecoder(symbols: options.symbols, venue: venue), checkDuplicates: ids)
    case .clock:
        return RawCaptureReader(lines: lines, options: options, decoder: ClockOnlyDecoder(), checkDuplicates: ids)
    }
}
