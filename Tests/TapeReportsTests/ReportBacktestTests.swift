import XCTest
import TapeTestSupport
import Foundation

/// The backtest section of the report of a real backtest: `tape replay` of a month of real 1-minute bars with
/// config/trading.yaml (the `tape` binary, as a user runs it). Every expected value comes from the run folder's
/// files, not from the report code: the metrics from summary.json (the value exactly, the text formatted here),
/// the monthly returns from scripts/monthly_returns_reference.py (numpy, from equity.csv), the fills per
/// symbol counted in fills.csv; the page is drawn in headless Chromium with the probe of `ReportBrowserTests`.
extension ReportBrowserTests {
    func testBacktestReportInChromium() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: Self.chromium), "chromium at \(Self.chromium)")
        let tape = root.appendingPathComponent(".build/release/tape").path
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the tape binary at \(tape) (swift build -c release)")
        let bars = shared.appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        try requireOrSkip(status(["/usr/bin/env", "python3", "-c", "import numpy"]) == 0, "python3 with numpy (scripts/setup.sh installs it)")

        let directory = NSTemporaryDirectory() + "tape-browser-backtest-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        let trading = root.appendingPathComponent("config/trading.yaml").path
        XCTAssertEqual(status([tape, "replay", bars, "--trading", trading, "--out", directory]), 0, "tape replay --trading")
        let html = directory + "/index.html"
        let page = try String(contentsOfFile: html, encoding: .utf8)

        // The section, above the price charts.
        let section = try XCTUnwrap(page.range(of: "<section class=\"backtest\""), "backtest section")
        let firstChart = try XCTUnwrap(page.range(of: "<section class=\"sym\""))
        XCTAssertLessThan(section.lowerBound, firstChart.lowerBound, "the backtest section comes before the price charts")

        // Metrics: each value exactly summary.json's, its text formatted here.
        let summaryData = try Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json"))
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
        let metrics = try XCTUnwrap(summary["trading"] as? [String: Any], "summary.json trading")
        let percent = ["total_return", "annualized_return", "volatility", "max_drawdown", "hit_rate", "exposure"]
        let ratio = ["sharpe", "sortino", "calmar", "turnover", "profit_factor"]
        let count = ["trade_count", "fills", "periods"]
        let money = ["initial_cash", "end_equity", "average_win", "average_loss", "fees_paid"]
        for key in percent + ratio + count + money + ["max_drawdown_duration_periods"] {
            let value = try XCTUnwrap((metrics[key] as? NSNumber)?.doubleValue, "\(key) in summary.json")
            let cell = try XCTUnwrap(metricCell(key, in: page), "metric \(key) in the page")
            XCTAssertEqual(Double(cell.value), value, "\(key): the page's value is summary.json's")
            let expected: String
            if percent.contains(key) {
                expected = String(format: "%.2f %%", value * 100)
            } else if ratio.contains(key) {
                expected = String(format: "%.2f", value)
            } else if count.contains(key) {
                expected = thousands(String(Int(value)))
            } else if money.contains(key) {
                expected = abs(value) < 10 ? String(format: "%.4g", value) : thousands(String(format: "%.2f", value))
            } else {
                let minutes = Int(value)  // mark timeframe 1m (config/trading.yaml)
                XCTAssertEqual(metrics["mark_timeframe"] as? String, "1m")
                expected = "\(thousands(String(minutes))) × 1m (\(minutes / 1440) d \(minutes % 1440 / 60) h \(minutes % 60) min)"
            }
            XCTAssertEqual(cell.text, expected, key)
        }

        // Monthly returns: every cell equals numpy's from equity.csv, and there are no others.
        let reference = try output(["/usr/bin/env", "python3", root.appendingPathComponent("scripts/monthly_returns_reference.py").path, directory])
        let expectedReturns = reference.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        XCTAssertEqual(expectedReturns.map { "\($0[0])-\($0[1])" }, ["2021-12", "2021-0", "2022-1", "2022-2", "2022-0"],
                       "months of a run from 2021-12-31 23:00 to 2022-02-01 05:32 (and the two years)")
        let monthlyTable = try XCTUnwrap(page.range(of: "<table class=\"num monthly\">").map { page[$0.lowerBound...] }
            .map { String($0[..<$0.range(of: "</table>")!.upperBound]) })
        XCTAssertEqual(monthlyTable.components(separatedBy: "data-month=").count - 1, expectedReturns.count)
        for line in expectedReturns {
            let row = try XCTUnwrap(monthlyTable.range(of: "<tr data-year=\"\(line[0])\">").map { monthlyTable[$0.lowerBound...] }
                .map { String($0[..<$0.range(of: "</tr>")!.upperBound]) }, "year \(line[0])")
            let shown = try XCTUnwrap(attribute("data-value", in: row, after: "data-month=\"\(line[1])\""), "\(line[0])-\(line[1])")
            let value = try XCTUnwrap(Double(line[2]))
            XCTAssertEqual(try XCTUnwrap(Double(shown)), value, accuracy: 1e-12, "\(line[0])-\(line[1])")
            let tone = attribute("class", in: row, after: "<td class=\"\(value > 0 ? "pos" : "neg")\" data-month=\"\(line[1])\"")
            XCTAssertNotNil(tone, "\(line[0])-\(line[1]) coloured by its sign")
        }

        // Trades: the first 200 fills listed, fills.csv named for the rest.
        let fills = try String(contentsOfFile: directory + "/fills.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertGreaterThan(fills.count, 200)
        let listed = page.components(separatedBy: "<tr class=\"buy\">").count + page.components(separatedBy: "<tr class=\"sell\">").count - 2
        XCTAssertEqual(listed, 200)
        XCTAssertTrue(page.contains("The first 200 of \(thousands(String(fills.count))) fills; <a href=\"fills.csv\">fills.csv</a>"))

        // In Chromium: no errors, every canvas drawn, labels never overlap (the probe), one price chart and the
        // equity chart; on every timeframe of the symbol the markers stand for every fill of fills.csv.
        let dom = try check(html, name: "backtest-bars-1m", minimumCharts: 2)
        let symbolFills = fills.filter { $0.hasPrefix("BTC-PERP,") }.count
        XCTAssertEqual(symbolFills, fills.count, "a one-symbol run")
        let perSeries = (attribute("data-probe-fills", in: dom) ?? "").split(separator: ";").map { $0.split(separator: "=") }
        XCTAssertEqual(perSeries.map { String($0[0]) }.sorted(), ["BTC-PERP|15m", "BTC-PERP|1m", "BTC-PERP|5m"])
        for series in perSeries {
            let counts = series[1].split(separator: "/").map { Int($0) ?? -1 }
            XCTAssertEqual(counts[0], symbolFills, "\(series[0]): fills on the chart")
            XCTAssertGreaterThan(counts[1], 0, "\(series[0]): markers drawn")
            XCTAssertLessThanOrEqual(counts[1], 2 * 1400, "\(series[0]): at most a buy and a sell marker per drawn candle")
        }
        XCTAssertGreaterThanOrEqual(Int(attribute("data-probe-bt-min-labels", in: dom) ?? "") ?? 0, 2, "equity chart time labels")
        XCTAssertGreaterThan(Int(attribute("data-probe-bt-min-points", in: dom) ?? "") ?? 0, 0, "equity chart points")
        // The deepest drawdown drawn (from every mark, 6 significant digits in the page) is the metric's.
        let drawn = try XCTUnwrap(Double(attribute("data-probe-bt-max-drawdown", in: dom) ?? ""))
        let maxDrawdown = try XCTUnwrap((metrics["max_drawdown"] as? NSNumber)?.doubleValue)
        XCTAssertEqual(drawn, maxDrawdown, accuracy: maxDrawdown * 1e-5)
    }

    /// The value (`data-value`) and text of a metric's cell.
    func metricCell(_ key: String, in page: String) -> (value: String, text: String)? {
        guard let row = page.range(of: "<tr data-key=\"\(key)\">") else { return nil }
        let rest = page[row.upperBound...]
        guard let cell = rest.range(of: "<td data-value=\""), let close = rest[cell.upperBound...].firstIndex(of: "\"") else { return nil }
        let value = String(rest[cell.upperBound..<close])
        let textStart = rest.index(after: rest[close...].firstIndex(of: ">")!)
        guard let end = rest[textStart...].range(of: "</td>") else { return nil }
        let text = String(rest[textStart..<end.lowerBound]).replacingOccurrences(of: "&amp;", with: "&")
        return (value, text)
    }

    /// `12345.67` → `12,345.67`.
    func thousands(_ text: String) -> String {
        let negative = text.hasPrefix("-")
        let body = negative ? String(text.dropFirst()) : text
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        var integer = String(parts[0])
        var index = integer.count - 3
        while index > 0 {
            integer.insert(",", at: integer.index(integer.startIndex, offsetBy: index))
            index -= 3
        }
        return (negative ? "-" : "") + integer + (parts.count > 1 ? "." + parts[1] : "")
    }

    /// Exit status of a process (output discarded).
    func status(_ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Standard output of a process that must succeed.
    func output(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "\(args.joined(separator: " ")) failed")
        return String(decoding: data, as: UTF8.self)
    }
}
