import Foundation
import Prometheus
import TapeMetrics
import TapeServe
import TapeTestSupport
import XCTest

/// The Prometheus bridge of the pipeline processes: `MetricPoint`s → `MetricsBoard` → `/metrics`.
final class MetricsBridgeTests: XCTestCase {
    /// Names `<measurement>_<field>`, labels from tags, `total` fields as counters and the rest as gauges; a
    /// series that went quiet keeps its last value; a name reused with another type is left out and counted.
    func testPointsBecomeCountersAndGaugesWithTheirTags() {
        let board = MetricsBoard()
        let exporter = PipelineMetricsExporter(board: board, registry: PrometheusCollectorRegistry())
        board.consume([
            MetricPoint("tape_feed_ticks", tags: ["feed": "spot", "mode": "live"],
                        fields: ["count": .integer(10), "total": .integer(10), "rate": .float(2.5)]),
            MetricPoint("tape_pipeline", tags: ["mode": "live"],
                        fields: ["ticks_total": .integer(10), "lag_ns": .integer(1_500_000)]),
            MetricPoint("tape_work", tags: ["topic": "tick_data", "group": "g", "partition": "0"],
                        fields: ["lag": .integer(5), "running": .boolean(true), "note": .string("x")]),
            MetricPoint("tape-odd.name", tags: ["a b": "c"], fields: ["x/y": .float(1)]),
        ])
        var text = exporter.render()
        XCTAssertTrue(text.contains("# TYPE tape_feed_ticks_total counter"), text)
        XCTAssertTrue(text.contains("tape_feed_ticks_total{feed=\"spot\",mode=\"live\"} 10"), text)
        XCTAssertTrue(text.contains("# TYPE tape_feed_ticks_rate gauge"), text)
        XCTAssertTrue(text.contains("tape_feed_ticks_rate{feed=\"spot\",mode=\"live\"} 2.5"), text)
        XCTAssertTrue(text.contains("tape_pipeline_ticks_total{mode=\"live\"} 10"), text)
        XCTAssertTrue(text.contains("tape_pipeline_lag_ns{mode=\"live\"} 1500000"), text)
        XCTAssertTrue(text.contains("tape_work_lag{group=\"g\",partition=\"0\",topic=\"tick_data\"} 5"), text)
        XCTAssertTrue(text.contains("tape_work_running{group=\"g\",partition=\"0\",topic=\"tick_data\"} 1"), text)
        XCTAssertFalse(text.contains("tape_work_note"), "strings are left out")
        XCTAssertTrue(text.contains("tape_odd_name_x_y{a_b=\"c\"} 1"), text)

        // The next sample: the counter moves to the new total, the quiet series keeps its value.
        board.consume([MetricPoint("tape_feed_ticks", tags: ["feed": "spot", "mode": "live"],
                                   fields: ["count": .integer(5), "total": .integer(15), "rate": .float(1)])])
        text = exporter.render()
        XCTAssertTrue(text.contains("tape_feed_ticks_total{feed=\"spot\",mode=\"live\"} 15"), text)
        XCTAssertTrue(text.contains("tape_work_lag{group=\"g\",partition=\"0\",topic=\"tick_data\"} 5"), text)

        // The same name without labels cannot join a labeled family: left out, counted.
        board.consume([MetricPoint("tape_work", fields: ["lag": .integer(9)])])
        text = exporter.render()
        XCTAssertTrue(text.contains("tape_metrics_bridge_conflicts_total 1"), text)
        XCTAssertFalse(text.contains("tape_work_lag 9"), text)
    }

    /// `tape live --metrics-listen` on a feed served by `tape feed-sim`: /metrics answers during the session
    /// with the live measurements (feed ticks as a counter, lag and latency as gauges).
    func testLiveServesItsMetricsToPrometheus() throws {
        let tape = packageRoot().appendingPathComponent(".build/release/tape").path
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let capture = packageRoot().deletingLastPathComponent()
            .appendingPathComponent("shared/data/binance-feed/usdm-btcusdt_20240808.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: capture), "real data at \(capture)")
        let work = NSTemporaryDirectory() + "tape-serve-tests-\(getpid())/live-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let simulator = try XCTUnwrap(spawnInBackground(
            [tape, "feed-sim", capture, "--protocol", "binance", "--speed", "20", "--port", "0",
             "--port-file", work + "/port"],
            stdout: "/dev/null", stderr: work + "/sim.err"))
        defer {
            kill(simulator, SIGTERM)
            _ = waitForExit(simulator)
        }
        var port = ""
        for _ in 0..<100 where port.isEmpty {
            usleep(100_000)
            port = ((try? String(contentsOfFile: work + "/port", encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertFalse(port.isEmpty, "feed-sim wrote its port")
        let live = try XCTUnwrap(spawnInBackground(
            [tape, "live", "--feed", "binance-usdm:btcusdt=ws://127.0.0.1:\(port)", "--duration", "8s",
             "--out", work + "/live", "--quiet", "--no-record", "--metrics-listen", "127.0.0.1:0"],
            stdout: work + "/live.out", stderr: work + "/live.err"))
        var address: String?
        var scraped = ""
        let deadline = Date().addingTimeInterval(12)
        while Date() < deadline {
            let log = (try? String(contentsOfFile: work + "/live.err", encoding: .utf8)) ?? ""
            if address == nil, let range = log.range(of: "metrics at http://") {
                address = String(log[range.upperBound...].prefix { $0 != "/" })
            }
            if let address, let data = try? Data(contentsOf: URL(string: "http://\(address)/metrics")!) {
                scraped = String(decoding: data, as: UTF8.self)
                if scraped.contains("tape_feed_ticks_total{") && scraped.contains("tape_latency_p99_ns{") { break }
            }
            usleep(200_000)
        }
        let code = waitForExit(live)
        XCTAssertEqual(code, 0, (try? String(contentsOfFile: work + "/live.err", encoding: .utf8)) ?? "")
        XCTAssertNotNil(address, "tape live said where its metrics are")
        XCTAssertTrue(scraped.contains("# TYPE tape_feed_ticks_total counter"), scraped)
        XCTAssertTrue(scraped.contains("tape_feed_ticks_total{feed=\"usdm\",mode=\"live\"}"), scraped)
        XCTAssertTrue(scraped.contains("# TYPE tape_pipeline_lag_ns gauge"), scraped)
        XCTAssertTrue(scraped.contains("tape_latency_p99_ns{"), scraped)
        let line = scraped.split(separator: "\n").first { $0.hasPrefix("tape_feed_ticks_total{feed=\"usdm\"") }
        let value = line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
        XCTAssertGreaterThan(value, 0, "ticks were counted: \(line ?? "")")
        let summaryData = try Data(contentsOf: URL(fileURLWithPath: work + "/live/summary.json"))
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
        XCTAssertLessThanOrEqual(value, Double(summary["ticks_delivered"] as? Int ?? 0))
    }
}
