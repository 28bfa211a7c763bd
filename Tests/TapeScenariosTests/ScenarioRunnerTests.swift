import XCTest
import TapeTestSupport
import Foundation
import TapeScenarios

/// Repo root (scenario paths are relative to it).
let repoRoot: String = {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    return u.path
}()
let spot0808 = (repoRoot as NSString).appendingPathComponent("../shared/data/binance-feed/spot-btcusdt_20240808.gz")

func tempDir(_ tag: String) -> String {
    let d = NSTemporaryDirectory() + "tape-scen-\(tag)-\(getpid())"
    try? FileManager.default.removeItem(atPath: d)
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

final class ScenarioRunnerTests: XCTestCase {
    func testDiffShowsFirstDifferingRows() {
        let d = ScenarioRunner.diff(name: "bars.csv", expected: ["h", "a,1", "b,2", "c,3"], actual: ["h", "a,1", "b,9"])
        let t = d.joined(separator: "\n")
        XCTAssertTrue(t.contains("bars.csv: differs (expected 3 rows, got 2)"), t)
        XCTAssertTrue(t.contains("row 2 (#1):\n    expected: b,2\n    actual:   b,9"), t)
        XCTAssertTrue(t.contains("row 3:\n    expected: c,3\n    actual:   <missing>"), t)
        XCTAssertEqual(ScenarioRunner.diff(name: "x", expected: ["h"], actual: ["h"]), [])
    }

    func testExpectationKeysAndErrors() throws {
        let s = try ScenarioFile.parse(yaml: """
        recordings: a.gz
        model:
          train: {timeframe: 5m, rounds: 10, folds: 2}
        expect:
          exit_code: 3
          anomalies: {stale_feed: {min: 1}, price_spike: 0}
          rejects: {total: {min: 1, max: 9}}
          counts: {events.bars: {min: 3}}
          metrics: {rmse: {max: 0.1}}
          values:
            - {file: bars.csv, where: {timeframe: 1m, end_ns: "60"}, column: close, value: 1.5, tolerance: 0.01}
        """, path: "s.yaml")
        XCTAssertEqual(s.expect.exitCode, 3)
        XCTAssertEqual(s.expect.anomalies.count, 2)
        XCTAssertEqual(s.expect.values.first?.column, "close")
        XCTAssertEqual(s.model?.timeframe, "5m")
        XCTAssertEqual(s.model?.rounds, 10)
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\nexpect:\n  anomalys: {}\n", path: "s.yaml")) { e in
            XCTAssertTrue("\(e)".contains("s.yaml") && "\(e)".contains("expect.anomalys"), "\(e)")
        }
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\nconfig:\n  indicators: {smaa: 3}\n", path: "s.yaml")) { e in
            XCTAssertTrue("\(e)".contains("s.yaml") && "\(e)".contains("config.indicators.smaa"), "\(e)")
        }
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\nfrom: yesterday\n", path: "s.yaml")) { e in
            XCTAssertTrue("\(e)".contains("key 'from'"), "\(e)")
        }
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\nmodel:\n  train: {rounds: -1}\n", path: "s.yaml")) { e in
            XCTAssertTrue("\(e)".contains("model.train.rounds"), "\(e)")
        }
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\nexpect:\n  values:\n    - {column: close}\n", path: "s.yaml")) { e in
            XCTAssertTrue("\(e)".contains("expect.values[0].value"), "\(e)")
        }
    }

    func testDamageIsDeterministic() throws {
        let d = tempDir("damage")
        let src = d + "/in.txt"
        try (1...2500).map { "\($0) line\n" }.joined().write(toFile: src, atomically: true, encoding: .utf8)
        var spec = DamageSpec(); spec.injectGarbageEvery = 1000; spec.truncateAtFraction = 0.5
        let a = try Damage.apply(spec, input: src, outDir: d + "/a")
        let b = try Damage.apply(spec, input: src, outDir: d + "/b")
        let ta = try String(contentsOfFile: a, encoding: .utf8)
        XCTAssertEqual(ta, try String(contentsOfFile: b, encoding: .utf8))
        XCTAssertTrue(ta.contains("#garbage 1 "))
        XCTAssertFalse(ta.contains("#garbage 2 "))
        XCTAssertFalse(ta.hasSuffix("\n"))
    }

    func testJUnit() {
        let ok = ScenarioResult(name: "a", file: "scenarios/a.yaml", status: .passed, seconds: 1.5, digestMatch: true, digest: "d", runDir: "", failures: [])
        let bad = ScenarioResult(name: "b<", file: "scenarios/b.yaml", status: .failed, seconds: 2, digestMatch: false, digest: "e", runDir: "", failures: ["digest: expected x, got y"])
        let x = ScenarioRunner.junit([ok, bad])
        XCTAssertTrue(x.contains("<testsuite name=\"tape-scenarios\" tests=\"2\" failures=\"1\" errors=\"0\""), x)
        XCTAssertTrue(x.contains("<testcase classname=\"scenarios\" name=\"a\""), x)
        XCTAssertTrue(x.contains("name=\"b&lt;\""), x)
        XCTAssertTrue(x.contains("<failure message=\"digest: expected x, got y\">"), x)
        let table = ScenarioRunner.table([ok, bad])
        XCTAssertTrue(table.contains("MISMATCH") && table.contains("1/2 passed"), table)
    }

    /// A deliberately changed indicator period makes a blessed scenario fail, with a readable diff.
    func testChangedIndicatorPeriodFailsWithDiff() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: spot0808), "real data at \(spot0808)")
        let d = tempDir("period")
        let yaml = d + "/period.yaml"
        let base = """
        recordings: [\(spot0808)]
        from: 2024-08-08T23:55:00Z
        to: 2024-08-08T23:59:00Z
        config:
          indicators: {sma: 2, ema: 2, rsi: 2, bollinger: {period: 2}}

        """
        try base.write(toFile: yaml, atomically: true, encoding: .utf8)
        let runner = ScenarioRunner(root: repoRoot, workDir: d + "/work")
        XCTAssertEqual(runner.bless(file: yaml).status, .blessed)
        XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/period/expected/digest"))
        let same = runner.run(file: yaml)
        XCTAssertEqual(same.status, .passed, same.failures.joined(separator: "\n"))
        XCTAssertEqual(same.digestMatch, true)

        try base.replacingOccurrences(of: "sma: 2", with: "sma: 3").write(toFile: yaml, atomically: true, encoding: .utf8)
        let changed = runner.run(file: yaml)
        let text = changed.failures.joined(separator: "\n")
        print(ScenarioRunner.table([changed]))
        XCTAssertEqual(changed.status, .failed)
        XCTAssertEqual(changed.digestMatch, false)
        XCTAssertTrue(text.contains("indicators.csv: differs"), text)
        XCTAssertTrue(text.contains("expected: ") && text.contains("actual:   "), text)
        XCTAssertTrue(text.contains("(sma)"), text)
        XCTAssertTrue(text.range(of: #"row \d+ \(sma\):"#, options: .regularExpression) != nil, text)
        XCTAssertFalse(text.contains("bars.csv: differs"), text)

        // Assertions: a wrong value and an impossible anomaly count are reported by name.
        try (base + """
        expect:
          anomalies: {stale_feed: {min: 1000}}
          values:
            - {file: bars.csv, where: {timeframe: 1m, end_ns: "1723161360000000000"}, column: close, value: 1, tolerance: 0.5}

        """).write(toFile: yaml, atomically: true, encoding: .utf8)
        let asserted = runner.run(file: yaml)
        let at = asserted.failures.joined(separator: "\n")
        XCTAssertEqual(asserted.status, .failed)
        XCTAssertEqual(asserted.digestMatch, true)
        XCTAssertTrue(at.contains("anomalies.stale_feed: expected >= 1000, got 0"), at)
        XCTAssertTrue(at.contains("values: bars.csv[timeframe=1m,end_ns=1723161360000000000].close: expected 1.0 ± 0.5, got 61782.25"), at)
    }
}

/// Every shipped scenario must pass: `swift test` fails when one breaks.
final class ShippedScenariosTests: XCTestCase {
    func testAllShippedScenariosPass() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: spot0808), "real data at \(spot0808)")
        let files = ScenarioRunner.discover(repoRoot + "/scenarios")
        XCTAssertGreaterThanOrEqual(files.count, 5)
        let runner = ScenarioRunner(root: repoRoot, workDir: tempDir("shipped"))
        let results = runner.run(files: files)
        print(ScenarioRunner.table(results))
        for r in results {
            XCTAssertEqual(r.status, .passed, "\(r.name): " + r.failures.joined(separator: "\n"))
        }
    }

    /// Per-symbol goldens name the symbol that changed, appeared or vanished; unchanged ones are silent.
    func testSymbolDigestComparisonNamesTheSymbol() {
        let expected = ["spot:BTCUSDT": "aa", "usdm:BTCUSDT": "bb", "cm:ETHUSD_PERP": "cc"]
        let actual = ["spot:BTCUSDT": "aa", "usdm:BTCUSDT": "b2", "spot:ETHUSDT": "dd"]
        XCTAssertEqual(ScenarioRunner.compareSymbolDigests(expected: expected, actual: actual), [
            "digest of cm:ETHUSD_PERP: expected outputs, got none",
            "digest of spot:ETHUSDT: outputs, but none expected",
            "digest of usdm:BTCUSDT: expected bb, got b2",
        ])
        XCTAssertEqual(ScenarioRunner.compareSymbolDigests(expected: expected, actual: expected), [])
    }

}
