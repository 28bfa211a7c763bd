import Foundation
import XCTest
import TapeTestSupport
import TapeReports
import TapeScenarios

/// The report charts each prediction against the realised log return over the model's horizon, read
/// from the model meta that training wrote (`target.horizon_bars`).
final class ReportModelHorizonTests: XCTestCase {
    var root: String {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url = url.deletingLastPathComponent()
        }
        return url.path
    }

    /// The numbers of a JavaScript array `"name":[…]` in the report (one series carries predictions).
    func series(_ name: String, in html: String) throws -> [String] {
        let start = try XCTUnwrap(html.range(of: "\"\(name)\":["), "no \(name) series in the report")
        let end = try XCTUnwrap(html.range(of: "]", range: start.upperBound..<html.endIndex))
        return html[start.upperBound..<end.lowerBound].split(separator: ",").map(String.init)
    }

    func testReportUsesTheHorizonOfTheTrainedModel() throws {
        let bars = (root as NSString).appendingPathComponent("../shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz")
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        try requireOrSkip(FileManager.default.fileExists(atPath: ReportWriter.chartJSPath),
                          "\(ReportWriter.chartJSPath) (apt-get install libjs-chart.js)")
        let horizon = 3
        let directory = NSTemporaryDirectory() + "tape-report-horizon-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let yaml = directory + "/horizon.yaml"
        try """
        recordings: [\(bars)]
        from: 2022-01-03T00:00:00Z
        to: 2022-01-04T00:00:00Z
        model:
          train: {timeframe: 1m, horizon: \(horizon), rounds: 5, folds: 2, predict: true}

        """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let runner = ScenarioRunner(root: root, workDir: directory + "/work")
        let run = try runner.execute(try ScenarioFile.load(path: yaml))

        // The meta as training wrote it names the horizon `target.horizon_bars`.
        let metaData = try Data(contentsOf: URL(fileURLWithPath: run.runDir + "/model/model.meta.json"))
        let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: metaData) as? [String: Any])
        XCTAssertEqual((meta["target"] as? [String: Any])?["horizon_bars"] as? Int, horizon)

        let html = try String(contentsOfFile: try ReportWriter.write(runDir: run.runDir), encoding: .utf8)
        XCTAssertTrue(html.contains("realised log return over \(horizon) bar(s)"), "report ignores the model horizon")

        // Reference: log(close[i + 3] / close[i]) over the 1m bars of bars.csv, by bar end.
        let lines = try String(contentsOfFile: run.runDir + "/bars.csv", encoding: .utf8).split(separator: "\n")
        let header = lines[0].split(separator: ",").map(String.init)
        let timeframeColumn = try XCTUnwrap(header.firstIndex(of: "timeframe"))
        let endColumn = try XCTUnwrap(header.firstIndex(of: "end_ns"))
        let closeColumn = try XCTUnwrap(header.firstIndex(of: "close"))
        let minuteBars = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .filter { $0[timeframeColumn] == "1m" }
        var realised: [String: Double] = [:]
        for (index, bar) in minuteBars.enumerated() where index + horizon < minuteBars.count {
            let closeNow = Double(String(bar[closeColumn]))!
            let closeLater = Double(String(minuteBars[index + horizon][closeColumn]))!
            realised[String(bar[endColumn])] = log(closeLater / closeNow)
        }
        let times = try series("pt", in: html), values = try series("real", in: html)
        XCTAssertEqual(times.count, values.count)
        XCTAssertGreaterThan(times.count, 1000, "one day of 1m predictions, not downsampled")
        var compared = 0
        var mismatches: [String] = []
        for (time, value) in zip(times, values) {
            compared += 1
            guard let expected = realised[time] else {
                if value != "null" { mismatches.append("bar \(time): \(value), expected none (no later bar)") }
                continue
            }
            let actual = Double(value) ?? .nan
            if !(abs(actual - expected) <= 1e-12 * abs(expected)) {
                mismatches.append("bar \(time): \(value), expected \(expected)")
            }
        }
        XCTAssertGreaterThan(compared, 1000)
        XCTAssertEqual(mismatches.count, 0,
                       "\(mismatches.count) of \(compared) differ: " + mismatches.prefix(3).joined(separator: "; "))
    }
}
