import Foundation
import XCTest
import TapeTestSupport

/// Pipeline faults end to end, through the built `tape` and real servers: a poison record consumed by
/// `tape work` (the shared tansu of `make services`), a Redis of the test's own stopped and started again
/// under `tape live --store redis://…`, and the alerts' counters in InfluxDB. What was sent is read from
/// the loopback receiver's record; the reference for the counts is the receiver, the broker's delivery
/// reports and InfluxDB's own query answers.
extension AlertsTests {
    static let sharedBroker = "127.0.0.1:59092"

    /// A topic of this process on the shared broker, created by the independent client (confluent-kafka),
    /// then `count` records of one key produced into it: the offsets the broker gave them.
    static func poisonTopic(_ label: String, count: Int) throws -> (topic: String, offsets: [Int]) {
        try requireOrSkip(Loopback.isListening(port: 59092),
                          "the Kafka broker (tansu) of `make services` at \(sharedBroker)")
        let topic = "tape_alerts_\(label)_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let scripts = packageRoot().appendingPathComponent("scripts").path
        let folder = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let create = spawnAndWait(["/bin/sh", "-c", "python3 -c \"import sys; sys.path.insert(0, '\(scripts)'); "
            + "import kafka_client; kafka_client.create_topic('\(sharedBroker)', '\(topic)', 1)\" "
            + "> '\(folder)/create' 2>&1"])
        XCTAssertEqual(create, 0, (try? String(contentsOfFile: folder + "/create", encoding: .utf8)) ?? "")
        let produce = spawnAndWait(["/bin/sh", "-c", "python3 '\(scripts)/kafka_client.py' produce "
            + "--bootstrap \(sharedBroker) --topic \(topic) --count \(count) --keys 1 "
            + "> '\(folder)/produced' 2> '\(folder)/produce.err'"])
        XCTAssertEqual(produce, 0, (try? String(contentsOfFile: folder + "/produce.err", encoding: .utf8)) ?? "")
        let lines = ((try? String(contentsOfFile: folder + "/produced", encoding: .utf8)) ?? "").split(separator: "\n")
        let offsets = try lines.map { line -> Int in
            let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(record["partition"] as? Int, 0)
            return try XCTUnwrap(record["offset"] as? Int)
        }
        XCTAssertEqual(offsets.count, count, "the broker acknowledged every record")
        return (topic, offsets)
    }

    /// Three records no decoder accepts (`value-0` …: shorter than a tick record), consumed by `tape work
    /// --alerts`: exactly one `poison_record` alert for the partition, naming the first offset the broker
    /// gave; the other two de-duplicated and told in the closing summary.
    func testPoisonRecordsConsumedByTapeWorkAreOneAlert() throws {
        let tape = try AlertTestData.tapeBinary()
        let (topic, offsets) = try Self.poisonTopic("poison", count: 3)
        let databases = ScratchDatabases(namePrefix: "tape_alerts_test")
        defer { databases.dropAll() }
        let url = try databases.fresh("poison")
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.config(slackPort: slack.port, rules: "  poison_record: {slack: warning}\n",
                        extra: "dedupe_window: 10m\n")
            .write(toFile: directory + "/alerts.yaml", atomically: true, encoding: .utf8)
        let work = try AlertTestData.run(tape, ["work", "--kafka", Self.sharedBroker, "--topic", topic,
                                                "--group", "g-\(topic)", "--store", url, "--name", "poison",
                                                "--idle-exit-seconds", "4", "--spool", directory + "/spool",
                                                "--alerts", directory + "/alerts.yaml"],
                                         environment: Self.environment(slackPort: slack.port))
        XCTAssertEqual(work.status, 0, work.standardError)
        XCTAssertTrue(work.standardError.contains("poison record \(topic)[0] offset \(offsets[0])"), work.standardError)

        let received = slack.records.compactMap(ReceivedAlert.slack)
        let alerts = received.filter { !$0.isSummary }
        XCTAssertEqual(alerts.count, 1, "one alert for three poison records: \(received)")
        let alert = try XCTUnwrap(alerts.first)
        XCTAssertEqual(alert.rule, "poison_record")
        XCTAssertEqual(alert.subject, "\(topic)[0]")
        XCTAssertEqual(alert.severity, "warning")
        let detail = try XCTUnwrap(alert.fields["detail"])
        XCTAssertTrue(detail.hasPrefix("offset \(offsets[0]): ") && detail.hasSuffix("; skipped"), detail)
        let summaries = received.filter(\.isSummary)
        XCTAssertEqual(summaries.count, 1, "the repeats are told once, at the end: \(received)")
        XCTAssertEqual(summaries.first?.fields["de-duplicated since their last alert"], "poison_record \(topic)[0] 2")
    }

    /// `tape live --store redis://… --alerts` (fed by `tape feed-sim` with a real capture) while the test's own
    /// Redis goes away three times: the Redis sink's outages (summary.json) are one `store_outage` alert, the
    /// rest de-duplicated (no storm when it comes back and goes again) and told in the closing summary. With
    /// `--store influx://…` the alerts' counters are in InfluxDB's `tape_alerts` (channel `slack`), equal to
    /// what the receiver got.
    ///
    /// (`tape live`, not a paced `tape replay`: a paced replay polls its sinks every 4,096 events, so a
    /// replay of sparse bars hands over to Redis, and polls the outage counters, only a few times a run.)
    func testARedisOutageDuringALiveSessionIsOneStoreOutageAlertAndItsCountersAreInInflux() throws {
        let tape = try AlertTestData.tapeBinary()
        let capture = try AlertTestData.shared("binance-feed/spot-btcusdt_20240808.gz")
        let influx = "http://127.0.0.1:58086"
        let ping = spawnAndWait(["/usr/bin/curl", "-sf", "-o", "/dev/null", influx + "/ping"])
        try requireOrSkip(ping == 0, "InfluxDB of `make services` at \(influx)")
        let database = "tape_alerts_test_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = spawnAndWait(["/usr/bin/curl", "-sf", "-o", "/dev/null", "-XPOST", influx + "/query",
                                  "--data-urlencode", "q=DROP DATABASE \"\(database)\""]) }
        let redis = try PrivateServer.redis()
        defer { redis.stop() }
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.config(slackPort: slack.port, rules: "  store_outage: {slack: warning}\n",
                        extra: "dedupe_window: 10m\nclose_wait: 10s\n")
            .write(toFile: directory + "/alerts.yaml", atomically: true, encoding: .utf8)
        let feed = try FeedSimulator(tape, [capture, "--protocol", "binance", "--speed", "25"])
        defer { feed.stop() }
        let webhook = Self.environment(slackPort: slack.port).map { "\($0.key)=\($0.value)" }
        let live = try XCTUnwrap(spawnInBackground(
            ["/usr/bin/env"] + webhook + [tape, "live", "--feed", "binance-spot:btcusdt=ws://127.0.0.1:\(feed.port)",
                                          "--duration", "18s", "--out", directory + "/run", "--quiet",
                                          "--store", "redis://\(redis.address)",
                                          "--store", "influx://127.0.0.1:58086/\(database)",
                                          "--alerts", directory + "/alerts.yaml"],
            stdout: directory + "/live.log", stderr: directory + "/live.log"))
        sleep(3)
        for _ in 0..<3 {
            redis.stop()
            usleep(1_000_000)
            try redis.start()
            usleep(3_000_000)
        }
        XCTAssertEqual(waitForExit(live, seconds: 120), 0,
                       (try? String(contentsOfFile: directory + "/live.log", encoding: .utf8)) ?? "")

        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: directory + "/run/summary.json"))) as? [String: Any])
        let stores = try XCTUnwrap(summary["stores"] as? [String: Any])
        let outages = try XCTUnwrap((stores["redis"] as? [String: Any])?["outages"] as? Int)
        XCTAssertEqual(outages, 3, "the sink saw each of the three outages: \(stores)")

        let received = slack.records.compactMap(ReceivedAlert.slack)
        let alerts = received.filter { !$0.isSummary }
        XCTAssertEqual(alerts.count, 1, "one alert however often Redis went away: \(received)")
        XCTAssertEqual(alerts.first?.rule, "store_outage")
        XCTAssertEqual(alerts.first?.subject, "redis")
        XCTAssertEqual(alerts.first?.severity, "warning")
        XCTAssertEqual(alerts.first?.fields["detail"],
                       "Redis away: latest state held in memory, written on reconnect (1 so far)")
        let summaries = received.filter(\.isSummary)
        XCTAssertEqual(summaries.count, 1, "\(received)")
        XCTAssertEqual(summaries.first?.fields["de-duplicated since their last alert"],
                       "store_outage redis \(outages - 1)")

        // InfluxDB: the last sample of tape_alerts for the channel, against the receiver and summary.json.
        let query = "SELECT last(raised), last(sent), last(deduplicated), last(failed) FROM tape_alerts "
            + "WHERE channel = 'slack'"
        let answer = directory + "/influx.json"
        XCTAssertEqual(spawnAndWait(["/bin/sh", "-c", "curl -sf -G '\(influx)/query' --data-urlencode 'db=\(database)' "
            + "--data-urlencode epoch=ns " + "--data-urlencode \"q=\(query)\" > '\(answer)'"]), 0)
        let decoded = try JSONDecoder().decode(InfluxAnswer.self, from: Data(contentsOf: URL(fileURLWithPath: answer)))
        let row = try XCTUnwrap(decoded.results.first?.series?.first?.values.first, "tape_alerts has points")
        let counts = try XCTUnwrap((summary["stores"] as? [String: Any])?["alerts"] as? [String: Any])
        let raised = try XCTUnwrap(counts["raised"] as? Int)
        XCTAssertEqual(row[1].map { $0 >= Double(outages) && $0 <= Double(raised) }, true,
                       "raised: the outages and the anomalies (below threshold), at most summary.json's \(raised)")
        XCTAssertEqual(row[2], Double(alerts.count), "sent before the close: the alert the receiver got")
        XCTAssertEqual(row[3], Double(outages - 1), "de-duplicated: the count the receiver's summary tells")
        XCTAssertEqual(row[4], 0)
    }

    /// `tape live` polling FMP from the loopback vendor server (Tests/TapeRESTTests/vendor_server.py) that
    /// answers HTTP 500 to requests 1-3 and 5-7: two spells of three failed attempts in a row (the poller
    /// backs off and goes on; request 4 and 8 bring data). One `feed_failing` alert; the second spell is
    /// de-duplicated and told in the closing summary.
    func testARESTFeedFailingRepeatedlyIsOneFeedFailingAlert() throws {
        let tape = try AlertTestData.tapeBinary()
        let bars = try AlertTestData.shared("bars/btc-perp-20211231-20220201_1m.csv.gz")
        let script = packageRoot().appendingPathComponent("Tests/TapeRESTTests/vendor_server.py").path
        let key = "fmp-\(UUID().uuidString.prefix(8))"
        let vendor = Process()
        vendor.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        vendor.arguments = ["python3", script, "--bars", bars, "--symbol", "BTCUSD", "--key", key,
                            "--faults", (1...3).map { "fmp:\($0)=500" }.joined(separator: ",") + ","
                                + (5...7).map { "fmp:\($0)=500" }.joined(separator: ",")]
        let output = Pipe()
        vendor.standardOutput = output
        try vendor.run()
        defer { if vendor.isRunning { vendor.terminate() }; vendor.waitUntilExit() }
        let port = try announcedPort(output, of: vendor, what: "vendor_server.py")
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.config(slackPort: slack.port, rules: "  feed_failing: {slack: warning}\n",
                        extra: "dedupe_window: 10m\n")
            .write(toFile: directory + "/alerts.yaml", atomically: true, encoding: .utf8)
        // Backoff 1-2 s, 2-4 s, then 4-8 s after the third failure: the second spell is counted within ~20 s.
        let live = try AlertTestData.run(tape, ["live", "--feed", "fmp:BTCUSD=http://127.0.0.1:\(port)",
                                                "--poll-seconds", "1", "--duration", "32s",
                                                "--out", directory + "/live",
                                                "--quiet", "--alerts", directory + "/alerts.yaml"],
                                         environment: Self.environment(slackPort: slack.port)
                                             .merging(["FMP_API_KEY": key]) { $1 })
        XCTAssertEqual(live.status, 0, live.standardError)
        XCTAssertFalse(live.standardError.contains(key), "the key is never printed")
        let spells = live.standardError.components(separatedBy: "3 attempts in a row without data").count - 1
        XCTAssertEqual(spells, 2, "the vendor's two runs of three 500s: \(live.standardError)")

        let received = slack.records.compactMap(ReceivedAlert.slack)
        let alerts = received.filter { !$0.isSummary }
        XCTAssertEqual(alerts.count, 1, "\(received)")
        XCTAssertEqual(alerts.first?.rule, "feed_failing")
        XCTAssertEqual(alerts.first?.subject, "fmp")
        XCTAssertEqual(alerts.first?.severity, "warning")
        XCTAssertEqual(alerts.first?.fields["detail"],
                       "fmp 127.0.0.1:\(port): 3 attempts in a row without data, the last BTCUSD: HTTP 500: {}; "
                           + "backing off, polling goes on")
        XCTAssertEqual(received.filter(\.isSummary).first?.fields["de-duplicated since their last alert"],
                       "feed_failing fmp 1")
        XCTAssertFalse(slack.records.contains { ($0["body"] as? String)?.contains(key) ?? false }, "nor sent")
    }

    /// `tape ingest` publishing to a tansu of the test's own, stopped for 4 s in the middle and started again
    /// (empty: the publisher re-creates the topic and resends). One critical `bus_outage` alert however many
    /// times librdkafka reported every broker down (summary.json's `_ALL_BROKERS_DOWN`), the rest told in the
    /// closing summary; the session ends normally.
    func testAKafkaBrokerLostDuringIngestIsOneBusOutageAlert() throws {
        let tape = try AlertTestData.tapeBinary()
        let capture = try AlertTestData.shared("binance-feed/spot-btcusdt_20240808.gz")
        let broker = try PrivateServer.tansu()
        defer { broker.stop() }
        let slack = try LoopbackReceiver("webhook")
        defer { slack.stop() }
        let directory = try AlertTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.config(slackPort: slack.port, rules: "  bus_outage: {slack: warning}\n",
                        extra: "dedupe_window: 10m\n")
            .write(toFile: directory + "/alerts.yaml", atomically: true, encoding: .utf8)
        let feed = try FeedSimulator(tape, [capture, "--protocol", "binance", "--speed", "25"])
        defer { feed.stop() }
        let webhook = Self.environment(slackPort: slack.port).map { "\($0.key)=\($0.value)" }
        let ingest = try XCTUnwrap(spawnInBackground(
            ["/usr/bin/env"] + webhook + [tape, "ingest", "--feed", "binance-spot:btcusdt=ws://127.0.0.1:\(feed.port)",
                                          "--duration", "16s", "--out", directory + "/ingest", "--quiet",
                                          "--kafka", broker.address, "--topic", "tick_data_alerts", "--partitions", "1",
                                          "--alerts", directory + "/alerts.yaml"],
            stdout: directory + "/ingest.log", stderr: directory + "/ingest.log"))
        sleep(4)
        broker.stop()
        sleep(4)
        try broker.start()
        let code = waitForExit(ingest, seconds: 120)
        let log = (try? String(contentsOfFile: directory + "/ingest.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(code, 0, log)

        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: directory + "/ingest/summary.json"))) as? [String: Any])
        let kafka = try XCTUnwrap((summary["stores"] as? [String: Any])?["kafka"] as? [String: Any], "\(summary)")
        let down = try XCTUnwrap((kafka["client_errors"] as? [String: Any])?["_ALL_BROKERS_DOWN"] as? Int, "\(kafka)")
        XCTAssertGreaterThanOrEqual(down, 1)
        XCTAssertGreaterThanOrEqual(kafka["recoveries"] as? Int ?? 0, 1, "the records held back were resent: \(kafka)")

        let received = slack.records.compactMap(ReceivedAlert.slack)
        let alerts = received.filter { !$0.isSummary }
        XCTAssertEqual(alerts.count, 1, "\(received)")
        XCTAssertEqual(alerts.first?.rule, "bus_outage")
        XCTAssertEqual(alerts.first?.subject, "kafka")
        XCTAssertEqual(alerts.first?.severity, "critical")
        let detail = alerts.first?.fields["detail"] ?? ""
        XCTAssertTrue(detail.hasPrefix("Kafka away: records wait in the producer's queue"), detail)
        // Reports that arrive between two polls of the engine thread are one fault: at most down - 1 untold.
        if let untold = received.filter(\.isSummary).first?.fields["de-duplicated since their last alert"] {
            let count = Int(untold.split(separator: " ").last ?? "") ?? 0
            XCTAssertTrue(untold.hasPrefix("bus_outage kafka ") && (1..<down).contains(count), untold)
        }
    }
}

/// InfluxDB 1.x `/query` answer: the first column is the time, then the selected values (null: absent).
struct InfluxAnswer: Decodable {
    struct Result: Decodable { var series: [Series]? }
    struct Series: Decodable {
        var values: [[Double?]]
    }
    var results: [Result]
}
