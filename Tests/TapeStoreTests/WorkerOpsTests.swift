import Foundation
import TapeStore
import TapeTestSupport
import XCTest

/// `tape work` and `tape ingest` as an operator sees them: `/ready` of `--metrics-listen`, the worker riding
/// out its PostgreSQL stopped and started again, and the log lines (`--log-format json`, `--log-level`).
/// Against the broker of `make services` (a topic of the test's own) and, for the outage, a PostgreSQL of the
/// test's own (`PrivatePostgres`): the shared server is never stopped.
extension PostgresStoreTests {
    /// Starts `tape` with stdout and stderr in files of their own (`folder/NAME.out`, `folder/NAME.err`).
    func startTape(_ arguments: [String], folder: String, name: String) throws -> Process {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = arguments
        for suffix in ["out", "err"] { _ = FileManager.default.createFile(atPath: "\(folder)/\(name).\(suffix)", contents: nil) }
        process.standardOutput = FileHandle(forWritingAtPath: "\(folder)/\(name).out")
        process.standardError = FileHandle(forWritingAtPath: "\(folder)/\(name).err")
        try process.run()
        return process
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// `GET url` (curl): the status code (0: no answer) and the body.
    func get(_ url: String) -> (Int, String) {
        guard let (_, output, _) = try? shell("curl -s -m 2 -w '\\n%{http_code}' '\(url)'") else { return (0, "") }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// Polls `url` until its status is `status` (at most `seconds`); the last answer.
    @discardableResult
    func waitFor(_ url: String, status: Int, seconds: Double) -> (Int, String) {
        let deadline = Date().addingTimeInterval(seconds)
        var answer = get(url)
        while answer.0 != status && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            answer = get(url)
        }
        return answer
    }

    /// The `http://host:port` a `--metrics-listen 127.0.0.1:0` process announced on stderr (text or JSON).
    func metricsBase(_ stderrPath: String, seconds: Double = 20) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let log = text(stderrPath)
            if let start = log.range(of: "metrics at http://") {
                return "http://" + log[start.upperBound...].prefix { $0 != "/" }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return nil
    }

    /// `/ready`'s dependency `name` (`postgres`, `kafka`, `feed binance-spot`): its `status`.
    func dependencyStatus(_ body: String, _ name: String) -> String? {
        guard let ready = try? JSONDecoder().decode(ReadyBody.self, from: Data(body.utf8)) else { return nil }
        return ready.dependencies[name]?.status
    }

    /// PostgreSQL stopped with `pg_ctl stop -m immediate` while a worker follows a paced ingest, started again
    /// a few seconds later: the worker keeps running; its `/ready` goes 503 naming postgres, then 200; it says
    /// the outage once and its end once (no line per retry); and at the end PostgreSQL holds exactly the replay
    /// of the ingest's recording — every tick once, bars, indicators and anomalies row for row.
    func testTapeWorkRidesOutItsPostgreSQLStoppedAndStartedAgain() throws {
        try requireBroker()
        let postgres = try PrivatePostgres()
        let url = try postgres.createDatabase("work")
        let inputs = try captures().filter { $0.hasSuffix("spot-btcusdt_20240808.gz") || $0.hasSuffix("spot-ethusdt_20240808.gz") }
        let folder = temporaryFolder("pg-outage")
        let topic = "tick_data_\(getpid())_pg_outage"
        let (simulator, port) = try startFeedSim(inputs, speed: "20", folder: folder)
        defer { simulator.terminate(); simulator.waitUntilExit() }
        let ingest = try startTape(["ingest", "--feed", "binance-spot:btcusdt,ethusdt=ws://127.0.0.1:\(port)", "--duration", "22s",
                                    "--out", folder + "/ingest", "--quiet", "--kafka", Self.broker, "--topic", topic,
                                    "--partitions", "2"], folder: folder, name: "ingest")
        Thread.sleep(forTimeInterval: 1.5)
        var arguments = workArguments(topic: topic, group: "outage-\(getpid())", store: url, name: "w1", idle: 10)
        arguments += ["--metrics-listen", "127.0.0.1:0"]
        let worker = try startTape(arguments, folder: folder, name: "work")
        defer { if worker.isRunning { worker.terminate() } }
        let base = try XCTUnwrap(metricsBase(folder + "/work.err"), text(folder + "/work.err"))
        let connection = try PostgresConnection(url: url)
        var committed = false
        for _ in 0..<150 where !committed {
            Thread.sleep(forTimeInterval: 0.1)
            committed = ((try? WorkerCheckpoints.offsets(connection, group: "outage-\(getpid())", topic: topic)) ?? [:])
                .values.contains { $0 > 0 }
        }
        XCTAssertTrue(committed, "the worker committed: \(text(folder + "/work.err"))")
        let before = waitFor(base + "/ready", status: 200, seconds: 10)
        XCTAssertEqual(before.0, 200, before.1)
        XCTAssertEqual(dependencyStatus(before.1, "postgres"), "up", before.1)
        XCTAssertEqual(dependencyStatus(before.1, "kafka"), "up", before.1)

        postgres.stop(immediate: true)
        let away = waitFor(base + "/ready", status: 503, seconds: 15)
        XCTAssertEqual(away.0, 503, "not ready while PostgreSQL is away: \(away.1)")
        XCTAssertEqual(dependencyStatus(away.1, "postgres"), "down", away.1)
        Thread.sleep(forTimeInterval: 4)
        XCTAssertTrue(worker.isRunning, "the worker runs on while PostgreSQL is away: \(text(folder + "/work.err"))")
        try postgres.start()
        let back = waitFor(base + "/ready", status: 200, seconds: 30)
        XCTAssertEqual(back.0, 200, "ready again once PostgreSQL is back: \(back.1)")

        waitExit(ingest, seconds: 90, "ingest")
        XCTAssertEqual(ingest.terminationStatus, 0, text(folder + "/ingest.err"))
        waitExit(worker, seconds: 120, "the worker")
        XCTAssertEqual(worker.terminationStatus, 0, text(folder + "/work.err"))
        let log = text(folder + "/work.err")
        // Said once by the worker — or, when a partition's store connection sat idle through the stop, once more
        // when that store next writes (a documented limit: an idle store notices PostgreSQL gone only at its next
        // write; seen in CI, 0.1 s after the first end). Every "away" has its "back".
        let aways = log.components(separatedBy: "is away: reading paused").count - 1
        let backs = log.components(separatedBy: "is back after").count - 1
        XCTAssertTrue((1...2).contains(aways), "the outage said once (twice with an idle store): \(log)")
        XCTAssertEqual(backs, aways, "each away has its end: \(log)")
        XCTAssertTrue(log.contains("tape: postgres 127.0.0.1:\(postgres.port)/work: down ("), log)

        let replay = folder + "/replay"
        try runTape(["replay"] + (try recordingFiles(folder + "/ingest")) + ["--out", replay, "--quiet", "--no-report"])
        try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(replay))
        XCTAssertEqual(try PostgresConnection(url: url).query("""
            SELECT count(*) FROM (SELECT symbol, receive_ns, sequence, kind FROM ticks GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d
            """).first?[0], "0", "no tick twice")
    }

    /// `--log-format json`: every stderr line of `tape ingest` and `tape work` is one JSON object whose first
    /// keys are ts, level, label, message (in that order), with the events' metadata (a partition taken: its
    /// topic, partition, offset). The ingest's `/ready` names its feed and Kafka. `--log-level warning` keeps
    /// the info lines out.
    func testJSONLogLinesAndTheLogLevel() throws {
        try requireBroker()
        let inputs = try captures().filter { $0.hasSuffix("spot-btcusdt_20240808.gz") }
        let folder = temporaryFolder("json-logs")
        let topic = "tick_data_\(getpid())_json"
        let (simulator, port) = try startFeedSim(inputs, speed: "30", folder: folder)
        defer { simulator.terminate(); simulator.waitUntilExit() }
        let ingest = try startTape(["ingest", "--feed", "binance-spot:btcusdt=ws://127.0.0.1:\(port)", "--duration", "6s",
                                    "--out", folder + "/ingest", "--kafka", Self.broker, "--topic", topic, "--partitions", "2",
                                    "--metrics-listen", "127.0.0.1:0", "--log-format", "json"], folder: folder, name: "ingest")
        let base = try XCTUnwrap(metricsBase(folder + "/ingest.err"), text(folder + "/ingest.err"))
        let ready = waitFor(base + "/ready", status: 200, seconds: 15)
        XCTAssertEqual(ready.0, 200, ready.1)
        XCTAssertEqual(dependencyStatus(ready.1, "feed binance-spot"), "up", ready.1)
        XCTAssertEqual(dependencyStatus(ready.1, "kafka"), "up", ready.1)
        XCTAssertEqual(get(base + "/health").0, 200)
        waitExit(ingest, seconds: 60, "ingest")
        XCTAssertEqual(ingest.terminationStatus, 0, text(folder + "/ingest.err"))

        let store = try freshDatabase("json")
        let work = try startTape(workArguments(topic: topic, group: "json-\(getpid())", store: store, name: "j1")
                                 + ["--log-format", "json"], folder: folder, name: "work")
        waitExit(work, seconds: 90, "the worker")
        XCTAssertEqual(work.terminationStatus, 0, text(folder + "/work.err"))

        var events: [LogLine] = []
        for name in ["ingest", "work"] {
            let lines = text("\(folder)/\(name).err").split(separator: "\n")
            XCTAssertFalse(lines.isEmpty, "\(name) logged")
            for line in lines {
                XCTAssertTrue(line.hasPrefix("{\"ts\":\"") && line.hasSuffix("}"), "\(name): one JSON object a line: \(line)")
                let keys = ["\"ts\":", "\"level\":", "\"label\":", "\"message\":"].map { line.range(of: $0)?.lowerBound }
                XCTAssertFalse(keys.contains(nil), "\(name): ts, level, label, message: \(line)")
                if !keys.contains(nil) { XCTAssertEqual(keys.map { $0! }, keys.map { $0! }.sorted(), "in that order: \(line)") }
                guard let event = try? JSONDecoder().decode(LogLine.self, from: Data(line.utf8)) else {
                    XCTFail("\(name): not a JSON object: \(line)")
                    continue
                }
                XCTAssertTrue(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(event.level), line.description)
                XCTAssertTrue(event.label.hasPrefix("tape"), line.description)
                XCTAssertNotNil(ISO8601DateFormatter.withFractionalSeconds.date(from: event.ts), "ts is ISO-8601 UTC: \(event.ts)")
                events.append(event)
            }
        }
        let took = events.filter { $0.event == "took" }
        XCTAssertEqual(took.count, 2, "both partitions taken: \(events.map(\.message))")
        XCTAssertEqual(Set(took.compactMap(\.partition)), [0, 1])
        XCTAssertTrue(took.allSatisfy { $0.topic == topic && $0.label == "tape.work" }, "\(took)")
        XCTAssertTrue(events.contains { $0.message.hasPrefix("tape: metrics at http://") }, "\(events.map(\.message))")
        XCTAssertTrue(events.contains { $0.message.hasPrefix("tape: publishing to kafka") && $0.topic == topic })

        // --log-level warning: a clean run says nothing on stderr (its summary is on stdout).
        let quiet = try startTape(workArguments(topic: topic, group: "quiet-\(getpid())", store: try freshDatabase("quiet"),
                                                name: "q1") + ["--log-level", "warning"], folder: folder, name: "quiet")
        waitExit(quiet, seconds: 90, "the quiet worker")
        XCTAssertEqual(quiet.terminationStatus, 0, text(folder + "/quiet.err"))
        XCTAssertFalse(text(folder + "/quiet.err").contains(" took \(topic)["), text(folder + "/quiet.err"))
        XCTAssertFalse(text(folder + "/quiet.err").contains("joining group"), text(folder + "/quiet.err"))
        XCTAssertTrue(text(folder + "/quiet.out").contains("next offsets"), text(folder + "/quiet.out"))
        // A bad value is a usage error naming the option.
        let bad = try startTape(["work", "--store", store, "--log-format", "xml"], folder: folder, name: "bad")
        bad.waitUntilExit()
        XCTAssertEqual(bad.terminationStatus, 64)
        XCTAssertTrue(text(folder + "/bad.err").contains("--log-format 'xml'"), text(folder + "/bad.err"))
    }
}

/// The keys of a log line this test reads (the rest of the metadata is ignored).
struct LogLine: Decodable {
    let ts: String
    let level: String
    let label: String
    let message: String
    let event: String?
    let topic: String?
    let partition: Int?
    let offset: Int?
}

/// `/ready`'s body.
struct ReadyBody: Decodable {
    struct Dependency: Decodable {
        let status: String
        let required: Bool
    }
    let status: String
    let dependencies: [String: Dependency]
}

extension ISO8601DateFormatter {
    /// `2026-11-26T07:10:00.123Z`.
    static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
