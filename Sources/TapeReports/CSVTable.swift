import TapeCore
import TapeGraph
import TapeRecordings
import TapeIO

/// A CSV file of a run folder, read with the project's CSV reader (`LineReader` + `CSVRow`: quoted
/// fields with `""` unescaped, plain or gzip): the header's names and the rows. Columns are found by
/// name in the header, never by position; a row whose field count differs from the header's is
/// dropped (it cannot be read by name).
///
///     let bars = CSVTable.load(runDir + "/bars.csv")
///     let close = bars?.column("close", of: "bars")   // a column of GraphOutput.csvHeaders["bars"]
///     for row in bars?.rows ?? [] { print(row[close!]) }
public struct CSVTable: Sendable {
    public var header: [String]
    public var rows: [[String]]

    /// A table from lines already split into fields: the first is the header.
    init(lines: [[String]]) {
        header = lines.first ?? []
        let width = header.count
        rows = lines.dropFirst().filter { $0.count == width }
        assert(rows.allSatisfy { $0.count == header.count })
    }

    public init(text: String) {
        var lines: [[String]] = []
        var row = CSVRow()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            var bytes = Array(line.utf8)
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            bytes.withUnsafeBytes { buffer in
                if row.split(buffer) { lines.append(CSVTable.fields(row)) }
            }
        }
        self.init(lines: lines)
    }

    /// The file at `path` (plain or gzip); nil when it cannot be opened.
    public static func load(_ path: String) -> CSVTable? {
        guard let reader = try? LineReader(path: path, rejects: nil, threaded: false) else { return nil }
        var lines: [[String]] = []
        var row = CSVRow()
        while let line = reader.next() {
            if line.count > 0 && row.split(line) { lines.append(fields(row)) }
        }
        return CSVTable(lines: lines)
    }

    static func fields(_ row: CSVRow) -> [String] { (0..<row.count).map { row.string($0) } }

    /// Position of the column `name` in this file's header; nil when the file has no such column.
    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }

    /// Position of `name` in a file the graph's sinks wrote (`kind`: `bars`, `indicators`, …). The
    /// name must be a column of `GraphOutput.csvHeaders[kind]`, the one schema of those files: asking
    /// for any other name is a bug in the reader, caught here rather than read as an empty column.
    public func column(_ name: String, of kind: String) -> Int? {
        precondition(CSVTable.schema(kind).contains(name), "'\(name)' is not a column of \(kind).csv")
        return column(name)
    }

    /// The column names of the graph's CSV file `kind`, from `GraphOutput.csvHeaders`.
    static func schema(_ kind: String) -> [String] {
        (GraphOutput.csvHeaders[kind] ?? "").split(separator: ",").map(String.init)
    }
}
