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
}

/// InfluxDB 1.x `/query` answer: the first column is the time, then the selected values (null: absent).
struct InfluxAnswer: Decodable {
    struct Result: Decodable { var series: [Series]? }
    struct Series: Decodable {
        var values: [[Double?]]
    }
    var results: [Result]
}
