import Foundation
import XCTest
import Yams
import TapeTestSupport

/// The monitoring files of config/: Prometheus' own checker accepts them, and every query of the rules
/// and of the Grafana dashboard names only metrics Tape exports (config/prometheus-metrics.txt, whose
/// bridged names are checked against the measurements and fields written in Sources/).
final class MonitoringConfigTests: XCTestCase {
    static let root = packageRoot()

    struct ExportedMetric {
        var name: String
        var type: String
        /// `measurement.field` for a bridged InfluxDB point.
        var bridge: String?
    }

    static func exportedMetrics() throws -> [ExportedMetric] {
        let text = try String(contentsOf: root.appendingPathComponent("config/prometheus-metrics.txt"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let first = columns.first, !first.hasPrefix("#"), columns.count >= 4 else { return nil }
            return ExportedMetric(name: first, type: columns[1], bridge: columns[3] == "bridge" ? columns[4] : nil)
        }
    }

    /// Names a query may use: each metric, and a histogram's `_bucket`, `_sum`, `_count`.
    static func allowedNames() throws -> Set<String> {
        var names = Set<String>()
        for metric in try exportedMetrics() {
            names.insert(metric.name)
            if metric.type == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] { names.insert(metric.name + suffix) }
            }
        }
        return names
    }

    /// The metric names in a PromQL expression: identifiers that are not functions, keywords, label
    /// names (inside `{…}` or `by (…)`-like clauses), strings, durations or numbers.
    static func metricNames(in expression: String) -> Set<String> {
        var text = expression
        let removals = [
            #""(?:[^"\\]|\\.)*""#, #"'(?:[^'\\]|\\.)*'"#,                          // strings
            #"\{[^}]*\}"#, #"\[[^\]]*\]"#,                                        // matchers, ranges
            #"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#,  // label lists
            #"\boffset\s+\d+[smhdwy]"#,
        ]
        for pattern in removals {
            text = text.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        let keywords: Set<String> = ["and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
                                     "group_right", "offset", "inf", "nan", "e"]
        var names = Set<String>()
        let identifier = try! NSRegularExpression(pattern: #"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?"#)
        let range = NSRange(text.startIndex..., in: text)
        for match in identifier.matches(in: text, range: range) {
            let token = String(text[Range(match.range, in: text)!])
            if token.hasSuffix("(") { continue }  // a function or an aggregation
            // A number's exponent (1e9) is not a name.
            let start = Range(match.range, in: text)!.lowerBound
            if start > text.startIndex, text[text.index(before: start)].isNumber { continue }
            if keywords.contains(token.lowercased()) { continue }
            names.insert(token)
        }
        return names
    }

    func testTheExtractorFindsMetricNamesOnly() {
        XCTAssertEqual(Self.metricNames(in: #"histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{a="b"}[5m])))"#),
                       ["x_bucket"])
        XCTAssertEqual(Self.metricNames(in: "tape_pipeline_lag_ns{mode=\"live\"} / 1e9 > 30 and on (instance) up"),
                       ["tape_pipeline_lag_ns", "up"])
    }

    func testPromtoolAcceptsTheConfigAndTheRules() throws {
        let promtool = "/usr/bin/promtool"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: promtool),
                          "promtool (Debian's prometheus package; scripts/setup.sh installs it)")
        // The config and the rules parse, and the rules' unit tests (config/prometheus-rules.test.yml: each
        // rule fires on series that should trigger it, after its `for`, with its labels and text) pass.
        let checks = [["check", "config", "config/prometheus.yml"], ["check", "rules", "config/prometheus-rules.yml"],
                      ["test", "rules", "config/prometheus-rules.test.yml"]]
        for arguments in checks {
            let result = try AlertTestData.run(promtool, arguments)
            XCTAssertEqual(result.status, 0, "promtool \(arguments.joined(separator: " ")): \(result.standardError)")
            if arguments[0] == "test" { XCTAssertFalse(result.standardError.contains("FAILED")) }
        }
        // The documented default ports are the ones scraped.
        let config = try String(contentsOf: Self.root.appendingPathComponent("config/prometheus.yml"), encoding: .utf8)
        for target in ["127.0.0.1:8000", "127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"] {
            XCTAssertTrue(config.contains("\"\(target)\""), target)
        }
    }

    func testEveryRuleAndPanelQueryNamesAnExportedMetric() throws {
        let allowed = try Self.allowedNames()
        // The rules.
        let rulesText = try String(contentsOf: Self.root.appendingPathComponent("config/prometheus-rules.yml"),
                                   encoding: .utf8)
        let rules = try XCTUnwrap(try Yams.load(yaml: rulesText) as? [String: Any])
        var ruleExpressions: [String: String] = [:]
        for group in try XCTUnwrap(rules["groups"] as? [[String: Any]]) {
            for rule in try XCTUnwrap(group["rules"] as? [[String: Any]]) {
                ruleExpressions[try XCTUnwrap(rule["alert"] as? String)] = try XCTUnwrap(rule["expr"] as? String)
            }
        }
        for name in ["TapeFeedStale", "TapeWorkerLagHigh", "TapeHTTPErrorRateHigh", "TapeRejectsRising",
                     "TapeMetricsWriterFailing"] {
            XCTAssertNotNil(ruleExpressions[name], "the rules include \(name)")
        }
        for (alert, expression) in ruleExpressions {
            let names = Self.metricNames(in: expression)
            XCTAssertFalse(names.isEmpty, "\(alert): \(expression)")
            XCTAssertEqual(names.subtracting(allowed), [], "\(alert) names metrics Tape does not export")
        }

        // The dashboard: valid JSON, every panel with at least one query, every query on exported names.
        let data = try Data(contentsOf: Self.root.appendingPathComponent("config/grafana/tape-dashboard.json"))
        let dashboard = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try XCTUnwrap(dashboard["panels"] as? [[String: Any]])
        var titles: [String] = []
        var used = Set<String>()
        for panel in panels {
            let title = try XCTUnwrap(panel["title"] as? String)
            titles.append(title)
            let targets = try XCTUnwrap(panel["targets"] as? [[String: Any]], title)
            XCTAssertFalse(targets.isEmpty, title)
            for target in targets {
                let expression = try XCTUnwrap(target["expr"] as? String, title)
                let names = Self.metricNames(in: expression)
                XCTAssertFalse(names.isEmpty, "\(title): \(expression)")
                XCTAssertEqual(names.subtracting(allowed), [], "\(title): \(expression)")
                used.formUnion(names)
            }
        }
        XCTAssertEqual(Set(titles).count, titles.count, "panel titles are unique")
        for needed in ["tape_feed_ticks_rate", "tape_pipeline_lag_ns", "tape_work_lag", "tape_latency_p99_ns",
                       "tape_rejects_total", "tape_cache_requests_total", "tape_ws_clients", "tape_http_requests_total",
                       "tape_http_request_duration_seconds_bucket"] {
            XCTAssertTrue(used.contains(needed), "a panel shows \(needed)")
        }
    }

    /// Each bridged name is `<measurement>_<field>` of a point that Sources/ writes: both names appear
    /// there as string literals.
    func testBridgedNamesComeFromMeasurementsAndFieldsTheCodeWrites() throws {
        var literals = Set<String>()
        let sources = Self.root.appendingPathComponent("Sources")
        let files = try XCTUnwrap(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        let literal = try NSRegularExpression(pattern: #""([a-z0-9_]+)""#)
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for match in literal.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                literals.insert(String(text[Range(match.range(at: 1), in: text)!]))
            }
        }
        let bridged = try Self.exportedMetrics().filter { $0.bridge != nil }
        XCTAssertGreaterThan(bridged.count, 40)
        for metric in bridged {
            let parts = try XCTUnwrap(metric.bridge).split(separator: ".").map(String.init)
            XCTAssertEqual(parts.count, 2, metric.name)
            let sanitized = (parts[0] + "_" + parts[1]).map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" }
            XCTAssertEqual(String(sanitized), metric.name)
            XCTAssertTrue(literals.contains(parts[0]), "measurement \(parts[0]) is written in Sources/")
            XCTAssertTrue(literals.contains(parts[1]), "field \(parts[1]) of \(metric.name) is written in Sources/")
        }
    }
}
