import Foundation
import XCTest
import TapeCore
import TapeGraph
import TapeReplay

/// `stale_feed` under trading calendars on the real FXCM GBP/USD 1-minute bars of February 2012 (four
/// weekends): with the `fx` calendar no anomaly falls in a weekend, with `crypto` every weekend is one.
/// Expected anomalies come from `scripts/stale_feed_reference.py` (Python, zoneinfo), never from Tape.
final class SessionsReplayTests: XCTestCase {
    /// The stale_feed anomalies of a replay of `file` under `yaml` (a pipeline config), as
    /// `<time ns> <value>` lines.
    func staleAnomalies(_ file: String, yaml: String) throws -> [String] {
        var options = ReplayOptions(inputs: [file])
        options.engine.config = try PipelineConfig.load(yaml: yaml, source: "test config")
        options.outDir = Paths.tempDir("sessions")
        options.messagePrinter = { _ in }
        options.quiet = true
        let summary = try runReplay(options)
        let text = try String(contentsOfFile: summary.runDir + "/anomalies.csv", encoding: .utf8)
        let rows = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        // symbol,time_ns,rule,value,threshold,severity
        return rows.filter { $0[2] == "stale_feed" }.map { "\($0[1]) \($0[3])" }
    }

    /// The reference's anomalies (`<time ns> <value> <open|closed>` lines).
    func reference(_ file: String, calendar: String, afterSeconds: Int) throws -> [[String]] {
        let (code, out, err) = try sh("python3 scripts/stale_feed_reference.py '\(file)' \(calendar) \(afterSeconds)")
        XCTAssertEqual(code, 0, err)
        return out.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    }

    func testFXCalendarRaisesNoStaleFeedOverWeekendsWhileCryptoDoes() throws {
        let file = try XCTUnwrap(try Paths.barFiles().first { $0.hasSuffix("fxcm-gbpusd-m1-bid-2012.csv.gz") })
        // Counts measured with the reference (Python) on this file: 4 weekend gaps of 2881–2883 minutes,
        // 96 gaps of 2 minutes, 10 of 3 and 1 of 5 inside the weeks; on two Sundays (5 and 12 February)
        // the first bar ends at 17:02, two minutes after the open.
        let expectedCounts: [String: [Int: (total: Int, closed: Int)]] = [
            "crypto": [120: (111, 4), 300: (5, 4)],
            "fx": [120: (109, 0), 300: (1, 0)],
        ]
        for calendar in ["crypto", "fx"] {
            for afterSeconds in [120, 300] {
                let yaml = """
                anomalies: {stale_feed: {after: \(afterSeconds)s}}
                sessions: {default: crypto, symbols: {"FXCM-*": \(calendar)}}

                """
                let got = try staleAnomalies(file, yaml: yaml)
                let expected = try reference(file, calendar: calendar, afterSeconds: afterSeconds)
                let label = "\(calendar), after \(afterSeconds) s"
                XCTAssertEqual(got, expected.map { "\($0[0]) \($0[1])" }, label)
                XCTAssertEqual(expected.count, expectedCounts[calendar]![afterSeconds]!.total, label)
                XCTAssertEqual(expected.filter { $0[2] == "closed" }.count, expectedCounts[calendar]![afterSeconds]!.closed,
                               label + ": anomalies while the FX market is closed")
            }
        }
        // The default sessions (no `sessions:` key) are crypto: the same as naming it.
        let defaults = try staleAnomalies(file, yaml: "anomalies: {stale_feed: {after: 120s}}\n")
        XCTAssertEqual(defaults.count, 111)
    }
}
