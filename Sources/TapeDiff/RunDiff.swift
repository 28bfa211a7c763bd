import TapeEngine
import TapeReports
import TapeSinks

/// Compares two run folders output by output, per symbol and kind — the live-vs-replay check.
///
///     let comparison = RunDiff.compare(try RunFolder(path: a), try RunFolder(path: b), maxRows: 5)
///     print(comparison.text())          // exit 0 when comparison.equal, else 1
///
/// Fast path: when both summaries list the same symbols with the same per-symbol digests, the runs
/// are equal and no CSV is read. Otherwise only the symbols whose digests differ are compared row by
/// row, in every kind's CSV (read with `CSVTable`, columns by the names of `GraphOutput.csvHeaders`).
/// The global digest is not used to decide: it also changes when symbols are interleaved differently
/// (partitioned workers), which leaves each symbol's outputs unchanged (docs/architecture.md).
public enum RunDiff {
    /// Largest `maxRows`: the rows shown per kind and symbol (the count of differing rows is always whole).
    public static let maxRowsLimit = 10_000

    public static func compare(_ runA: RunFolder, _ runB: RunFolder, maxRows: Int) -> RunComparison {
        precondition((0...maxRowsLimit).contains(maxRows), "maxRows within 0 ... \(maxRowsLimit)")
        let digestsA = runA.summary.digestsBySymbol
        let digestsB = runB.summary.digestsBySymbol
        let symbolsA = Set(digestsA.keys)
        let symbolsB = Set(digestsB.keys)
        var comparison = RunComparison(runA: runA.path, runB: runB.path)
        comparison.globalDigestEqual = runA.summary.digest == runB.summary.digest
        comparison.onlyInA = symbolsA.subtracting(symbolsB).sorted().map {
            SymbolPresence(symbol: $0, outputs: runA.summary.eventsOutBySymbol[$0] ?? 0)
        }
        comparison.onlyInB = symbolsB.subtracting(symbolsA).sorted().map {
            SymbolPresence(symbol: $0, outputs: runB.summary.eventsOutBySymbol[$0] ?? 0)
        }
        let common = symbolsA.intersection(symbolsB).sorted()
        comparison.symbolsInBoth = common.count
        comparison.differingSymbols = common.filter { digestsA[$0] != digestsB[$0] }
        comparison.notes = notes(runA, runB)
        comparison.digestsEqual = comparison.differingSymbols.isEmpty && comparison.onlyInA.isEmpty
            && comparison.onlyInB.isEmpty
        if comparison.differingSymbols.isEmpty {
            comparison.equal = comparison.digestsEqual
            return comparison
        }
        var tablesA = RunTables(folder: runA)
        var tablesB = RunTables(folder: runB)
        for kind in OutputKind.allCases {
            let tableA = tablesA.table(kind)
            let tableB = tablesB.table(kind)
            if tableA.header != tableB.header && !tableA.isAbsent && !tableB.isAbsent {
                comparison.notes.append("\(kind.name).csv: headers differ (A: \(tableA.header.joined(separator: ",")); "
                                        + "B: \(tableB.header.joined(separator: ","))); rows not compared")
                continue
            }
            for symbol in comparison.differingSymbols {
                if let difference = compareRows(kind: kind, symbol: symbol, tableA, tableB, maxRows: maxRows) {
                    comparison.kinds.append(difference)
                }
            }
        }
        for symbol in comparison.differingSymbols where !comparison.kinds.contains(where: { $0.symbol == symbol }) {
            comparison.notes.append("\(symbol): digests differ but every CSV row is equal "
                                    + "(a CSV of one run is incomplete or was edited)")
        }
        comparison.equal = false
        return comparison
    }

    /// What the two summaries say that explains a difference: other inputs, config, an interrupted run.
    static func notes(_ runA: RunFolder, _ runB: RunFolder) -> [String] {
        var notes: [String] = []
        for (label, run) in [("A", runA), ("B", runB)]
        where run.summary.interrupted || run.summary.stop != "end_of_stream" {
            notes.append("\(label) stopped early (\(run.summary.stop)): its outputs end at the stop")
        }
        if runA.summary.configHash != runB.summary.configHash { notes.append("the runs used different configs") }
        let inputsA = runA.summary.inputs.map { $0.sha256 ?? $0.path }
        let inputsB = runB.summary.inputs.map { $0.sha256 ?? $0.path }
        if inputsA != inputsB { notes.append("the runs read different inputs (sha256 or paths)") }
        if runA.summary.symbols != runB.summary.symbols { notes.append("the runs used different --symbols filters") }
        return notes
    }

    /// The differing rows of one kind for one symbol; nil when its rows are equal in both runs.
    static func compareRows(kind: OutputKind, symbol: String, _ tableA: RunTable, _ tableB: RunTable,
                            maxRows: Int) -> KindDifference? {
        let rowsA = tableA.rows(of: symbol)
        let rowsB = tableB.rows(of: symbol)
        if rowsA == rowsB { return nil }
        let identity = RowIdentity(kind: kind)
        // Rows are matched by identity (time, timeframe or rule, and the how-many-th such row), so a row
        // present in one run only does not shift every later row into a difference.
        var keyedB: [String: Int] = [:]
        var occurrences: [String: Int] = [:]
        for (index, row) in rowsB.enumerated() {
            let key = identity.key(row, table: tableB)
            let occurrence = occurrences[key, default: 0]
            occurrences[key] = occurrence + 1
            keyedB["\(key)#\(occurrence)"] = index
        }
        occurrences.removeAll()
        var matchedB = Set<Int>()
        var entries: [(time: Int64, order: Int, difference: RowDifference)] = []
        for (index, row) in rowsA.enumerated() {
            let key = identity.key(row, table: tableA)
            let occurrence = occurrences[key, default: 0]
            occurrences[key] = occurrence + 1
            let other = keyedB["\(key)#\(occurrence)"]
            if let other { matchedB.insert(other) }
            let rowB = other.map { rowsB[$0] }
            if rowB == row { continue }
            entries.append((identity.time(row, table: tableA), index,
                            RowDifference(key: identity.display(row, symbol: symbol, table: tableA),
                                          rowA: row, rowB: rowB, header: tableA.header)))
        }
        for (index, row) in rowsB.enumerated() where !matchedB.contains(index) {
            entries.append((identity.time(row, table: tableB), rowsA.count + index,
                            RowDifference(key: identity.display(row, symbol: symbol, table: tableB),
                                          rowA: nil, rowB: row, header: tableB.header)))
        }
        assert(!entries.isEmpty, "unequal row lists have at least one differing row")
        entries.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        return KindDifference(kind: kind.name, symbol: symbol, rowsA: rowsA.count, rowsB: rowsB.count,
                              differingRows: entries.count, rows: entries.prefix(maxRows).map(\.difference))
    }
}

/// Which columns identify a row of each kind (its key), and which one holds its time. Column names are
/// those of `GraphOutput.csvHeaders`, looked up with `CSVTable.column(_:of:)`, which refuses any other.
struct RowIdentity {
    let kind: OutputKind
    /// The time column first, then the columns that tell apart rows at one time.
    var columns: [String] {
        switch kind {
        case .bars, .indicators, .predictions: return ["end_ns", "timeframe"]
        case .anomalies: return ["time_ns", "rule"]
        case .lateTicks: return ["event_time_ns", "receive_time_ns"]
        case .orders: return ["time_ns", "order_id", "status"]
        case .fills: return ["time_ns", "order_id", "fill_number"]
        case .positions: return ["time_ns"]
        case .equity: return ["time_ns", "scope"]
        }
    }

    func key(_ row: [String], table: RunTable) -> String {
        columns.map { table.value($0, in: row) }.joined(separator: ",")
    }

    func time(_ row: [String], table: RunTable) -> Int64 {
        Int64(table.value(columns[0], in: row)) ?? 0
    }

    /// `<time_ns> <symbol> <timeframe|rule|receive time>`: the row key as printed.
    func display(_ row: [String], symbol: String, table: RunTable) -> String {
        let values = columns.map { table.value($0, in: row) }
        return "\(values[0]) \(symbol) \(values.dropFirst().joined(separator: " "))"
    }
}

/// One CSV file of a run, its rows grouped by symbol (in file order). An absent file has no rows.
struct RunTable {
    let header: [String]
    let isAbsent: Bool
    private let rowsBySymbol: [String: [[String]]]
    /// Positions of the columns the diff reads (the symbol and the row identity), found once by name.
    private let columnsByName: [String: Int]

    init(kind: OutputKind, table: CSVTable?) {
        isAbsent = table == nil
        header = table?.header ?? []
        var columns: [String: Int] = [:]
        if let table {
            for name in ["symbol"] + RowIdentity(kind: kind).columns {
                columns[name] = table.column(name, of: kind.name)
            }
        }
        columnsByName = columns
        var grouped: [String: [[String]]] = [:]
        if let table, let symbolColumn = columns["symbol"] {
            for row in table.rows { grouped[row[symbolColumn], default: []].append(row) }
        }
        rowsBySymbol = grouped
    }

    func rows(of symbol: String) -> [[String]] { rowsBySymbol[symbol] ?? [] }

    /// The value of `name` (a symbol or row-identity column) in `row`; "" when this file has no such column.
    func value(_ name: String, in row: [String]) -> String {
        guard let column = columnsByName[name], column < row.count else { return "" }
        return row[column]
    }
}

/// A run's CSV files, each read once when first needed.
struct RunTables {
    let folder: RunFolder
    private var loaded: [OutputKind: RunTable] = [:]

    init(folder: RunFolder) { self.folder = folder }

    mutating func table(_ kind: OutputKind) -> RunTable {
        if let table = loaded[kind] { return table }
        let table = RunTable(kind: kind, table: CSVTable.load(folder.file("\(kind.name).csv")))
        loaded[kind] = table
        return table
    }
}
