import TapeCore
import TapeIO
import TapeSources

/// What a row decoder made of one CSV row.
public enum RowResult {
    case event
    case reject(RejectReason, String)
}

/// A header that does not fit the format.
public struct HeaderMismatch: Error { public let detail: String; public init(_ d: String) { detail = d } }

/// Turns rows of one CSV format into `MarketEvent`s. Columns are found by name in the header, so
/// their order may vary.
public protocol CSVRowDecoder {
    static var format: RecordingFormat { get }
    /// Whether `sequence` is a real id (duplicate check) or just the line number.
    static var checkDuplicates: Bool { get }
    init(header: [String], options: ReaderOptions, path: String) throws
    mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult
}

extension CSVRowDecoder {
    /// Index of a required column.
    static func column(_ header: [String], _ name: String) throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw HeaderMismatch("missing column '\(name)' (header: \(header.joined(separator: ",")))")
        }
        return i
    }
}

/// A streaming reader for any CSV format (gzip or plain): header by name, one reject per bad row
/// naming file and line, every event through `EventValidator`. A header that does not fit gives one
/// `unknown_header` reject and no events.
public final class CSVEventReader<D: CSVRowDecoder>: EventSource {
    public let name: String
    public var format: RecordingFormat { D.format }
    public var formatName: String { D.format.rawValue }
    /// Counters so far; the byte counts come from the line reader as it goes (progress while reading).
    public var stats: SourceStats { lines.progress(of: counters) }
    private var counters = SourceStats()
    private let lines: LineReader
    private var decoder: D?
    private var row = CSVRow()
    private let validator: EventValidator
    private let rejects: RejectHandler
    private let sourceIndex: UInt32
    private var minFields = 0

    public convenience init(path: String, options: ReaderOptions, threaded: Bool = true) throws {
        self.init(lines: try LineReader(path: path, rejects: options.rejects, threaded: threaded,
                                        maxLineBytes: options.maxLineBytes),
                  options: options)
    }

    /// Reads from `lines` (possibly peeked by `FormatDetector`: the first line is still to come).
    public init(lines: LineReader, options: ReaderOptions) {
        let path = lines.fileName
        name = path
        rejects = options.rejects
        sourceIndex = options.sourceIndex
        self.lines = lines
        validator = EventValidator(file: path, options: options, checkDuplicates: D.checkDuplicates)
        // Header: the first non-empty line. One that cannot be used is one `unknown_header` reject, and
        // the input is marked unusable (no event can come from it: the run ends with exit 4).
        while let l = lines.next() {
            counters.lines += 1
            if l.count == 0 { continue }
            var r = CSVRow()
            guard r.split(l) else {
                refuseHeader(options, "not a \(D.format.rawValue) header: unterminated quote in \(snippet(l))")
                break
            }
            let header = (0..<r.count).map { r.string($0).trimmingCharacters(in: " \u{FEFF}") }
            do { decoder = try D(header: header, options: options, path: path); minFields = header.count }
            catch let m as HeaderMismatch { refuseHeader(options, "not a \(D.format.rawValue) header: \(m.detail)") }
            catch { refuseHeader(options, "not a \(D.format.rawValue) header: \(error)") }
            break
        }
    }

    private func refuseHeader(_ options: ReaderOptions, _ detail: String) {
        options.rejects.reject(Reject(file: name, line: lines.lineNumber, reason: .unknownHeader, detail: detail))
        counters.rejected += 1
        counters.unusable = "\(name): no event read: the content is not \(D.format.rawValue) "
            + "(line \(lines.lineNumber) is not its header)"
    }

    public func next(_ e: inout MarketEvent) -> SourceStep {
        guard decoder != nil else { return .end }
        while let l = lines.next() {
            counters.lines += 1
            if l.count == 0 { continue }
            let ln = lines.lineNumber
            if !row.split(l) { reject(ln, .malformedLine, "unterminated quote: \(snippet(l))"); continue }
            if row.count != minFields {
                reject(ln, .malformedLine, "expected \(minFields) fields, got \(row.count): \(snippet(l))"); continue
            }
            e = MarketEvent()
            switch decoder!.decode(row, line: ln, into: &e) {
            case .reject(let reason, let detail): reject(ln, reason, detail); continue
            case .event:
                e.source = sourceIndex
                if validator.check(&e, line: ln) { counters.events += 1; return .event }
                counters.rejected += 1
            }
        }
        return .end
    }

    private func reject(_ line: Int, _ reason: RejectReason, _ detail: String) {
        counters.rejected += 1
        rejects.reject(Reject(file: name, line: line, reason: reason, detail: detail))
    }

    private func snippet(_ l: UnsafeRawBufferPointer) -> String {
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: l[0..<min(l.count, 80)]), as: UTF8.self)
        return l.count > 80 ? s + "…" : s
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

@inline(__always) func badNumber(_ row: CSVRow, _ i: Int, _ name: String) -> RowResult {
    .reject(.badNumber, "\(name) '\(row.string(i))' is not a number")
}
@inline(__always) func badTime(_ row: CSVRow, _ i: Int, _ name: String) -> RowResult {
    .reject(.badTimestamp, "\(name) '\(row.string(i))' is not a timestamp")
}
@inline(never) func outOfRangeTime(_ row: CSVRow, _ i: Int, _ name: String) -> RowResult {
    .reject(.badTimestamp, "\(name) '\(row.string(i))' is outside the accepted range \(TimeUtil.acceptedRangeText)")
}
/// A name column (symbol, exchange, conditions) whose bytes are not a valid name (invalid UTF-8 or a
/// control byte): never interned.
@inline(never) func badSymbol(_ row: CSVRow, _ i: Int, _ name: String) -> RowResult {
    .reject(.badSymbol, "\(name) \(SymbolTable.escaped(row.bytes(i))) is not UTF-8 text without control bytes")
}
/// Interns a text column (exchange, conditions) into `id` (left as is when the field is empty); false when
/// its bytes are not a valid name.
@inline(__always) func internText(_ row: CSVRow, _ i: Int, _ table: SymbolTable, into id: inout SymbolID) -> Bool {
    if row.isEmpty(i) { return true }
    id = table.intern(bytes: row.bytes(i))
    return id != 0
}
