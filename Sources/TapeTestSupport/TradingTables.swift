import Foundation
import TapeCore
import TapeStore
import XCTest

/// Paper trading in the stores, for the tests of several targets: a trading config that trades within a few
/// minutes of a capture, and the PostgreSQL tables (migration 3) held against the run folder's orders.csv,
/// fills.csv, positions.csv and equity.csv that the same run wrote — the reference is the files, read here
/// with a CSV split of this file's own, never the store's code.
public enum TradingTables {
    /// 5-second bars so that a few minutes of a capture trade: a MACD cross and an RSI reversion (shorts on)
    /// on them, marked every 5 s, 20 ms of latency; the RSI's orders are large enough to take more than the
    /// displayed size of a quote now and then (orders filled in several fills). The file also sets the
    /// timeframes (it is merged over the pipeline config).
    public static let fiveSecondConfig = """
        timeframes: [5s, 1m]
        trading:
          mark_timeframe: 5s
          execution: {latency: 20ms, fee_bps: 1, slippage_bps: 0.5}
          strategies:
            - {type: macd_cross, timeframe: 5s, quantity: 0.01}
            - {type: rsi_mean_reversion, timeframe: 5s, quantity: 2, lower: 40, upper: 60, allow_short: true}

        """

    /// Writes `fiveSecondConfig` to `folder/trading.yaml`; its path.
    public static func writeConfig(in folder: String) throws -> String {
        let path = folder + "/trading.yaml"
        try fiveSecondConfig.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A CSV of the run folder: header, then rows as fields. No field of these files holds a comma or a quote
    /// in these runs (the tags are strategy names, the reasons plain words): checked, as this reader does not
    /// unquote.
    public static func csv(_ path: String) throws -> (header: [String], rows: [[String]]) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertFalse(text.contains("\""), "\(path): a quoted field")
        var lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = lines.removeFirst()
        return (header, lines)
    }

    /// A number's text in one form whatever printed it (PostgreSQL's float8 output, the run folder's
    /// `Numbers.format`): the shortest round trip of the double; empty for NULL and NaN.
    public static func canonicalNumber(_ text: String?) -> String {
        guard let text, !text.isEmpty, let value = Double(text) else { return "" }
        return Numbers.format(value)
    }

    /// The rows of `table` (the columns `columns`) equal the CSV's rows that `keep` selects, as multisets,
    /// numbers compared as doubles.
    public static func assertTableEqualsCSV(_ connection: PostgresConnection, table: String, csv path: String,
                                            columns: [String], numeric: Set<String>,
                                            keep: ([String]) -> Bool = { _ in true },
                                            file: StaticString = #filePath, line: UInt = #line) throws {
        let (header, rows) = try csv(path)
        let indices = try columns.map { name in try XCTUnwrap(header.firstIndex(of: name), "\(path): \(name)") }
        func normal(_ row: [String?]) -> [String] {
            zip(columns, row).map { name, value in numeric.contains(name) ? canonicalNumber(value) : (value ?? "") }
        }
        let expected = rows.filter(keep).map { row in normal(indices.map { row[$0] }) }
            .sorted { $0.lexicographicallyPrecedes($1) }
        let stored = try connection.query("SELECT \(columns.joined(separator: ", ")) FROM \(table)")
            .map(normal).sorted { $0.lexicographicallyPrecedes($1) }
        XCTAssertEqual(stored.count, expected.count, "\(table): rows", file: file, line: line)
        if stored != expected {
            let missing = expected.filter { !stored.contains($0) }.prefix(3)
            let extra = stored.filter { !expected.contains($0) }.prefix(3)
            XCTFail("\(table) differs from \(path): missing \(Array(missing)), extra \(Array(extra))", file: file, line: line)
        }
    }

    /// The four trading tables of the database at `url` against `runFolder`: orders, fills, positions and the
    /// symbols' equity rows row for row; each order change's `sequence` is its place among its order's rows in
    /// orders.csv and each fill's number its place among its order's fills in fills.csv (a file holds an
    /// order's rows in the order they happened); every position row after a fill names a stored fill of that
    /// instant, one per fill, the others are marks. Returns the number of fills.
    @discardableResult
    public static func assertStoredEqualsRunFolder(_ url: String, runFolder: String,
                                                   file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let connection = try PostgresConnection(url: url)
        try assertTableEqualsCSV(connection, table: "orders", csv: runFolder + "/orders.csv",
                                 columns: ["symbol", "time_ns", "order_id", "side", "type", "tif", "quantity", "limit_price",
                                           "stop_price", "status", "filled_quantity", "tag", "reason"],
                                 numeric: ["quantity", "limit_price", "stop_price", "filled_quantity"], file: file, line: line)
        try assertTableEqualsCSV(connection, table: "fills", csv: runFolder + "/fills.csv",
                                 columns: ["symbol", "time_ns", "order_id", "fill_number", "side", "price", "quantity", "fee",
                                           "rule", "arrival_ns", "tag"],
                                 numeric: ["price", "quantity", "fee"], file: file, line: line)
        try assertTableEqualsCSV(connection, table: "positions", csv: runFolder + "/positions.csv",
                                 columns: ["symbol", "time_ns", "quantity", "average_price", "realized_pnl", "unrealized_pnl",
                                           "fees", "mark_price"],
                                 numeric: ["quantity", "average_price", "realized_pnl", "unrealized_pnl", "fees", "mark_price"],
                                 file: file, line: line)
        try assertTableEqualsCSV(connection, table: "equity", csv: runFolder + "/equity.csv",
                                 columns: ["symbol", "time_ns", "cash", "equity", "gross_exposure"],
                                 numeric: ["cash", "equity", "gross_exposure"], keep: { $0[2] == "symbol" },
                                 file: file, line: line)

        var expectedSequences: [String] = []
        var seen: [String: Int] = [:]
        for row in try csv(runFolder + "/orders.csv").rows {
            let order = row[0] + " " + row[2]
            seen[order, default: 0] += 1
            expectedSequences.append([row[0], row[1], row[2], row[9], String(seen[order]!)].joined(separator: " "))
        }
        let sequences = try connection.query("SELECT symbol, time_ns, order_id, status, sequence FROM orders")
            .map { $0.map { $0 ?? "" }.joined(separator: " ") }
        XCTAssertEqual(sequences.sorted(), expectedSequences.sorted(), "orders.sequence", file: file, line: line)
        seen = [:]
        let fills = try csv(runFolder + "/fills.csv").rows
        for row in fills {
            let order = row[0] + " " + row[2]
            seen[order, default: 0] += 1
            XCTAssertEqual(row[3], String(seen[order]!), "fills.csv fill_number of order \(order)", file: file, line: line)
        }
        let orphans = try connection.query("""
            SELECT count(*) FROM positions p WHERE p.order_id <> 0 AND NOT EXISTS (SELECT 1 FROM fills f
                WHERE f.symbol = p.symbol AND f.time_ns = p.time_ns AND f.order_id = p.order_id
                  AND f.fill_number = p.fill_number)
            """).first?[0]
        XCTAssertEqual(orphans, "0", "every position row after a fill names a stored fill", file: file, line: line)
        let counts = try connection.query(
            "SELECT (SELECT count(*) FROM positions WHERE order_id <> 0), (SELECT count(*) FROM fills)").first
        XCTAssertEqual(counts?[0], counts?[1], "one position row per fill", file: file, line: line)
        return fills.count
    }

    /// The account total the documentation promises from the stores — the configured cash plus the symbols'
    /// equity rows of an instant — equals the run folder's total equity of that instant wherever the one process
    /// computed that total from those rows alone: a total row of the instant that came after a mark of every
    /// symbol at that instant and before any later mark (equity.csv is in emission order), with no fill since
    /// (its cash is the configured cash plus the symbols' cash flows). Elsewhere the one-process total already
    /// holds a symbol's newer mark or fill. Returns the instants checked.
    public static func assertTotalIsTheSumOfSymbols(_ url: String, runFolder: String, cash: Double,
                                                    file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let connection = try PostgresConnection(url: url)
        let symbolCount = Int(try connection.query("SELECT count(DISTINCT symbol) FROM equity").first?[0] ?? "") ?? 0
        var latest: [String: (time: Int64, cash: Double)] = [:]
        var totals: [Int64: Double] = [:]   // a total row of each instant that qualifies
        for row in try csv(runFolder + "/equity.csv").rows {
            let time = Int64(row[1]) ?? 0
            if row[2] == "symbol" {
                latest[row[0]] = (time, Double(row[3]) ?? .nan)
                continue
            }
            let totalCash = Double(row[3]) ?? .nan
            let flows = latest.values.reduce(0) { $0 + $1.cash }
            let fromThisInstant = latest.count == symbolCount && latest.values.allSatisfy { $0.time == time }
            if fromThisInstant && abs(cash + flows - totalCash) <= 1e-9 * max(1, abs(totalCash)) {
                totals[time] = Double(row[4]) ?? .nan
            }
        }
        var checked = 0
        for row in try connection.query(
            "SELECT time_ns, sum(equity) FROM equity GROUP BY time_ns HAVING count(*) = \(symbolCount)") {
            guard let time = Int64(row[0] ?? ""), let total = totals[time], let sum = Double(row[1] ?? "") else { continue }
            XCTAssertEqual(cash + sum, total, accuracy: 1e-9 * max(1, abs(total)), "total equity at \(time)",
                           file: file, line: line)
            checked += 1
        }
        return checked
    }
}
