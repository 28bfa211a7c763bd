import Foundation
import TapeStore
import TapeTestSupport
import XCTest

/// The distributed path end to end, on the local broker (tansu) and PostgreSQL of `make services`,
/// fed by `tape feed-sim` with real captures: `tape ingest` → `tick_data` → `tape work` → PostgreSQL,
/// against `tape replay` of the recording that `tape ingest` wrote.
extension PostgresStoreTests {
    static let broker = "127.0.0.1:59092"

    /// Runs a shell command to its end: (exit code, stdout, stderr); output to files, not pipes.
    func shell(_ command: String) throws -> (Int32, String, String) {
        let folder = temporaryFolder("sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "\(command) > '\(folder)/out' 2> '\(folder)/err'"]
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? "")
    }

    func requireBroker() throws {
        let up = (try? shell("(exec 3<>/dev/tcp/127.0.0.1/59092) 2>/dev/null && echo up").1.contains("up")) ?? false
        if !up { try skipOrFail(missing: "the Kafka broker (tansu) of `make services` at \(Self.broker)") }
    }

    /// Starts `tape` with `arguments` in the background (stdout/stderr to `log`).
    func startTape(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = arguments
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// feed-sim serving `captures` (Binance spot) at `speed`; its port.
    func startFeedSim(_ captures: [String], speed: String, folder: String) throws -> (Process, String) {
        let simulator = try startTape(["feed-sim"] + captures + ["--protocol", "binance", "--speed", speed, "--port", "0",
                                                                  "--port-file", folder + "/port"], log: folder + "/feed-sim.log")
        var port = ""
        for _ in 0..<100 where port.isEmpty {
            Thread.sleep(forTimeInterval: 0.1)
            port = ((try? String(contentsOfFile: folder + "/port", encoding: .utf8)) ?? "").split(separator: ":").last.map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        }
        XCTAssertFalse(port.isEmpty, "feed-sim wrote its port")
        return (simulator, port)
    }

    func waitExit(_ process: Process, seconds: Double, _ what: String) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning {
            XCTFail("\(what) still running after \(seconds) s")
            process.terminate()
        }
        process.waitUntilExit()
    }

    func recordingFiles(_ runFolder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: runFolder + "/recording").sorted().map { runFolder + "/recording/" + $0 }
    }

    func workArguments(topic: String, group: String, store: String, name: String, idle: Double = 4) -> [String] {
        ["work", "--kafka", Self.broker, "--topic", topic, "--group", group, "--store", store, "--name", name,
         "--idle-exit-seconds", String(idle), "--session-timeout-ms", "6000", "--max-poll-interval-ms", "10000",
         "--spool", temporaryFolder("work-spool")]
    }

    /// One ingest session of two spot captures (BTCUSDT, ETHUSDT) into a 3-partition topic; then one
    /// worker into one database, three workers into another: both equal the replay of the recording.
    func testIngestThenOneOrThreeWorkersEqualTheReplayOfTheRecording() throws {
        try requireBroker()
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let inputs = try captures().filter { $0.hasSuffix("spot-btcusdt_20240808.gz") || $0.hasSuffix("spot-ethusdt_20240808.gz") }
        XCTAssertEqual(inputs.count, 2)
        let folder = temporaryFolder("bus")
        let topic = "tick_data_\(getpid())_split"
        let (simulator, port) = try startFeedSim(inputs, speed: "60", folder: folder)
        defer { simulator.terminate(); simulator.waitUntilExit() }
        try runTape(["ingest", "--feed", "binance-spot:btcusdt,ethusdt=ws://127.0.0.1:\(port)", "--duration", "5s",
                     "--out", folder + "/ingest", "--quiet", "--kafka", Self.broker, "--topic", topic, "--partitions", "3"])
        let ingest = try summary(folder + "/ingest")
        let kafka = try XCTUnwrap((ingest["stores"] as? [String: Any])?["kafka"] as? [String: Any], "\(ingest)")
        XCTAssertEqual(kafka["failed"] as? Int, 0)
        XCTAssertEqual(kafka["delivered"] as? Int, kafka["enqueued"] as? Int, "every record acknowledged")
        let delivered = try XCTUnwrap(ingest["ticks_delivered"] as? Int)
        XCTAssertGreaterThan(delivered, 1_000)

        let replay = folder + "/replay"
        try runTape(["replay"] + (try recordingFiles(folder + "/ingest")) + ["--out", replay, "--quiet", "--no-report"])
        XCTAssertEqual(try summary(replay)["digest"] as? String, ingest["digest"] as? String, "live ≡ replay of its recording")
        let expected = try sortedRunFolder(replay)

        let one = try freshDatabase("one")
        let log1 = try runTape(workArguments(topic: topic, group: "one-\(getpid())", store: one, name: "solo"))
        XCTAssertTrue(log1.contains("took \(topic)[0] from the beginning"), log1)
        try assertStoreEqualsRunFolder(one, runFolder: expected)

        let three = try freshDatabase("three")
        var workers: [Process] = []
        for index in 0..<3 {
            workers.append(try startTape(workArguments(topic: topic, group: "three-\(getpid())", store: three, name: "w\(index)", idle: 8),
                                         log: folder + "/w\(index).log"))
            Thread.sleep(forTimeInterval: 0.3)
        }
        for worker in workers { waitExit(worker, seconds: 90, "a worker") }
        for worker in workers { XCTAssertEqual(worker.terminationStatus, 0) }
        let logs = (0..<3).map { (try? String(contentsOfFile: folder + "/w\($0).log", encoding: .utf8)) ?? "" }
        let owners = (0..<3).filter { logs[$0].contains(" took \(topic)[") }
        XCTAssertGreaterThanOrEqual(owners.count, 2, "the partitions were split: \(logs.joined(separator: "\n---\n"))")
        try assertStoreEqualsRunFolder(three, runFolder: expected)
        let connection = try PostgresConnection(url: three)
        let offsets = try WorkerCheckpoints.offsets(connection, group: "three-\(getpid())", topic: topic)
        XCTAssertEqual(offsets.count, 3, "every partition committed")
    }

    /// A worker following a paced ingest is killed with SIGKILL in the middle; a replacement takes its
    /// partitions from the committed checkpoints. Nothing is missing or twice in PostgreSQL, and the
    /// outputs equal the replay. A poison record produced into the topic is skipped and reported.
    func testAWorkerKilledInTheMiddleIsReplacedWithoutALossOrADuplicate() throws {
        try requireBroker()
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let inputs = try captures().filter { $0.hasSuffix("spot-btcusdt_20240808.gz") || $0.hasSuffix("spot-ethusdt_20240808.gz") }
        let folder = temporaryFolder("kill")
        let topic = "tick_data_\(getpid())_kill"
        let url = try freshDatabase("kill")
        let (simulator, port) = try startFeedSim(inputs, speed: "25", folder: folder)
        defer { simulator.terminate(); simulator.waitUntilExit() }
        let ingest = try startTape(["ingest", "--feed", "binance-spot:btcusdt,ethusdt=ws://127.0.0.1:\(port)", "--duration", "10s",
                                    "--out", folder + "/ingest", "--quiet", "--kafka", Self.broker, "--topic", topic,
                                    "--partitions", "2"], log: folder + "/ingest.log")
        Thread.sleep(forTimeInterval: 2)
        let first = try startTape(workArguments(topic: topic, group: "g-\(getpid())", store: url, name: "first", idle: 30),
                                  log: folder + "/first.log")
        // Until it has committed something, then a little more (work in flight, uncommitted).
        let connection = try PostgresConnection(url: url)
        var committed = false
        for _ in 0..<100 where !committed {
            Thread.sleep(forTimeInterval: 0.1)
            committed = ((try? WorkerCheckpoints.offsets(connection, group: "g-\(getpid())", topic: topic)) ?? [:]).values.contains { $0 > 0 }
        }
        XCTAssertTrue(committed, "the first worker committed: \((try? String(contentsOfFile: folder + "/first.log", encoding: .utf8)) ?? "")")
        Thread.sleep(forTimeInterval: 1.5)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // The poison record, between the killed worker and its replacement.
        let (rc, out, err) = try shell("python3 '\(Self.packageRoot.path)/scripts/kafka_client.py' produce --bootstrap \(Self.broker) --topic \(topic) --count 1 --keys 1")
        XCTAssertEqual(rc, 0, out + err)
        let second = try startTape(workArguments(topic: topic, group: "g-\(getpid())", store: url, name: "second", idle: 6),
                                   log: folder + "/second.log")
        waitExit(ingest, seconds: 60, "ingest")
        XCTAssertEqual(ingest.terminationStatus, 0)
        waitExit(second, seconds: 90, "the replacement worker")
        XCTAssertEqual(second.terminationStatus, 0)
        let log = (try? String(contentsOfFile: folder + "/second.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("checkpoint restored"), log)
        XCTAssertTrue(log.contains("poison record \(topic)[") && log.contains("shorter than a tick record"), log)
        XCTAssertTrue(log.contains("poison 1"), log)

        let replay = folder + "/replay"
        try runTape(["replay"] + (try recordingFiles(folder + "/ingest")) + ["--out", replay, "--quiet", "--no-report"])
        try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(replay))
        XCTAssertEqual(try connection.query("""
            SELECT count(*) FROM (SELECT symbol, receive_ns, sequence, kind FROM ticks GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d
            """).first?[0], "0", "no tick twice")
    }
}
