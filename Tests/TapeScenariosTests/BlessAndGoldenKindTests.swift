import XCTest
import TapeTestSupport
import Foundation
import TapeScenarios

/// `bless` refuses a scenario whose own assertions fail; goldens kept in full, gzip-compressed, or as
/// digests plus selected columns, each compared so that a change names the file, symbol and rows.
final class BlessAndGoldenKindTests: XCTestCase {
    /// Four minutes of real spot BTCUSDT with short indicator periods (so indicators have values).
    func scenarioText(sma: Int = 2, golden: String = "", expect: String = "") -> String {
        """
        recordings: [\(spot0808)]
        from: 2024-08-08T23:55:00Z
        to: 2024-08-08T23:59:00Z
        config:
          indicators: {sma: \(sma), ema: 2, rsi: 2, bollinger: {period: 2}}
        \(golden)
        \(expect)

        """
    }

    func files(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    func testGoldenKeysParseAndBadOnesNameTheKey() throws {
        let digests = try ScenarioFile.parse(yaml: """
        recordings: a.gz
        golden: digests
        golden_columns: {bars: [symbol, timeframe, end_ns, close], model_evaluation: [fold, rmse]}
        """, path: "s.yaml")
        XCTAssertEqual(digests.golden, .digests)
        XCTAssertEqual(digests.goldenColumns.map(\.key), ["bars", "model_evaluation"])
        XCTAssertEqual(digests.goldenColumns.first?.columns, ["symbol", "timeframe", "end_ns", "close"])
        XCTAssertEqual(try ScenarioFile.parse(yaml: "recordings: a.gz\ngolden: gzip\n", path: "s.yaml").golden, .gzip)
        XCTAssertEqual(try ScenarioFile.parse(yaml: "recordings: a.gz\n", path: "s.yaml").golden, .full)
        func message(_ yaml: String) -> String {
            do { _ = try ScenarioFile.parse(yaml: "recordings: a.gz\n" + yaml, path: "s.yaml"); return "no error" } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message("golden: zip\n"), "s.yaml: key 'golden': must be one of full, gzip, digests")
        XCTAssertEqual(message("golden: gzip\ngolden_columns: {bars: [close]}\n"),
                       "s.yaml: key 'golden_columns': only with golden: digests (full and gzip goldens keep every column)")
        XCTAssertEqual(message("golden: digests\ngolden_columns: {bars: [symbol, closing]}\n"),
                       "s.yaml: key 'golden_columns.bars[1]': no column 'closing' in bars.csv (columns: symbol, "
                       + "timeframe, start_ns, end_ns, open, high, low, close, volume, vwap, trades)")
        XCTAssertTrue(message("golden: digests\ngolden_columns: {trades: [price]}\n")
            .hasPrefix("s.yaml: key 'golden_columns.trades': unknown file (one of bars, indicators,"))
        XCTAssertEqual(message("golden: digests\ngolden_columns: {bars: []}\n"),
                       "s.yaml: key 'golden_columns.bars': must be a non-empty list of column names")
    }

    func testBlessRefusesAScenarioWhoseOwnAssertionsFailAndLeavesTheGoldens() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: spot0808), "real data at \(spot0808)")
        let directory = tempDir("refuse")
        let yaml = directory + "/refuse.yaml"
        let runner = ScenarioRunner(root: repoRoot, workDir: directory + "/work")
        let expected = directory + "/refuse/expected"

        // Never blessed, assertions failing: refused, nothing written.
        try scenarioText(expect: "expect:\n  anomalies: {stale_feed: {min: 1000}}\n  exit_code: 3")
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        let refused = runner.bless(file: yaml)
        let text = refused.failures.joined(separator: "\n")
        XCTAssertEqual(refused.status, .failed, text)
        XCTAssertTrue(text.hasPrefix("refused: the scenario's own assertions fail (goldens unchanged):"), text)
        XCTAssertTrue(text.contains("anomalies.stale_feed: expected >= 1000, got 0"), text)
        XCTAssertTrue(text.contains("exit_code: expected 3, got 0"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: expected))

        // Blessed while it holds; then a changed period and a failing assertion: refused, goldens as they were.
        try scenarioText().write(toFile: yaml, atomically: true, encoding: .utf8)
        XCTAssertEqual(runner.bless(file: yaml).status, .blessed)
        let digestBefore = try String(contentsOfFile: expected + "/digest", encoding: .utf8)
        let indicatorsBefore = try String(contentsOfFile: expected + "/indicators.csv", encoding: .utf8)
        try scenarioText(sma: 3, expect: "expect:\n  anomalies: {total: {max: -1}}")
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        let again = runner.bless(file: yaml)
        XCTAssertEqual(again.status, .failed)
        XCTAssertTrue(again.failures.joined(separator: "\n").contains("anomalies.total: expected <= -1, got 0"))
        XCTAssertEqual(try String(contentsOfFile: expected + "/digest", encoding: .utf8), digestBefore)
        XCTAssertEqual(try String(contentsOfFile: expected + "/indicators.csv", encoding: .utf8), indicatorsBefore)

        // A digest written in the file is one of its own assertions too.
        try scenarioText(expect: "expect:\n  digest: 00ff").write(toFile: yaml, atomically: true, encoding: .utf8)
        let digestRefused = runner.bless(file: yaml)
        XCTAssertEqual(digestRefused.status, .failed)
        XCTAssertTrue(digestRefused.failures.joined(separator: "\n").contains("digest: expected 00ff (expect.digest), got "))
    }

    func testTapeScenarioBlessExitsNonZeroNamingTheFailedAssertion() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: spot0808), "real data at \(spot0808)")
        let tape = repoRoot + "/.build/release/tape"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built tape binary at \(tape)")
        let directory = tempDir("refuse-cli")
        let yaml = directory + "/cli.yaml"
        try scenarioText(expect: "expect:\n  anomalies: {price_spike: {min: 5}}")
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = ["scenario", "bless", yaml, "--root", repoRoot, "--work", directory + "/work"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 1, message)
        XCTAssertTrue(message.contains("tape: bless \(yaml): refused: the scenario's own assertions fail"), message)
        XCTAssertTrue(message.contains("anomalies.price_spike: expected >= 5, got 0"), message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/cli/expected"))
    }

    func testGzipGoldensAreSmallerAndReportTheSameRowDiff() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: spot0808), "real data at \(spot0808)")
        let directory = tempDir("gzip")
        let yaml = directory + "/packed.yaml"
        let runner = ScenarioRunner(root: repoRoot, workDir: directory + "/work")
        try scenarioText(golden: "golden: gzip").write(toFile: yaml, atomically: true, encoding: .utf8)
        XCTAssertEqual(runner.bless(file: yaml).status, .blessed)
        let expected = directory + "/packed/expected"
        XCTAssertEqual(files(expected), ["anomalies.csv.gz", "bars.csv.gz", "digest", "digests_by_symbol",
                                         "indicators.csv.gz", "late_ticks.csv.gz"])
        let same = runner.run(file: yaml)
        XCTAssertEqual(same.status, .passed, same.failures.joined(separator: "\n"))
        // The golden holds the run's CSV byte for byte once decompressed.
        let plain = try String(contentsOfFile: same.runDir + "/indicators.csv", encoding: .utf8)
        let unpacked = try XCTUnwrap(gunzip(expected + "/indicators.csv.gz"))
        XCTAssertEqual(unpacked, plain)

        try scenarioText(sma: 3, golden: "golden: gzip").write(toFile: yaml, atomically: true, encoding: .utf8)
        let changed = runner.run(file: yaml)
        let text = changed.failures.joined(separator: "\n")
        XCTAssertEqual(changed.status, .failed)
        XCTAssertTrue(text.contains("indicators.csv: differs"), text)
        XCTAssertTrue(text.range(of: #"row \d+ \(sma\):"#, options: .regularExpression) != nil, text)
        XCTAssertFalse(text.contains("bars.csv"), text)
    }

    func testDigestGoldensNameTheFileAndSymbolAndSelectedColumnsShowTheRows() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: spot0808), "real data at \(spot0808)")
        let directory = tempDir("digests")
        let yaml = directory + "/small.yaml"
        let runner = ScenarioRunner(root: repoRoot, workDir: directory + "/work")
        let golden = "golden: digests\ngolden_columns: {indicators: [symbol, timeframe, end_ns, sma], bars: [symbol, end_ns, close]}"
        try scenarioText(golden: golden).write(toFile: yaml, atomically: true, encoding: .utf8)
        XCTAssertEqual(runner.bless(file: yaml).status, .blessed)
        let expected = directory + "/small/expected"
        XCTAssertEqual(files(expected), ["bars.columns.csv", "digest", "digests_by_file", "digests_by_symbol",
                                         "indicators.columns.csv"])
        let same = runner.run(file: yaml)
        XCTAssertEqual(same.status, .passed, same.failures.joined(separator: "\n"))
        // The selected columns, header first, rows as in the run's file.
        let columns = try String(contentsOfFile: expected + "/bars.columns.csv", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let bars = try String(contentsOfFile: same.runDir + "/bars.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(columns.first, "symbol,end_ns,close")
        XCTAssertEqual(columns.count, bars.count)
        let firstBar = bars[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(columns[1], [firstBar[0], firstBar[3], firstBar[7]].joined(separator: ","))
        // One line per file and one per file and symbol: rows and SHA-256.
        let digestLines = try String(contentsOfFile: expected + "/digests_by_file", encoding: .utf8)
        XCTAssertTrue(digestLines.contains("bars.csv \(bars.count - 1) "), digestLines)
        XCTAssertTrue(digestLines.contains(" spot:BTCUSDT\n"), digestLines)

        try scenarioText(sma: 3, golden: golden).write(toFile: yaml, atomically: true, encoding: .utf8)
        let changed = runner.run(file: yaml)
        let text = changed.failures.joined(separator: "\n")
        XCTAssertEqual(changed.status, .failed)
        XCTAssertTrue(text.contains("digest of spot:BTCUSDT: expected "), text)
        XCTAssertTrue(text.range(of: #"indicators.csv \[spot:BTCUSDT\]: expected \d+ rows \(sha256 [0-9a-f]{16}…\), got \d+ rows"#,
                                 options: .regularExpression) != nil, text)
        XCTAssertTrue(text.contains("indicators.csv [symbol, timeframe, end_ns, sma]: differs"), text)
        XCTAssertTrue(text.range(of: #"row \d+ \(sma\):"#, options: .regularExpression) != nil, text)
        XCTAssertFalse(text.contains("bars.csv"), "bars did not change: " + text)
    }

    func gunzip(_ path: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        process.arguments = ["-dc", path]
        let output = Pipe()
        process.standardOutput = output
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }
}
