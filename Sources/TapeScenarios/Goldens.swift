import Foundation
import TapeCore
import TapeIO
import TapeRecordings
import TapeReplay
import TapeSinks

/// How a scenario keeps its goldens in `<name>/expected/` (`golden:` in the scenario file). Every kind
/// keeps `digest` and `digests_by_symbol`; they differ in what is kept of the output CSVs.
public enum GoldenKind: String, Sendable, CaseIterable {
    /// The CSVs as written (`bars.csv`, …): a `git diff` of the goldens reads as the change.
    case full
    /// The CSVs gzip-compressed (`bars.csv.gz`, …): the same comparison, row for row, in a fraction of
    /// the bytes.
    case gzip
    /// No CSVs: per file a row count and SHA-256 of the whole file and of each symbol's rows
    /// (`digests_by_file`), plus the columns named in `golden_columns` as small CSVs
    /// (`<key>.columns.csv`) so that a mismatch still shows which rows changed.
    case digests

    public static let namesText = allCases.map(\.rawValue).joined(separator: ", ")
}

/// Columns of one output file kept as a golden under `golden: digests` (`golden_columns: {bars: [...]}`).
public struct GoldenColumns: Sendable, Equatable {
    /// The `golden_columns` key: one of `keys`.
    public var key: String
    public var columns: [String]
    public init(key: String, columns: [String]) {
        precondition(GoldenColumns.keys.contains(key) && !columns.isEmpty)
        self.key = key
        self.columns = columns
    }

    /// The keys, one per golden file of `ScenarioRunner.goldenFiles`.
    public static let keys = ["bars", "indicators", "anomalies", "late_ticks", "predictions", "model_evaluation",
                              "orders", "fills", "positions", "equity"]
    /// The run-folder file (`bars.csv`, `model/evaluation.csv`).
    public var file: String { key == "model_evaluation" ? "model/evaluation.csv" : key + ".csv" }
    /// The golden's name in `expected/`.
    public var goldenName: String { key + ".columns.csv" }
}

/// The goldens of one scenario: `write` (bless) and `compare` (run). One owner of the layout of
/// `expected/` for every `GoldenKind`.
struct Goldens {
    let scenario: ScenarioFile
    var directory: String { ScenarioRunner.expectedDir(scenario) }
    /// Row counts and digests per file and symbol (`golden: digests`).
    static let fileDigestsName = "digests_by_file"

    /// The name in `expected/` of a run-folder file (`model/evaluation.csv` → `model_evaluation.csv`).
    func goldenName(_ file: String) -> String {
        let flat = file.replacingOccurrences(of: "/", with: "_")
        return scenario.golden == .gzip ? flat + ".gz" : flat
    }

    // MARK: writing (bless)

    /// Replaces `expected/` with the goldens of this run: written into a sibling folder first, then moved
    /// in place, so a failed bless leaves the old goldens as they were.
    func write(_ summary: ReplaySummary) throws {
        let fileManager = FileManager.default
        let staging = directory + ".blessing"
        try? fileManager.removeItem(atPath: staging)
        try fileManager.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? fileManager.removeItem(atPath: staging) }
        try (summary.digest + "\n").write(toFile: staging + "/digest", atomically: true, encoding: .utf8)
        try ScenarioRunner.symbolDigestsText(summary.digestsBySymbol)
            .write(toFile: staging + "/" + ScenarioRunner.symbolDigestsFile, atomically: true, encoding: .utf8)
        let produced = ScenarioRunner.goldenFiles.filter { fileManager.fileExists(atPath: summary.runDir + "/" + $0) }
        switch scenario.golden {
        case .full:
            for file in produced {
                try fileManager.copyItem(atPath: summary.runDir + "/" + file, toPath: staging + "/" + goldenName(file))
            }
        case .gzip:
            for file in produced {
                try Goldens.writeGzip(from: summary.runDir + "/" + file, to: staging + "/" + goldenName(file))
            }
        case .digests:
            var text = ""
            for file in produced {
                text += CSVDigests(lines: ScenarioRunner.lines(summary.runDir + "/" + file)).text(file: file)
            }
            try text.write(toFile: staging + "/" + Goldens.fileDigestsName, atomically: true, encoding: .utf8)
            for selection in scenario.goldenColumns {
                let key = "golden_columns.\(selection.key)"
                guard produced.contains(selection.file) else {
                    throw ScenarioError(file: scenario.path, key: key, message: "the run wrote no \(selection.file)")
                }
                let projected = try Goldens.project(ScenarioRunner.lines(summary.runDir + "/" + selection.file),
                                                    selection.columns)
                    .mapError { ScenarioError(file: scenario.path, key: key, message: $0.message) }.get()
                try (projected.joined(separator: "\n") + "\n")
                    .write(toFile: staging + "/" + selection.goldenName, atomically: true, encoding: .utf8)
            }
        }
        try? fileManager.removeItem(atPath: directory)
        try fileManager.moveItem(atPath: staging, toPath: directory)
    }

    /// gzip of a file (TapeIO's writer: no name, no time in the header, so the bytes depend on the text).
    static func writeGzip(from source: String, to destination: String) throws {
        guard let data = FileManager.default.contents(atPath: source) else {
            throw ScenarioError(file: source, key: "", message: "cannot read")
        }
        let writer = try GzipWriter(path: destination, level: 9)
        data.withUnsafeBytes { writer.write(bytes: $0) }
        try writer.close()
    }

    // MARK: comparing (run)

    /// The differences between this run's CSVs and the goldens (the digests are compared by the runner).
    /// `blessed`: the scenario has a golden digest (else a CSV without a golden is not a failure yet).
    /// `maxRows`: differing rows shown per CSV.
    func compare(_ summary: ReplaySummary, blessed: Bool, maxRows: Int) -> [String] {
        switch scenario.golden {
        case .full, .gzip: return compareFiles(summary, blessed: blessed, maxRows: maxRows)
        case .digests: return compareDigests(summary) + compareColumns(summary, maxRows: maxRows)
        }
    }

    private func compareFiles(_ summary: ReplaySummary, blessed: Bool, maxRows: Int) -> [String] {
        let fileManager = FileManager.default
        var failures: [String] = []
        for file in ScenarioRunner.goldenFiles {
            let expectedPath = directory + "/" + goldenName(file)
            let actualPath = summary.runDir + "/" + file
            let hasExpected = fileManager.fileExists(atPath: expectedPath)
            let hasActual = fileManager.fileExists(atPath: actualPath)
            if !hasExpected && !hasActual { continue }
            if hasExpected && !hasActual {
                failures.append("\(file): expected file, run produced none")
                continue
            }
            if !hasExpected {
                if blessed { failures.append("\(file): produced, but no golden \(expectedPath) (bless to accept)") }
                continue
            }
            let expected: [String]
            switch Goldens.readLines(expectedPath) {
            case .success(let lines): expected = lines
            case .failure(let problem):
                failures.append("\(file): golden \(expectedPath) unreadable: \(problem.message)")
                continue
            }
            failures += ScenarioRunner.diff(name: file, expected: expected,
                                            actual: ScenarioRunner.lines(actualPath), maxRows: maxRows)
        }
        return failures
    }

    private func compareDigests(_ summary: ReplaySummary) -> [String] {
        let path = directory + "/" + Goldens.fileDigestsName
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            return ["no golden \(path) (golden: digests; run `tape scenario bless \(scenario.name)`)"]
        }
        let expected = CSVDigests.parse(text)
        var actual: [CSVDigests.Key: CSVDigests.Entry] = [:]
        for file in ScenarioRunner.goldenFiles where FileManager.default.fileExists(atPath: summary.runDir + "/" + file) {
            for (key, entry) in CSVDigests(lines: ScenarioRunner.lines(summary.runDir + "/" + file)).entries(file: file) {
                actual[key] = entry
            }
        }
        var failures: [String] = []
        for key in Set(expected.keys).union(actual.keys).sorted() {
            let label = key.symbol.map { "\(key.file) [\($0)]" } ?? key.file
            switch (expected[key], actual[key]) {
            case let (wanted?, got?) where wanted != got:
                failures.append("\(label): expected \(wanted.rows) rows (sha256 \(wanted.sha256.prefix(16))…), "
                                + "got \(got.rows) rows (sha256 \(got.sha256.prefix(16))…)")
            case let (wanted?, nil): failures.append("\(label): expected \(wanted.rows) rows, got none")
            case let (nil, got?): failures.append("\(label): \(got.rows) rows, none expected")
            default: break
            }
        }
        return failures
    }

    private func compareColumns(_ summary: ReplaySummary, maxRows: Int) -> [String] {
        var failures: [String] = []
        for selection in scenario.goldenColumns {
            let name = "\(selection.file) [\(selection.columns.joined(separator: ", "))]"
            let expectedPath = directory + "/" + selection.goldenName
            guard FileManager.default.fileExists(atPath: expectedPath) else {
                failures.append("\(name): no golden \(expectedPath) (bless to accept)")
                continue
            }
            let actualPath = summary.runDir + "/" + selection.file
            guard FileManager.default.fileExists(atPath: actualPath) else {
                failures.append("\(name): expected file, run produced none")
                continue
            }
            switch Goldens.project(ScenarioRunner.lines(actualPath), selection.columns) {
            case .success(let actual):
                failures += ScenarioRunner.diff(name: name, expected: ScenarioRunner.lines(expectedPath),
                                                actual: actual, maxRows: maxRows)
            case .failure(let problem):
                failures.append("\(name): \(problem.message)")
            }
        }
        return failures
    }

    // MARK: CSV helpers

    struct Problem: Error {
        var message: String
    }

    /// The lines of a plain or gzip file (TapeIO's reader), without their newlines.
    static func readLines(_ path: String) -> Result<[String], Problem> {
        guard path.hasSuffix(".gz") else { return .success(ScenarioRunner.lines(path)) }
        let reader: LineReader
        do { reader = try LineReader(path: path, rejects: nil, threaded: false) } catch {
            return .failure(Problem(message: "\(error)"))
        }
        var lines: [String] = []
        while let line = reader.next() { lines.append(String(decoding: line, as: UTF8.self)) }
        if let failure = reader.readFailure { return .failure(Problem(message: failure)) }
        if let issue = reader.stream.issues.first { return .failure(Problem(message: "\(issue.kind): \(issue.detail)")) }
        return .success(lines)
    }

    /// The CSV lines (header first) reduced to `columns`, in that order; fields re-quoted as the sinks quote.
    static func project(_ lines: [String], _ columns: [String]) -> Result<[String], Problem> {
        guard let header = lines.first.map(Goldens.fields) else { return .failure(Problem(message: "empty file")) }
        var positions: [Int] = []
        for column in columns {
            guard let position = header.firstIndex(of: column) else {
                return .failure(Problem(message: "no column '\(column)' (columns: \(header.joined(separator: ", ")))"))
            }
            positions.append(position)
        }
        return .success(lines.map { line in
            let fields = Goldens.fields(line)
            return positions.map { $0 < fields.count ? CSV.field(fields[$0]) : "" }.joined(separator: ",")
        })
    }

    /// The fields of one CSV line (RFC 4180 quotes, `CSVRow`); an unterminated quote gives the line whole.
    static func fields(_ line: String) -> [String] {
        var row = CSVRow()
        return Array(line.utf8).withUnsafeBytes { buffer in
            guard row.split(buffer) else { return [line] }
            return (0..<row.count).map { row.string($0) }
        }
    }
}

/// Row counts and SHA-256 of one output CSV: the whole file (header and rows, in order), and each
/// symbol's rows in order (by its `symbol` column, when it has one). Written to `digests_by_file` as
/// `<file> <rows> <sha256>` and `<file> <rows> <sha256> <symbol>` lines (the symbol last: it may hold
/// spaces): per file (in `ScenarioRunner.goldenFiles` order) the whole file first, then its symbols sorted.
struct CSVDigests {
    struct Key: Hashable, Comparable {
        var file: String
        /// nil: the whole file.
        var symbol: String?
        static func < (a: Key, b: Key) -> Bool {
            if a.file != b.file { return a.file < b.file }
            switch (a.symbol, b.symbol) {
            case let (first?, second?): return first < second
            case (nil, _?): return true
            default: return false
            }
        }
    }
    struct Entry: Equatable {
        var rows: Int
        var sha256: String
    }

    let lines: [String]

    func entries(file: String) -> [(Key, Entry)] {
        var result = [(Key(file: file, symbol: nil), Entry(rows: max(0, lines.count - 1),
                                                          sha256: FileHash.sha256(text: lines.map { $0 + "\n" }.joined())))]
        guard let header = lines.first.map(Goldens.fields), let symbolColumn = header.firstIndex(of: "symbol") else {
            return result
        }
        var rowsBySymbol: [String: [String]] = [:]
        for line in lines.dropFirst() {
            let fields = Goldens.fields(line)
            rowsBySymbol[symbolColumn < fields.count ? fields[symbolColumn] : "", default: []].append(line)
        }
        for symbol in rowsBySymbol.keys.sorted() {
            let rows = rowsBySymbol[symbol]!
            result.append((Key(file: file, symbol: symbol),
                           Entry(rows: rows.count, sha256: FileHash.sha256(text: rows.map { $0 + "\n" }.joined()))))
        }
        return result
    }

    func text(file: String) -> String {
        entries(file: file).map { key, entry in
            "\(key.file) \(entry.rows) \(entry.sha256)" + (key.symbol.map { " " + $0 } ?? "") + "\n"
        }.joined()
    }

    static func parse(_ text: String) -> [Key: Entry] {
        var result: [Key: Entry] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 3, let rows = Int(parts[1]) else { continue }
            result[Key(file: parts[0], symbol: parts.count == 4 ? parts[3] : nil)] = Entry(rows: rows, sha256: parts[2])
        }
        return result
    }
}
