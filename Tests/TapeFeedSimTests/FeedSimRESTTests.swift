import Foundation
import TapeTestSupport
import XCTest

/// Alpha Vantage and FMP over loopback: bars equal the bar file's rows (read with Python's csv/gzip,
/// labelled by start in US/Eastern) up to the simulated now; throttling, 429 and bad keys as documented.
final class FeedSimRESTTests: XCTestCase {
    static let bars = "bars/btc-perp-20211231-20220201_1m.csv.gz"

    func barRows() throws -> [[Any]] {
        let rows = try FeedSimPaths.facts(["bars", try FeedSimPaths.data(Self.bars)]) as? [[Any]] ?? []
        XCTAssertEqual(rows.count, 45_031)
        return rows
    }

    static func object(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    static func number(_ value: Any?) -> Double? {
        if let text = value as? String { return Double(text) }
        return (value as? NSNumber)?.doubleValue
    }

    func testAlphaVantageIntradayGrowsAndEqualsTheBarFile() async throws {
        let rows = try barRows()
        let index = Dictionary(rows.enumerated().map { ($0.element[0] as? String ?? "", $0.offset) },
                               uniquingKeysWith: { first, _ in first })
        // 6000× real time: 100 minutes of bars a second; times as recorded.
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.bars), "--protocol", "alphavantage", "--symbol",
                                      "BTC-PERP", "--speed", "6000", "--shift", "none"])
        defer { sim.stop() }
        let url = "http://\(sim.base)/query?function=TIME_SERIES_INTRADAY&symbol=BTC-PERP&interval=1min&apikey=x"
        try await Task.sleep(for: .seconds(2))
        let first = Self.object(try await httpGet(url).body)
        try await Task.sleep(for: .seconds(1))
        let second = Self.object(try await httpGet(url + "&outputsize=full").body)

        let meta = first["Meta Data"] as? [String: String] ?? [:]
        XCTAssertEqual(meta["6. Time Zone"], "US/Eastern")
        XCTAssertEqual(meta["4. Interval"], "1min")
        let series = first["Time Series (1min)"] as? [String: [String: String]] ?? [:]
        XCTAssertEqual(series.count, 100, "compact: the latest 100 bars")
        guard let last = meta["3. Last Refreshed"], let lastIndex = index[last] else {
            return XCTFail("Last Refreshed \(meta["3. Last Refreshed"] ?? "nil") is no row of the file")
        }
        XCTAssertLessThan(lastIndex, rows.count - 1, "only the bars up to the simulated now")
        for row in rows[(lastIndex - 99)...lastIndex] {
            let bar = series[row[0] as? String ?? ""]
            XCTAssertNotNil(bar, "row \(row[0]) served")
            XCTAssertEqual(Self.number(bar?["1. open"]), Self.number(row[1]))
            XCTAssertEqual(Self.number(bar?["2. high"]), Self.number(row[2]))
            XCTAssertEqual(Self.number(bar?["3. low"]), Self.number(row[3]))
            XCTAssertEqual(Self.number(bar?["4. close"]), Self.number(row[4]))
            XCTAssertEqual(Self.number(bar?["5. volume"]), Self.number(row[5]))
        }
        let secondMeta = second["Meta Data"] as? [String: String] ?? [:]
        let secondIndex = secondMeta["3. Last Refreshed"].flatMap { index[$0] } ?? -1
        XCTAssertGreaterThan(secondIndex, lastIndex, "history grows between polls")
        XCTAssertEqual((second["Time Series (1min)"] as? [String: Any])?.count, secondIndex + 1, "full: all up to now")
    }

    func testAlphaVantageKeyAndThrottle() async throws {
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.bars), "--protocol", "alphavantage", "--symbol",
                                      "BTC-PERP", "--speed", "max", "--api-key", "good", "--rate-limit", "3"])
        defer { sim.stop() }
        let query = "http://\(sim.base)/query?function=GLOBAL_QUOTE&symbol=BTC-PERP"
        let bad = try await httpGet(query + "&apikey=bad")
        XCTAssertEqual(bad.status, 200)
        XCTAssertNotNil(Self.object(bad.body)["Error Message"])
        for _ in 0..<3 {
            let served = try await httpGet(query + "&apikey=good")
            let quote = Self.object(served.body)["Global Quote"] as? [String: String] ?? [:]
            XCTAssertEqual(quote["01. symbol"], "BTC-PERP")
            XCTAssertEqual(Self.number(quote["05. price"]), 38544, "the last close of the file")
        }
        let throttled = try await httpGet(query + "&apikey=good")
        XCTAssertEqual(throttled.status, 200)
        XCTAssertNotNil(Self.object(throttled.body)["Note"], String(decoding: throttled.body, as: UTF8.self))
        let (stats, _) = sim.stop()
        let totals = stats["totals"] as? [String: Any] ?? [:]
        XCTAssertEqual(totals["http_throttled"] as? Int, 1)
        XCTAssertEqual(totals["http_auth_failures"] as? Int, 1)
    }

    func testFinancialModelingPrepChartQuote429AndBadKey() async throws {
        let rows = try barRows()
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.bars), "--protocol", "fmp", "--symbol", "BTC-PERP",
                                      "--speed", "max", "--shift", "none", "--api-key", "good",
                                      "--http-429-every", "2"])
        defer { sim.stop() }
        let chart = "http://\(sim.base)/api/v3/historical-chart/1min/BTC-PERP"
        let bad = try await httpGet(chart + "?apikey=bad")
        XCTAssertEqual(bad.status, 401)
        let limited = try await httpGet(chart + "?apikey=good")
        XCTAssertEqual(limited.status, 429)
        let served = try await httpGet(chart + "?apikey=good&from=2022-01-31&to=2022-01-31")
        XCTAssertEqual(served.status, 200)
        let list = (try JSONSerialization.jsonObject(with: served.body)) as? [[String: Any]] ?? []
        let expected = rows.filter { ($0[0] as? String ?? "").hasPrefix("2022-01-31") }.reversed()
        XCTAssertEqual(list.count, expected.count)
        XCTAssertEqual(list.map { $0["date"] as? String ?? "" }, expected.map { $0[0] as? String ?? "" },
                       "newest first")
        for (bar, row) in zip(list, expected) {
            XCTAssertEqual(Self.number(bar["open"]), Self.number(row[1]))
            XCTAssertEqual(Self.number(bar["high"]), Self.number(row[2]))
            XCTAssertEqual(Self.number(bar["low"]), Self.number(row[3]))
            XCTAssertEqual(Self.number(bar["close"]), Self.number(row[4]))
            XCTAssertEqual(Self.number(bar["volume"]), Self.number(row[5]))
        }
        _ = try await httpGet(chart + "?apikey=good")  // the 4th request: 429
        let quote = try await httpGet("http://\(sim.base)/stable/quote?symbol=BTC-PERP&apikey=good")
        let first = ((try JSONSerialization.jsonObject(with: quote.body)) as? [[String: Any]])?.first ?? [:]
        XCTAssertEqual(first["symbol"] as? String, "BTC-PERP")
        XCTAssertEqual(Self.number(first["price"]), 38544)
        XCTAssertNotNil(first["changePercentage"])
    }
}
