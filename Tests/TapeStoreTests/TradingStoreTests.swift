import Foundation
import TapeStore
import TapeTestSupport
import XCTest

/// Paper trading into PostgreSQL (migration 3): `tape replay --trading … --store postgres://…` against the
/// run folder's orders.csv, fills.csv, positions.csv and equity.csv, which the same replay wrote
/// (`TradingTables`: the files are the reference).
extension PostgresStoreTests {
    func tradingConfig() throws -> String { try TradingTables.writeConfig(in: temporaryFolder("trading")) }

    /// A capture replayed with paper trading into PostgreSQL: the four tables equal the run folder row for row;
    /// the same replay again adds no row; the run folder's total equity is the configured cash plus the
    /// symbol's equity rows.
    func testPaperTradingReplayStoredEqualsItsRunFolderAndTwiceAddsNoRow() throws {
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let trading = try tradingConfig()
        let url = try freshDatabase("trading")
        let first = temporaryFolder("trading-first"), second = temporaryFolder("trading-second")
        try runTape(["replay", capture, "--trading", trading, "--out", first, "--quiet", "--no-report", "--store", url])
        let fills = try TradingTables.csv(first + "/fills.csv").rows
        XCTAssertGreaterThan(fills.count, 10, "the run traded")
        XCTAssertTrue(fills.contains { $0[3] == "2" }, "an order filled more than once (fill numbers above 1)")
        XCTAssertEqual(try TradingTables.assertStoredEqualsRunFolder(url, runFolder: first), fills.count)
        XCTAssertGreaterThan(try TradingTables.assertTotalIsTheSumOfSymbols(url, runFolder: first, cash: 100_000), 10)
        let postgres = try XCTUnwrap((try summary(first)["stores"] as? [String: Any])?["postgres"] as? [String: Any])
        let rows = try XCTUnwrap(postgres["rows"] as? [String: Int])
        let equity = try TradingTables.csv(first + "/equity.csv").rows
        XCTAssertEqual(rows["equity"], equity.filter { $0[2] == "symbol" }.count, "the account's total rows are not stored")
        XCTAssertEqual(rows["fills"], fills.count)

        let connection = try PostgresConnection(url: url)
        let count = """
            SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM fills), (SELECT count(*) FROM positions),
                   (SELECT count(*) FROM equity)
            """
        let before = try connection.query(count)
        try runTape(["replay", capture, "--trading", trading, "--out", second, "--quiet", "--no-report", "--store", url])
        XCTAssertEqual(try connection.query(count), before, "a repeated write adds no trading row")
        let again = try XCTUnwrap((try summary(second)["stores"] as? [String: Any])?["postgres"] as? [String: Any])
        XCTAssertEqual(again["rows_inserted"] as? Int, 0)
        try TradingTables.assertStoredEqualsRunFolder(url, runFolder: second)
    }
}
