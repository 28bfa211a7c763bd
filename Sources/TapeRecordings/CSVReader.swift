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

/// How a CSV input is split, decided when its decoder is made from the first line.
public struct CSVShape: Equatable, Sendable {
    /// `,` for every format but bar files, which may use `;` or tab.
    public var separator: UInt8
    /// Fields in every row: a row with another count is a `malformed_line`.
    public var fieldCount: Int
    /// The first non-empty line is already a row (a bar file without a header).
    public var firstLineIsData: Bool
    public init(separator: UInt8 = UInt8(ascii: ","), fieldCount: Int, firstLineIsData: Bool = false) {
        self.separator = separator
        self.fieldCount = fieldCount
        self.firstLineIsData = firstLineIsData
    }
}

/// Turns rows of one CSV format into `MarketEvent`s. Columns are found by name in the header, so
/// their order may vary.
public protocol CSVRowDecoder {
    static var format: RecordingFormat { get }
    /// Whether `sequence` is a real id (duplicate check) or just the line number.
    static var checkDuplicates: Bool { get }
    /// Lines after the first that the decoder looks at before it is made (0: the header alone). The
    /// reader copies them and hands them to `decode` afterwards, in order, with their line numbers.
    static var sampleLinesMax: Int { get }
    init(header: [String], options: ReaderOptions, path: String) throws
    /// The decoder and the input's shape, from its first non-empty line (a leading byte order mark
    /// removed) and the `sampleLinesMax` lines after it. Throws `HeaderMismatch` when the input is not
    /// of this format. The default splits a comma header and calls `init(header:options:path:)`.
    static func make(firstLine: UnsafeRawBufferPointer, sample: [[UInt8]], options: ReaderOptions,
                     path: String) throws -> (Self, CSVShape)
    /// What the decoder decided about the input's layout (bar files), stated in the summary; nil when
    /// the format leaves nothing to decide.
    var layout: InputLayout? { get }
    mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult
}

extension CSVRowDecoder {
    public static var sampleLinesMax: Int { 0 }
    public var layout: InputLayout? { nil }

    public static func make(firstLine: UnsafeRawBufferPointer, sample: [[UInt8]], options: ReaderOptions,
                            path: String) throws -> (Self, CSVShape) {
        var row = CSVRow()
        guard row.split(firstLine) else { throw HeaderMismatch("unterminated quote in \(csvSnippet(firstLine))") }
        let header = (0..<row.count).map { row.string($0).trimmingCharacters(in: " \u{FEFF}") }
        return (try Self(header: header, options: options, path: path), CSVShape(fieldCount: header.count))
    }

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
    public var layout: InputLayout? { decoder?.pointee.layout }
    private var counters = SourceStats()
    private let lines: LineReader
    /// The decoder, nil when the header was refused. Held in memory of its own so that `decode` mutates
    /// it in place: `next` is generic code (reached through the vtable, never specialized), where a
    /// mutating call through an `Optional<D>` copies the decoder in and out on every row — retain and
    /// release of each of its references (a bar decoder's names and layout) per row.
    private var decoder: UnsafeMutablePointer<D>? = nil
    private var row = CSVRow()
    private let validator: EventValidator
    private let rejects: RejectHandler
    private let sourceIndex: UInt32
    private var minFields = 0
    private var separator = UInt8(ascii: ",")
    /// Lines read before the decoder was made (its sample), handed out before the rest of the input.
    private var sampled: SampledLines? = nil

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
        var firstLine: [UInt8] = []
        var firstLineNumber = 0
        while let l = lines.next() {
            counters.lines += 1
            if l.count == 0 { continue }
            let bom = l.count >= 3 && l[0] == 0xEF && l[1] == 0xBB && l[2] == 0xBF
            firstLine = Array(bom ? UnsafeRawBufferPointer(rebasing: l[3...]) : l)
            firstLineNumber = lines.lineNumber
            break
        }
        guard firstLineNumber > 0 else { return }
        let sample = SampledLines()
        while sample.count < D.sampleLinesMax, let l = lines.next() {
            counters.lines += 1
            sample.append(l, line: lines.lineNumber)
        }
        do {
            let (made, shape) = try firstLine.withUnsafeBytes {
                try D.make(firstLine: $0, sample: sample.lines, options: options, path: path)
            }
            let memory = UnsafeMutablePointer<D>.allocate(capacity: 1)
            memory.initialize(to: made)
            decoder = memory
            minFields = shape.fieldCount
            separator = shape.separator
            if shape.firstLineIsData { sample.prepend(firstLine, line: firstLineNumber) }
            if sample.count > 0 { sampled = sample }
        } catch let m as HeaderMismatch {
            refuseHeader(options, line: firstLineNumber, "not a \(D.format.rawValue) header: \(m.detail)")
        } catch {
            refuseHeader(options, line: firstLineNumber, "not a \(D.format.rawValue) header: \(error)")
        }
    }

    deinit {
        decoder?.deinitialize(count: 1)
        decoder?.deallocate()
    }

    private func refuseHeader(_ options: ReaderOptions, line: Int, _ detail: String) {
        options.rejects.reject(Reject(file: name, line: line, reason: .unknownHeader, detail: detail))
        counters.rejected += 1
        counters.unusable = "\(name): no event read: the content is not \(D.format.rawValue) "
            + "(line \(line) is not its header: \(detail))"
    }

    public func next(_ e: inout MarketEvent) -> SourceStep {
        guard let decoder else { return .end }
        while true {
            let l: UnsafeRawBufferPointer
            let ln: Int
            if _slowPath(sampled != nil) {
                guard let (line, number) = sampled!.next() else { sampled = nil; continue }
                l = line
                ln = number
            } else {
                guard let line = lines.next() else { return .end }
                counters.lines += 1
                l = line
                ln = lines.lineNumber
            }
            if l.count == 0 { continue }
            if !row.split(l, separator: separator) {
                reject(ln, .malformedLine, "unterminated quote: \(csvSnippet(l))"); continue
            }
            if row.count != minFields {
                reject(ln, .malformedLine, "expected \(minFields) fields, got \(row.count): \(csvSnippet(l))"); continue
            }
            e = MarketEvent()
            switch decoder.pointee.decode(row, line: ln, into: &e) {
            case .reject(let reason, let detail): reject(ln, reason, detail); continue
            case .event:
                e.source = sourceIndex
                if validator.check(&e, line: ln) { counters.events += 1; return .event }
                counters.rejected += 1
            }
        }
    }

    private func reject(_ line: Int, _ reason: RejectReason, _ detail: String) {
        counters.rejected += 1
        rejects.reject(Reject(file: name, line: line, reason: reason, detail: detail))
    }
}

/// Lines copied while a decoder looked at them (`CSVRowDecoder.sampleLinesMax`), handed out again in
/// order with their line numbers. Filled once, then frozen into one buffer that is read once.
final class SampledLines {
    private var collected: [UInt8] = []
    private var ranges: [(start: Int, count: Int, line: Int)] = []
    private var frozen: UnsafeMutableRawBufferPointer? = nil
    private var nextIndex = 0

    deinit { frozen?.deallocate() }

    var count: Int { ranges.count }
    /// The lines' bytes, for the decoder to look at.
    var lines: [[UInt8]] { ranges.map { Array(collected[$0.start..<($0.start + $0.count)]) } }

    func append(_ line: UnsafeRawBufferPointer, line number: Int) {
        precondition(frozen == nil, "append before reading")
        ranges.append((collected.count, line.count, number))
        collected.append(contentsOf: line)
    }

    /// Puts `line` before the others (a first line that is already a row).
    func prepend(_ line: [UInt8], line number: Int) {
        precondition(frozen == nil, "prepend before reading")
        ranges = ranges.map { ($0.start + line.count, $0.count, $0.line) }
        ranges.insert((0, line.count, number), at: 0)
        collected.insert(contentsOf: line, at: 0)
    }

    /// The next line (valid while this object lives) and its number; nil after the last.
    func next() -> (UnsafeRawBufferPointer, Int)? {
        if frozen == nil {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(collected.count, 1), alignment: 1)
            collected.withUnsafeBytes { buffer.copyMemory(from: $0) }
            collected = []
            frozen = buffer
        }
        guard nextIndex < ranges.count else { return nil }
        let range = ranges[nextIndex]
        nextIndex += 1
        return (UnsafeRawBufferPointer(rebasing: frozen![range.start..<(range.start + range.count)]), range.line)
    }
}

/// The start of a line for a message (80 bytes, then `…`).
func csvSnippet(_ l: UnsafeRawBufferPointer) -> String {
    let s = String(decoding: UnsafeRawBufferPointer(rebasing: l[0..<min(l.count, 80)]), as: UTF8.self)
    return l.count > 80 ? s + "…" : s
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
