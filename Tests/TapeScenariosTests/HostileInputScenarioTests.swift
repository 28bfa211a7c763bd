import XCTest
import TapeTestSupport
import Foundation
import TapeScenarios

/// Issue 9, defect 1: a scenario whose input held a time that overflowed Int64 in ns trapped and took the
/// whole `tape scenario run` down (no table, no JUnit). Now the rows are `bad_timestamp` rejects, the
/// scenario passes on its expectations, and the scenario after it runs too.
final class HostileInputScenarioTests: XCTestCase {
    func testOverflowingTimesAreRejectsNotACrash() throws {
        let directory = tempDir("hostile")
        let trades = directory + "/binance_trades_2024-08-08_BTCUSDT.csv"
        // tardis `trades` layout (µs): 9.3e15 µs overflows Int64 when converted to ns.
        try """
        exchange,symbol,timestamp,local_timestamp,id,side,price,amount
        binance,BTCUSDT,1723118400000000,1723118400000000,1,sell,61837.63,0.02
        binance,BTCUSDT,9300000000000000,1723118400000001,2,sell,61837.63,0.02
        binance,BTCUSDT,1723118400000002,9300000000000000,3,sell,61837.63,0.02
        binance,BTCUSDT,1723118460000000,1723118460000000,4,buy,61837.64,0.5

        """.write(toFile: trades, atomically: true, encoding: .utf8)
        let aggregates = directory + "/2024-08-08.minute_aggs.csv"
        try """
        ticker,volume,open,close,high,low,window_start,transactions
        AAPL,4930,209.8,209.9,210.0,209.7,9223372036854775807,41
        AAPL,4930,209.8,209.9,210.0,209.7,1723118400000000000,41

        """.write(toFile: aggregates, atomically: true, encoding: .utf8)
        let hostile = directory + "/hostile.yaml"
        try """
        recordings: [\(trades), \(aggregates)]
        expect:
          exit_code: 3
          rejects: {total: 3, bad_timestamp: 3}

        """.write(toFile: hostile, atomically: true, encoding: .utf8)
        let clean = directory + "/clean.yaml"
        try "recordings: [\(aggregates)]\nexpect:\n  exit_code: 3\n  rejects: {bad_timestamp: 1}\n"
            .write(toFile: clean, atomically: true, encoding: .utf8)
        let runner = ScenarioRunner(root: repoRoot, workDir: directory + "/work")
        for file in [hostile, clean] { XCTAssertEqual(runner.bless(file: file).status, .blessed, file) }
        let results = runner.run(files: [hostile, clean])
        print(ScenarioRunner.table(results))
        XCTAssertEqual(results.map(\.status), [.passed, .passed], results.flatMap(\.failures).joined(separator: "\n"))
    }
}
