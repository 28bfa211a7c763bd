import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeGraph
import TapeSinks
import TapeEngine
import TapeReplay
import TapeLive
import TapeAlerts
import TapeMetrics

/// Alerts against real loopback receivers (alert_receiver.py: an HTTP webhook and aiosmtpd), real
/// captures replayed by the built `tape` and in-process.
final class AlertsTests: XCTestCase {
    static let webhookVariable = "TAPE_TEST_SLACK_WEBHOOK_URL"
    /// A webhook URL's path is its secret: the tests' one looks like Slack's.
    static let webhookPath = "/services/T0TEST/B0TEST/s3cr3tT0k3n"

    /// A config for one webhook (and optionally one SMTP server) with the given rules and limits.
    static func config(slackPort: Int?, smtpPort: Int? = nil, rules: String, extra: String = "") -> String {
        var text = "source: alerts-test\nchannels:\n"
        if slackPort != nil { text += "  slack: {webhook_url_env: \(webhookVariable)}\n" }
        if let smtpPort {
            text += "  email: {smtp_url: \"smtp://127.0.0.1:\(smtpPort)\", from: tape@example.com, "
                + "to: [oncall@example.com, desk@example.com]}\n"
        }
        return text + "rules:\n" + rules + extra
    }

    static func environment(slackPort: Int?) -> [String: String] {
        guard let slackPort else { return [:] }
        return [webhookVariable: "http://127.0.0.1:\(slackPort)\(webhookPath)"]
    }

    static func service(_ yaml: String, slackPort: Int?, log: @escaping @Sendable (String) -> Void = { _ in })
        throws -> AlertService {
        let config = try AlertConfig.parse(yaml: yaml, environment: environment(slackPort: slackPort))
        return AlertService(config: config, log: log)
    }

    static func anomaly(_ subject: String, rule: String = "price_spike", severity: Severity = .warning,
                        time: Int64 = 1_723_161_600_000_000_000) -> Alert {
        let symbols = SymbolTable()
        let id = symbols.intern(subject)
        return Alert(anomaly: AnomalyOutput(symbol: id, time: time, rule: rule, value: 5.5, threshold: 4,
                                            severity: severity), symbol: subject)
    }

    // MARK: a real replay through the built tape

    /// Two days of real 1-minute BTC-PERP bars replayed by `tape replay --alerts`: the Slack posts and
    /// the emails are exactly what anomalies.csv gives under the thresholds and the window, computed here
    /// independently; each names the symbol, the rule, the value and the threshold.
    func testReplayAnomaliesBecomeTheExpectedSlackPostsAndEmails() throws {
        let tape = try AlertTestData.tapeBinary()
        let bars = try AlertTestData.shared("bars/btc-perp-20211231-20220201_1m.csv.gz")
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let smtp = try LoopbackReceiver("smtp")
        defer { smtp.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let slackThresholds = ["price_spike": "warning", "volume_spike": "critical", "stale_feed": "warning"]
        let emailThresholds = ["price_spike": "critical", "volume_spike": "critical"]
        let yaml = Self.config(slackPort: slack.port, smtpPort: smtp.port, rules: """
              price_spike: {slack: warning, email: critical}
              volume_spike: {slack: critical, email: critical}
              stale_feed: {slack: warning}
              bad_tick: {slack: off}
            dedupe_window: 30m
            rate_limit: {burst: 10000, per_minute: 10000}
            close_wait: 30s
            """)
        try yaml.write(toFile: directory + "/alerts.yaml", atomically: true, encoding: .utf8)
        let run = directory + "/run"
        let result = try AlertTestData.run(tape, ["replay", bars, "--to", "2022-01-03T00:00:00Z", "--out", run, "--quiet",
                                                  "--no-report", "--config", "config/pipeline.yaml",
                                                  "--alerts", directory + "/alerts.yaml"],
                                           environment: Self.environment(slackPort: slack.port))
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertFalse(result.standardError.contains("s3cr3tT0k3n"), "the webhook's secret is never printed")

        let rows = try AnomalyRow.read(run + "/anomalies.csv")
        XCTAssertGreaterThan(rows.count, 100, "two days of bars give many anomalies")
        let window: Int64 = 30 * 60 * 1_000_000_000
        let slackExpected = expectedAlerts(rows, thresholds: slackThresholds, windowNanos: window)
        let emailExpected = expectedAlerts(rows, thresholds: emailThresholds, windowNanos: window)
        XCTAssertGreaterThan(slackExpected.sent.count, 10)
        XCTAssertGreaterThan(emailExpected.sent.count, 3)
        XCTAssertGreaterThan(slackExpected.pendingRepeats + slackExpected.sent.reduce(0) { $0 + $1.repeatsBefore }, 0,
                             "the window de-duplicates some")

        // Slack: the expected alerts in order, then one closing summary when repeats were left untold.
        let slackSummaries = slackExpected.pendingRepeats > 0 ? 1 : 0
        let posts = slack.records
        XCTAssertEqual(posts.count, slackExpected.sent.count + slackSummaries)
        XCTAssert(posts.allSatisfy { ($0["path"] as? String) == Self.webhookPath })
        XCTAssert(posts.allSatisfy { ($0["content_type"] as? String) == "application/json" })
        let received = posts.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.count, posts.count, "every body is JSON with a text")
        let alerts = received.filter { !$0.isSummary }
        XCTAssertEqual(alerts.count, slackExpected.sent.count)
        for (got, want) in zip(alerts, slackExpected.sent) {
            XCTAssertEqual(got.rule, want.row.rule, "\(got)")
            XCTAssertEqual(got.subject, want.row.symbol)
            XCTAssertEqual(got.severity, want.row.severity)
            XCTAssertEqual(got.timeNanos, want.row.time)
            XCTAssertEqual(got.fields["value"].flatMap(Double.init), want.row.value)
            XCTAssertEqual(got.fields["threshold"].flatMap(Double.init), want.row.threshold)
            XCTAssertEqual(got.repeatsBefore, want.repeatsBefore)
            XCTAssertTrue(got.title.contains("[\(want.row.severity)] \(want.row.rule) \(want.row.symbol)"), got.title)
        }
        if slackSummaries == 1 {
            let summary = try XCTUnwrap(received.last)
            XCTAssertTrue(summary.isSummary, "\(summary)")
            XCTAssertTrue(summary.title.contains("\(slackExpected.pendingRepeats) repeats"), summary.title)
        }

        // Email: the critical ones, to both recipients, with the same fields.
        let emailSummaries = emailExpected.pendingRepeats > 0 ? 1 : 0
        let mails = smtp.records
        XCTAssertEqual(mails.count, emailExpected.sent.count + emailSummaries)
        let parsed = mails.compactMap(ReceivedAlert.email)
        XCTAssertEqual(parsed.count, mails.count)
        for mail in mails {
            XCTAssertEqual(mail["mail_from"] as? String, "tape@example.com")
            XCTAssertEqual(mail["rcpt_tos"] as? [String], ["oncall@example.com", "desk@example.com"])
        }
        for ((got, headers), want) in zip(parsed.filter { !$0.alert.isSummary }, emailExpected.sent) {
            XCTAssertEqual(headers["Subject"], "tape [critical] \(want.row.rule) \(want.row.symbol)")
            XCTAssertEqual(got.subject, want.row.symbol)
            XCTAssertEqual(got.timeNanos, want.row.time)
            XCTAssertEqual(got.fields["value"].flatMap(Double.init), want.row.value)
            XCTAssertEqual(got.fields["threshold"].flatMap(Double.init), want.row.threshold)
            XCTAssertNotNil(headers["Date"])
            XCTAssertNotNil(headers["Message-ID"])
        }

        // summary.json stores.alerts counts it all.
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json")))
        let stores = try XCTUnwrap((summary as? [String: Any])?["stores"] as? [String: Any])
        let counts = try XCTUnwrap(stores["alerts"] as? [String: Any])
        XCTAssertEqual(counts["raised"] as? Int, rows.count)
        let slackCounts = try XCTUnwrap(counts["slack"] as? [String: Any])
        XCTAssertEqual(slackCounts["sent"] as? Int, posts.count)
        XCTAssertEqual(slackCounts["failed"] as? Int, 0)
        XCTAssertEqual(slackCounts["peer"] as? String, "127.0.0.1:\(slack.port)")
        let emailCounts = try XCTUnwrap(counts["email"] as? [String: Any])
        XCTAssertEqual(emailCounts["sent"] as? Int, mails.count)
    }

    /// A bar file with one injected price spike (flat prices, then +10 %), replayed in-process with the
    /// example's thresholds for price_spike (Slack from warning, email when critical): exactly one Slack
    /// post and one email, each with the symbol, the rule, the value and the threshold.
    func testAnInjectedPriceSpikeIsOneSlackPostAndOneEmail() throws {
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let smtp = try LoopbackReceiver("smtp")
        defer { smtp.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var rows = ["timestamp,open,high,low,close,volume"]
        let start = 1_704_067_200  // 2024-01-01T00:00:00Z
        for minute in 0..<40 {
            let close = minute == 30 ? 110.0 : minute > 30 ? 110.0 + (minute % 2 == 0 ? 0.05 : -0.05)
                : 100.0 + (minute % 2 == 0 ? 0.05 : -0.05)
            rows.append("\(start + minute * 60),\(close),\(close),\(close),\(close),10")
        }
        let bars = directory + "/spike-1m.csv"
        try (rows.joined(separator: "\n") + "\n").write(toFile: bars, atomically: true, encoding: .utf8)
        let yaml = Self.config(slackPort: slack.port, smtpPort: smtp.port, rules: """
              price_spike: {slack: warning, email: critical}
              "*": {slack: warning, email: critical}
            """)
        let service = try Self.service(yaml, slackPort: slack.port)
        var options = ReplayOptions(inputs: [bars])
        options.symbol = "TEST-SPIKE"
        options.outDir = directory + "/run"
        options.sinkFactories = [AlertSink.factory(service: service, closesService: true)]
        let summary = try runReplay(options)
        let anomalies = try AnomalyRow.read(directory + "/run/anomalies.csv")
        XCTAssertEqual(anomalies.map(\.rule), ["price_spike"], "one injected spike, nothing else")
        XCTAssertEqual(summary.eventsOutByKind["anomalies"], 1)
        let spike = try XCTUnwrap(anomalies.first)
        XCTAssertEqual(spike.severity, "critical")

        let posts = slack.records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(posts.count, 1)
        let mails = smtp.records.compactMap(ReceivedAlert.email)
        XCTAssertEqual(mails.count, 1)
        for alert in posts + mails.map(\.alert) {
            XCTAssertEqual(alert.subject, spike.symbol)
            XCTAssertEqual(alert.rule, "price_spike")
            XCTAssertEqual(alert.fields["value"].flatMap(Double.init), spike.value)
            XCTAssertEqual(alert.fields["threshold"].flatMap(Double.init), 4)
            XCTAssertEqual(alert.timeNanos, spike.time)
        }
        XCTAssertEqual(mails.first?.headers["Subject"], "tape [critical] price_spike \(spike.symbol)")
    }

    // MARK: in-process replays: an alert outage never changes or slows the run

    /// The same bars replayed without alerts, with a receiver that answers after 10 s, and with no
    /// receiver at all: same digest, and the replay's wall time within the close wait (1 s) + 1.5 s of
    /// the run without alerts.
    func testASlowOrDownReceiverChangesNeitherTheDigestNorTheReplayTime() throws {
        let bars = try AlertTestData.shared("bars/btc-perp-20211231-20220201_1m.csv.gz")
        let slow = try LoopbackReceiver("webhook", arguments: ["--sleep", "10"])
        defer { slow.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        func replay(_ name: String, alertsPort: Int?) throws -> (ReplaySummary, AlertService?) {
            // Two days of bars: about 200 anomalies (default config), every one alerted.
            var options = ReplayOptions(inputs: [bars])
            options.outDir = directory + "/" + name
            options.engine.to = TimeUtil.parseUserTime("2022-01-03T00:00:00Z")
            var service: AlertService? = nil
            if let alertsPort {
                let yaml = Self.config(slackPort: alertsPort, rules: "  \"*\": {slack: info}\n",
                                       extra: "rate_limit: {burst: 10000, per_minute: 10000}\nclose_wait: 1s\n"
                                           + "request_timeout: 30s\nretries: {attempts: 5, initial_backoff: 100ms}\n")
                service = try Self.service(yaml, slackPort: alertsPort)
                options.sinkFactories = [AlertSink.factory(service: service!, closesService: true)]
            }
            return (try runReplay(options), service)
        }

        let (plain, _) = try replay("plain", alertsPort: nil)
        let (slowRun, slowService) = try replay("slow", alertsPort: slow.port)
        // A port nobody listens on: connections refused, retried with backoff, dropped at close.
        let closedPort = try Self.closedPort()
        let (downRun, downService) = try replay("down", alertsPort: closedPort)

        XCTAssertGreaterThan(plain.summary.eventsOutByKind["anomalies"] ?? 0, 3, "the run raises alerts")
        XCTAssertEqual(slowRun.digest, plain.digest)
        XCTAssertEqual(downRun.digest, plain.digest)
        XCTAssertEqual(slowRun.digestsBySymbol, plain.digestsBySymbol)
        let tolerance = 1.0 + 1.5
        XCTAssertLessThan(slowRun.wallSeconds, plain.wallSeconds + tolerance, "a receiver sleeping 10 s")
        XCTAssertLessThan(downRun.wallSeconds, plain.wallSeconds + tolerance, "no receiver")

        let slowCounts = try XCTUnwrap(slowService).counters(channel: 0)
        XCTAssertEqual(slowCounts.sent, 0, "nothing answered within the run")
        XCTAssertGreaterThan(slowCounts.droppedAtClose, 0, "what waited behind the slow request is dropped at close")
        XCTAssertEqual(slow.waitFor(1).count, 1, "the receiver got the first post (and sleeps on it)")
        let downCounts = try XCTUnwrap(downService).counters(channel: 0)
        XCTAssertEqual(downCounts.sent, 0)
        XCTAssertGreaterThan(downCounts.retries, 0, "connection refused is retried")
        XCTAssertGreaterThan(downCounts.failed + downCounts.droppedAtClose, 0)
    }

    // MARK: limits

    /// A storm of 1,000 alerts of different symbols: the bucket's 5 go out at once, the other 995 are
    /// suppressed and told in one summary (at close here: the bucket refills one a minute).
    func testAStormIsRateLimitedAndSummarised() throws {
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let service = try Self.service(Self.config(slackPort: slack.port, rules: "  price_spike: {slack: warning}\n",
                                                   extra: "rate_limit: {burst: 5, per_minute: 1}\n"),
                                       slackPort: slack.port)
        let started = Date()
        for index in 0..<1_000 { service.submit(Self.anomaly("spot:SYM\(index)")) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "submitting never waits on the network")
        XCTAssertEqual(slack.waitFor(5).count, 5)
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(slack.records.count, 5, "nothing more before a token is free")
        service.close(waitNanoseconds: 10_000_000_000)
        let received = slack.records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.count, 6)
        XCTAssertEqual(received.prefix(5).map(\.subject), (0..<5).map { "spot:SYM\($0)" })
        let summary = try XCTUnwrap(received.last)
        XCTAssertTrue(summary.isSummary)
        XCTAssertTrue(summary.title.contains("995 suppressed by the rate limit"), summary.title)
        XCTAssertEqual(summary.fields["suppressed by the rate limit"], "price_spike 995")
        let counts = service.counters(channel: 0)
        XCTAssertEqual(counts.sent, 6)
        XCTAssertEqual(counts.summariesSent, 1)
        XCTAssertEqual(counts.suppressed, 995)
        XCTAssertEqual(counts.dropped + counts.droppedAtClose + counts.failed, 0)
        // The same counters as metric points (InfluxDB; Prometheus tape_alerts_<field>{channel}).
        let points = service.metricPoints()
        XCTAssertEqual(points.map(\.measurement), ["tape_alerts"])
        XCTAssertEqual(points.first?.tags.map { "\($0.key)=\($0.value)" }, ["channel=slack"])
        let fields = Dictionary(uniqueKeysWithValues: (points.first?.fields ?? []).map { ($0.key, $0.value) })
        XCTAssertEqual(fields["raised"], .integer(1_000))
        XCTAssertEqual(fields["sent"], .integer(6))
        XCTAssertEqual(fields["suppressed"], .integer(995))
        XCTAssertEqual(fields["dropped"], .integer(0))
    }

    /// 1,000 alerts of one rule and symbol inside the window: one post, and the 999 repeats told in the
    /// closing summary; a higher severity breaks through the window.
    func testRepeatsOfOneRuleAndSymbolAreOneAlertWithACount() throws {
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let service = try Self.service(Self.config(slackPort: slack.port, rules: "  price_spike: {slack: warning}\n",
                                                   extra: "dedupe_window: 10m\n"),
                                       slackPort: slack.port)
        let start: Int64 = 1_723_161_600_000_000_000
        for index in 0..<1_000 {
            service.submit(Self.anomaly("spot:BTCUSDT", time: start + Int64(index) * 100_000_000))
        }
        service.submit(Self.anomaly("spot:BTCUSDT", severity: .critical, time: start + 200_000_000_000))
        // After the window: the next one carries the count of the window before.
        service.submit(Self.anomaly("spot:BTCUSDT", time: start + 900_000_000_000))
        service.submit(Self.anomaly("spot:BTCUSDT", time: start + 900_500_000_000))
        service.close(waitNanoseconds: 10_000_000_000)
        let received = slack.records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.count, 4, "\(received)")
        XCTAssertEqual(received[0].severity, "warning")
        XCTAssertEqual(received[1].severity, "critical", "a higher severity is not a repeat")
        XCTAssertEqual(received[1].repeatsBefore, 999)
        XCTAssertEqual(received[2].repeatsBefore, 0)
        XCTAssertTrue(received[3].isSummary)
        XCTAssertEqual(received[3].fields["de-duplicated since their last alert"], "price_spike spot:BTCUSDT 1")
        let counts = service.counters(channel: 0)
        XCTAssertEqual(counts.deduplicated, 1_000)
        XCTAssertEqual(counts.sent, 4)
    }

    /// A feed that flaps 50 times: the connector report raises `feed_disconnected` each time; one alert
    /// goes out for the window, and the closing summary counts the other 49.
    func testAFlappingFeedGivesOneAlertPerWindow() throws {
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let smtp = try LoopbackReceiver("smtp")
        defer { smtp.stop() }
        let yaml = Self.config(slackPort: slack.port, smtpPort: smtp.port, rules: """
              feed_disconnected: {slack: warning}
              feed_refused: {slack: critical, email: critical}
            dedupe_window: 1m
            """)
        let service = try Self.service(yaml, slackPort: slack.port)
        let sink = AlertSink(service: service, symbols: SymbolTable(), closesService: true)
        let report = ConnectorReport(feeds: 1, log: { _ in }, listeners: [sink])
        for _ in 0..<50 {
            report.disconnected(0, "binance-usdm", peer: "127.0.0.1:9", "closed by peer (1006)")
        }
        report.fail(ConnectorReport.Fatal(feed: "binance-usdm", peer: "127.0.0.1:9", detail: "HTTP 401 bad key"))
        XCTAssertEqual(smtp.waitFor(1).count, 1)
        try sink.close()
        let received = slack.records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.filter { !$0.isSummary && $0.rule == "feed_disconnected" }.count, 1)
        XCTAssertEqual(received.filter { $0.rule == "feed_refused" }.count, 1)
        let first = try XCTUnwrap(received.first)
        XCTAssertEqual(first.subject, "binance-usdm")
        XCTAssertEqual(first.fields["detail"], "127.0.0.1:9: closed by peer (1006); reconnecting")
        let summary = try XCTUnwrap(received.last)
        XCTAssertTrue(summary.isSummary)
        XCTAssertEqual(summary.fields["de-duplicated since their last alert"], "feed_disconnected binance-usdm 49")
        let mail = try XCTUnwrap(smtp.records.first.flatMap(ReceivedAlert.email))
        XCTAssertEqual(mail.headers["Subject"], "tape [critical] feed_refused binance-usdm")
    }

    /// `tape live --alerts` against `tape feed-sim` dropping the connection 5 times: one
    /// `feed_disconnected` alert for the window, the other 4 counted in the closing summary; then a
    /// feed refusing the key: one critical `feed_refused` email.
    func testALiveSessionAlertsOnDisconnectsAndARefusedKey() throws {
        let tape = try AlertTestData.tapeBinary()
        let capture = try AlertTestData.shared("binance-feed/usdm-btcusdt_20240808.gz")
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let smtp = try LoopbackReceiver("smtp")
        defer { smtp.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.config(slackPort: slack.port, smtpPort: smtp.port, rules: """
              feed_disconnected: {slack: warning}
              feed_refused: {slack: critical, email: critical}
            dedupe_window: 10m
            """).write(toFile: directory + "/alerts.yaml", atomically: true, encoding: .utf8)
        let environment = Self.environment(slackPort: slack.port)

        let drops = try FeedSimulator(tape, [capture, "--protocol", "binance", "--speed", "max",
                                             "--drop-after-messages", "17000"])
        let live = try AlertTestData.run(tape, ["live", "--feed", "binance-usdm:btcusdt=ws://127.0.0.1:\(drops.port)",
                                                "--duration", "6s", "--out", directory + "/live", "--quiet",
                                                "--alerts", directory + "/alerts.yaml"], environment: environment)
        drops.stop()
        XCTAssertEqual(live.status, 0, live.standardError)
        let received = slack.records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.count, 2, "\(received)")
        XCTAssertEqual(received.first?.rule, "feed_disconnected")
        XCTAssertEqual(received.first?.subject, "binance-usdm")
        XCTAssertEqual(received.first?.fields["detail"], "ws://127.0.0.1:\(drops.port): closed; reconnecting")
        // Every drop the session saw raised one fault (the simulator drops 5 times when the machine keeps
        // up; the session's own count decides): the first is sent, the rest told in the summary.
        let summary = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: directory + "/live/summary.json"))) as? [String: Any]
        let counts = try XCTUnwrap((summary?["stores"] as? [String: Any])?["alerts"] as? [String: Any])
        let raised = try XCTUnwrap(counts["raised"] as? Int)
        let feeds = (summary?["live"] as? [String: Any])?["feeds"] as? [[String: Any]]
        let reconnects = try XCTUnwrap((feeds?.first?["connection"] as? [String: Any])?["reconnects"] as? Int)
        XCTAssertGreaterThanOrEqual(raised, 2, "the simulator dropped the connection several times")
        XCTAssertTrue([reconnects, reconnects + 1].contains(raised), "one fault per drop: \(raised) vs \(reconnects)")
        XCTAssertEqual(received.last?.fields["de-duplicated since their last alert"],
                       "feed_disconnected binance-usdm \(raised - 1)")
        XCTAssertEqual(smtp.records.count, 0, "a disconnect is not for email")

        let refusing = try FeedSimulator(tape, [capture, "--protocol", "polygon", "--speed", "max",
                                                "--api-key", "the-right-one"])
        let refused = try AlertTestData.run(tape, ["live", "--feed", "polygon:ETHUSDT=ws://127.0.0.1:\(refusing.port)",
                                                   "--duration", "20s", "--out", directory + "/refused", "--quiet",
                                                   "--alerts", directory + "/alerts.yaml"],
                                            environment: environment.merging(["POLYGON_API_KEY": "a-wrong-key"]) { $1 })
        refusing.stop()
        XCTAssertEqual(refused.status, 7, refused.standardError)
        let mails = smtp.waitFor(1).compactMap(ReceivedAlert.email)
        XCTAssertEqual(mails.count, 1)
        XCTAssertEqual(mails.first?.headers["Subject"], "tape [critical] feed_refused polygon")
        XCTAssertFalse(mails.first?.alert.fields["detail"]?.contains("a-wrong-key") ?? true, "the key is never sent")
    }

    /// A counter watched by the sink (a store's outages): each increase between polls is one
    /// `store_outage` fault.
    func testAWatchedOutageCounterRaisesStoreOutage() throws {
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let service = try Self.service(Self.config(slackPort: slack.port, rules: "  store_outage: {slack: warning}\n",
                                                   extra: "dedupe_window: 0s\n"), slackPort: slack.port)
        let sink = AlertSink(service: service, symbols: SymbolTable(), closesService: true)
        let outages = LockedCounter()
        sink.watch(rule: PipelineFault.storeOutage, subject: "postgres", severity: .critical,
                   detail: "PostgreSQL away") { outages.value }
        sink.poll()
        outages.add(1)
        sink.poll()
        sink.poll()
        outages.add(2)
        sink.poll()
        try sink.close()
        let received = slack.records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.map(\.rule), ["store_outage", "store_outage"])
        XCTAssertEqual(received.map { $0.fields["detail"] ?? "" }, ["PostgreSQL away (1 so far)", "PostgreSQL away (3 so far)"])
        XCTAssertEqual(received.first?.severity, "critical")
    }

    /// The rate limit's summary goes as soon as a token is free, not only at close.
    func testSuppressedAlertsAreSummarisedWhenATokenIsFree() throws {
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        // One token, refilled every half second.
        let service = try Self.service(Self.config(slackPort: slack.port, rules: "  \"*\": {slack: info}\n",
                                                   extra: "rate_limit: {burst: 1, per_minute: 120}\n"),
                                       slackPort: slack.port)
        for index in 0..<10 { service.submit(Self.anomaly("spot:S\(index)", rule: "volume_spike")) }
        let records = slack.waitFor(2, seconds: 5)
        let received = records.compactMap(ReceivedAlert.slack)
        XCTAssertEqual(received.count, 2)
        XCTAssertEqual(received.first?.subject, "spot:S0")
        XCTAssertEqual(received.last?.title, "*tape [summary] 9 suppressed by the rate limit*")
        XCTAssertEqual(received.last?.fields["suppressed by the rate limit"], "volume_spike 9")
        service.close()
        XCTAssertEqual(slack.records.count, 2, "nothing left to tell at close")
    }

    /// A receiver answering 500 twice: retried with backoff, delivered on the third attempt.
    func testServerErrorsAreRetriedThenDelivered() throws {
        let slack = try LoopbackReceiver("webhook", arguments: ["--fail-first", "2"])
        defer { slack.stop() }
        let lines = LogLines()
        let service = try Self.service(Self.config(slackPort: slack.port, rules: "  \"*\": {slack: warning}\n",
                                                   extra: "retries: {attempts: 4, initial_backoff: 50ms, max_backoff: 200ms}\n"),
                                       slackPort: slack.port, log: { lines.append($0) })
        service.submit(Self.anomaly("spot:ETHUSDT"))
        let records = slack.waitFor(3)
        XCTAssertEqual(records.map { $0["status"] as? Int }, [500, 500, 200])
        XCTAssertEqual(Set(records.compactMap { $0["body"] as? String }).count, 1, "the same message each time")
        service.close()
        let counts = service.counters(channel: 0)
        XCTAssertEqual(counts.sent, 1)
        XCTAssertEqual(counts.retries, 2)
        XCTAssertEqual(counts.failed, 0)
        XCTAssertEqual(lines.all.count, 3, "\(lines.all)")
        XCTAssertTrue(lines.all[0].contains("slack 127.0.0.1:\(slack.port): not delivered (HTTP 500)"), lines.all[0])
        XCTAssertFalse(lines.all.joined().contains("s3cr3t"), "the webhook's path is never logged")
        XCTAssertTrue(lines.all[1].contains("delivering again"))
        XCTAssertTrue(lines.all[2].contains("slack 127.0.0.1:\(slack.port): sent "), lines.all[2])
    }

    /// Credentials over `smtp://` require STARTTLS: a server without it (aiosmtpd, plain) gets no
    /// message and never the password; the message fails at once (no retry can help), the log names the
    /// server only.
    func testCredentialsAreNeverSentWithoutTLS() throws {
        let smtp = try LoopbackReceiver("smtp")
        defer { smtp.stop() }
        let yaml = """
            channels:
              email: {smtp_url: "smtp://127.0.0.1:\(smtp.port)", from: tape@example.com, to: oncall@example.com,
                      username_env: USER_VARIABLE, password_env: PASSWORD_VARIABLE}
            rules: {"*": {email: info}}
            """
        let config = try AlertConfig.parse(yaml: yaml, environment: ["USER_VARIABLE": "tape",
                                                                     "PASSWORD_VARIABLE": "pa55w0rd-secret"])
        let lines = LogLines()
        let service = AlertService(config: config, log: { lines.append($0) })
        service.submit(Self.anomaly("spot:BTCUSDT"))
        service.close(waitNanoseconds: 10_000_000_000)
        let counts = service.counters(channel: 0)
        XCTAssertEqual(counts.sent, 0)
        XCTAssertEqual(counts.failed, 1)
        XCTAssertEqual(counts.retries, 0, "a server without TLS will not grow it: no retry")
        XCTAssertEqual(smtp.records.count, 0)
        XCTAssertEqual(lines.all.count, 1, "\(lines.all)")
        XCTAssertTrue(lines.all[0].contains("email 127.0.0.1:\(smtp.port): refused"), lines.all[0])
        XCTAssertFalse(lines.all.joined().contains("pa55w0rd"))
    }

    /// A slow receiver and a queue of 3: a burst is dropped and counted at once, never waited for.
    func testAFullQueueDropsAndCountsWithoutWaiting() throws {
        let slow = try LoopbackReceiver("webhook", arguments: ["--sleep", "10"])
        defer { slow.stop() }
        let service = try Self.service(Self.config(slackPort: slow.port, rules: "  \"*\": {slack: info}\n",
                                                   extra: "queue_capacity: 3\nrate_limit: {burst: 1000, per_minute: 60}\n"
                                                       + "request_timeout: 30s\n"),
                                       slackPort: slow.port)
        let started = Date()
        for index in 0..<100 { service.submit(Self.anomaly("spot:S\(index)")) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.5)
        XCTAssertEqual(slow.waitFor(1).count, 1)
        let counts = service.counters(channel: 0)
        // One in flight, 3 queued, the rest dropped (the sender may not yet have taken the first).
        XCTAssertGreaterThanOrEqual(counts.dropped, 96)
        XCTAssertLessThanOrEqual(counts.dropped, 97)
        let closing = Date()
        service.close(waitNanoseconds: 200_000_000)
        XCTAssertLessThan(Date().timeIntervalSince(closing), 1.0, "close waits at most its limit")
        // Everything but the one in flight is dropped: at submit (queue full) or at close (still queued).
        let closed = service.counters(channel: 0)
        XCTAssertEqual(closed.dropped + closed.droppedAtClose, 99)
        XCTAssertGreaterThanOrEqual(closed.droppedAtClose, 2)
        XCTAssertEqual(closed.sent, 0)
    }

    // MARK: config

    func testTheConfigNamesSecretsByVariableAndRefusesMistakes() throws {
        let example = packageRoot().appendingPathComponent("config/alerts.yaml").path
        let environment = ["TAPE_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
                           "TAPE_SMTP_USER": "tape", "TAPE_SMTP_PASSWORD": "pw"]
        let config = try AlertConfig.load(path: example, environment: environment)
        XCTAssertEqual(config.channels.map(\.name), ["slack", "email"])
        XCTAssertEqual(config.threshold(rule: "price_spike", channel: "slack"), .warning)
        XCTAssertEqual(config.threshold(rule: "price_spike", channel: "email"), .critical)
        let text = try String(contentsOfFile: example, encoding: .utf8)
        XCTAssertFalse(text.contains("hooks.slack.com/services/T"), "no webhook URL in the file")

        XCTAssertThrowsError(try AlertConfig.load(path: example, environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("TAPE_SLACK_WEBHOOK_URL is not set"), "\(error)")
        }
        let cases: [(String, String)] = [
            ("channels: {slack: {webhook_url: x}}\n", "unknown key"),
            ("channels: {email: {smtp_url: \"smtp://u:p@h:25\", from: a@b, to: c@d}}\n", "no credentials in smtp_url"),
            ("channels: {slack: {webhook_url_env: V}}\nrules: {x: {email: warning}}\n", "no such channel"),
            ("channels: {slack: {webhook_url_env: V}}\nrules: {x: {slack: loud}}\n", "expected info, warning, critical or off"),
            ("channels: {slack: {webhook_url_env: V}}\ndedupe_window: soon\n", "expected a duration"),
            ("rules: {}\n", "name at least one channel"),
        ]
        for (yaml, message) in cases {
            XCTAssertThrowsError(try AlertConfig.parse(yaml: yaml, environment: ["V": "http://127.0.0.1:1/x"])) { error in
                XCTAssertTrue("\(error)".contains(message), "\(yaml): \(error)")
            }
        }
    }

    /// A loopback port with nothing listening (bound, closed).
    static func closedPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(descriptor, raw, length) == 0, getsockname(descriptor, raw, &length) == 0 else {
                    throw MissingRequirement(description: "cannot bind a loopback port")
                }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ amount: Int) { lock.withLock { count += amount } }
    var value: Int { lock.withLock { count } }
}

/// `tape feed-sim` on a free loopback port (its first stdout line names it), stopped by the test.
final class FeedSimulator {
    let process = Process()
    let port: Int

    init(_ tape: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = ["feed-sim"] + arguments + ["--port", "0"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening "), let port = text.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.terminate()
            throw MissingRequirement(description: "tape feed-sim did not start: '\(text)'")
        }
        self.port = port
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
