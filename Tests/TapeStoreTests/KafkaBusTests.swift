import Foundation
import TapeStore
import TapeTestSupport
import XCTest

/// The distributed path end to end, on the local broker (tansu) and PostgreSQL of `make services`,
/// fed by `tape feed-sim` with real captures: `tape ingest` → `tick_data` → `tape work` → PostgreSQL,
/// against `tape replay` of the recording that `tape ingest` wrote.
extension PostgresStoreTests {
    static let broker = "127.0.0.1:59092"

    /// Runs a shell command to its end: (exit code, stdout, stderr), output through files. posix_spawn and
    /// waitpid, not Foundation's Process: a command that starts a server (`services.sh start kafka`)
    /// leaves a daemon behind that Process would wait for.
    func shell(_ command: String) throws -> (Int32, String, String) {
        let folder = temporaryFolder("sh")
        let code = spawnAndWait(["/bin/bash", "-c", "{\n\(command)\n} > '\(folder)/out' 2> '\(folder)/err' < /dev/null"])
        return (code, (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? "")
    }

    // `spawnAndWait` (posix_spawn + waitpid) is TapeTestSupport's, shared with the serving tests.

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

    /// `TAPE_KDEBUG=cgrp,topic` turns on librdkafka's debug contexts in the workers' logs.
    func workArguments(topic: String, group: String, store: String, name: String, idle: Double = 4,
                       trading: String? = nil) -> [String] {
        ["work", "--kafka", Self.broker, "--topic", topic, "--group", group, "--store", store, "--name", name,
         "--idle-exit-seconds", String(idle), "--session-timeout-ms", "6000", "--max-poll-interval-ms", "10000",
         "--spool", temporaryFolder("work-spool")] + (trading.map { ["--trading", $0] } ?? []) + (ProcessInfo.processInfo.environment["TAPE_KDEBUG"].map { ["--kafka-property", "debug=" + $0] } ?? [])
    }

    /// One ingest session of two spot captures (BTCUSDT, ETHUSDT) into a 3-partition topic; then one
    /// worker into one database, three workers into another, paper trading (`--trading`, one account per
    /// partition): both equal the replay of the recording with the same trading file — the outputs, and the
    /// orders, fills, positions and equity of each symbol row for row; the replay's account total (one
    /// account) is the configured cash plus the symbols' equity rows the workers stored.
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
        XCTAssertEqual(kafka["failed_then_resent"] as? Int, 0)
        XCTAssertEqual(kafka["delivered"] as? Int, kafka["enqueued"] as? Int, "every record acknowledged")
        let delivered = try XCTUnwrap(ingest["ticks_delivered"] as? Int)
        XCTAssertGreaterThan(delivered, 1_000)

        let replay = folder + "/replay"
        try runTape(["replay"] + (try recordingFiles(folder + "/ingest")) + ["--out", replay, "--quiet", "--no-report"])
        XCTAssertEqual(try summary(replay)["digest"] as? String, ingest["digest"] as? String, "live ≡ replay of its recording")
        let trading = try tradingConfig()
        let traded = folder + "/replay-trading"
        try runTape(["replay"] + (try recordingFiles(folder + "/ingest"))
                    + ["--trading", trading, "--out", traded, "--quiet", "--no-report"])
        let tradedFills = try TradingTables.csv(traded + "/fills.csv").rows
        XCTAssertGreaterThan(tradedFills.count, 5, "the replay traded")
        XCTAssertEqual(Set(tradedFills.map { $0[0] }), ["spot:BTCUSDT", "spot:ETHUSDT"], "both symbols traded")
        let expected = try sortedRunFolder(traded)

        let one = try freshDatabase("one")
        let log1 = try runTape(workArguments(topic: topic, group: "one-\(getpid())", store: one, name: "solo", trading: trading))
        XCTAssertTrue(log1.contains("took \(topic)[0] from the beginning"), log1)
        try assertStoreEqualsRunFolder(one, runFolder: expected)
        try TradingTables.assertStoredEqualsRunFolder(one, runFolder: traded)

        let three = try freshDatabase("three")
        var workers: [Process] = []
        for index in 0..<3 {
            workers.append(try startTape(workArguments(topic: topic, group: "three-\(getpid())", store: three, name: "w\(index)",
                                                       idle: 8, trading: trading),
                                         log: folder + "/w\(index).log"))
            Thread.sleep(forTimeInterval: 0.3)
        }
        for worker in workers { waitExit(worker, seconds: 90, "a worker") }
        for worker in workers { XCTAssertEqual(worker.terminationStatus, 0) }
        let logs = (0..<3).map { (try? String(contentsOfFile: folder + "/w\($0).log", encoding: .utf8)) ?? "" }
        let owners = (0..<3).filter { logs[$0].contains(" took \(topic)[") }
        XCTAssertGreaterThanOrEqual(owners.count, 2, "the partitions were split: \(logs.joined(separator: "\n---\n"))")
        try assertStoreEqualsRunFolder(three, runFolder: expected)
        try TradingTables.assertStoredEqualsRunFolder(three, runFolder: traded)
        XCTAssertGreaterThan(try TradingTables.assertTotalIsTheSumOfSymbols(three, runFolder: traded, cash: 100_000), 10,
                             "instants where both symbols were marked")
        let connection = try PostgresConnection(url: three)
        let offsets = try WorkerCheckpoints.offsets(connection, group: "three-\(getpid())", topic: topic)
        XCTAssertEqual(offsets.count, 3, "every partition committed")

        // SIGTERM: a worker of a new group, with a metrics store, stopped once it holds its partitions:
        // it commits, leaves the group, exits 0; InfluxDB has its `tape_work` points (lag, commits).
        let influxDatabase = "tape_work_\(getpid())"
        let term = try freshDatabase("term")
        var arguments = workArguments(topic: topic, group: "term-\(getpid())", store: term, name: "term", idle: 60)
        arguments += ["--store", "influx://127.0.0.1:58086/\(influxDatabase)"]
        arguments += ["--metrics-listen", "127.0.0.1:0"]
        let stopped = try startTape(arguments, log: folder + "/term.log")
        var holding = false
        for _ in 0..<300 where !holding {
            Thread.sleep(forTimeInterval: 0.1)
            holding = ((try? String(contentsOfFile: folder + "/term.log", encoding: .utf8)) ?? "").contains("took \(topic)[2]")
        }
        XCTAssertTrue(holding, "the worker took its partitions")
        Thread.sleep(forTimeInterval: 2)
        // --metrics-listen: the same `tape_work` points as Prometheus text while the worker runs.
        var scraped = ""
        for _ in 0..<50 where !scraped.contains("tape_work_next_offset{") {
            let log = (try? String(contentsOfFile: folder + "/term.log", encoding: .utf8)) ?? ""
            if let start = log.range(of: "metrics at http://") {
                let address = log[start.upperBound...].prefix { $0 != "/" }
                scraped = (try? String(contentsOf: URL(string: "http://\(address)/metrics")!, encoding: .utf8)) ?? ""
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertTrue(scraped.contains("# TYPE tape_work_next_offset gauge"), scraped)
        let partitionLine = scraped.split(separator: "\n").first {
            $0.hasPrefix("tape_work_next_offset{") && $0.contains("group=\"term-\(getpid())\"") && $0.contains("partition=\"2\"")
        }
        XCTAssertNotNil(partitionLine, scraped)
        kill(stopped.processIdentifier, SIGTERM)
        waitExit(stopped, seconds: 30, "the worker after SIGTERM")
        XCTAssertEqual(stopped.terminationStatus, 0)
        let termLog = (try? String(contentsOfFile: folder + "/term.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(termLog.contains("back at offset") && termLog.contains("(committed)"), termLog)
        let termOffsets = try WorkerCheckpoints.offsets(try PostgresConnection(url: term), group: "term-\(getpid())", topic: topic)
        XCTAssertEqual(termOffsets, offsets, "everything read and committed before the worker stopped")
        var components = URLComponents(string: "http://127.0.0.1:58086/query")!
        components.queryItems = [URLQueryItem(name: "db", value: influxDatabase),
                                 URLQueryItem(name: "q", value: "SELECT last(next_offset), last(commits) FROM tape_work GROUP BY \"partition\"")]
        let points = String(decoding: (try? Data(contentsOf: components.url!)) ?? Data(), as: UTF8.self)
        for (partition, offset) in offsets {
            XCTAssertTrue(points.contains("\"partition\":\"\(partition)\"") && points.contains(",\(offset),"),
                          "tape_work point of partition \(partition) at offset \(offset): \(points)")
        }
        components.queryItems = [URLQueryItem(name: "q", value: "DROP DATABASE \(influxDatabase)")]
        _ = try? Data(contentsOf: components.url!)
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

extension PostgresStoreTests {
    /// tansu restarted in the middle of an ingest (it keeps topics in memory: the topic and every offset
    /// are gone, like a topic deleted and re-created), while the feed is in a quiet stretch so that the
    /// worker's lag is 0 with the feed still running. The producer's records that the outage held back
    /// fail, are resent through a new producer after the topic is re-created; the worker notices the
    /// offsets going back, says so, and continues. Every tick of the recording is in PostgreSQL once and
    /// the outputs equal the replay of the recording.
    ///
    /// librdkafka (2.10 on) keeps the worker's partitions and fetch positions through the short outage; the
    /// worker sees the topic's new id (or a partition ending before its next offset) and reads the partitions
    /// from the beginning, dropping the records already handled by their place. (If the partitions are lost
    /// instead, it joins the group again once the topic is back and checks the record before each committed
    /// offset.) librdkafka 2.8 crashed here (SIGSEGV in `rd_kafka_metadata_cache_find`, upstream #4964):
    /// Tape builds 2.14 (docs/kafka.md).
    func testABrokerRestartedDuringIngestLosesNothing() throws {
        try requireBroker()
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") })
        let folder = temporaryFolder("restart")
        // 60 s of the capture, a quiet stretch of 200 s, then the next 60 s (receive times shifted).
        let (built, out, err) = try shell("""
            python3 - <<'PY'
            import gzip
            lines = [l for l in gzip.open('\(capture)', 'rb') if l[:1].isdigit()]
            t0 = int(lines[0].split(b' ', 1)[0])
            with gzip.open('\(folder)/gap.gz', 'wb') as out:
                for l in lines:
                    t, rest = l.split(b' ', 1)
                    t = int(t) - t0
                    if t < 60e9: out.write(b'%d %s' % (t0 + t, rest))
                    elif t < 120e9: out.write(b'%d %s' % (t0 + t + 200_000_000_000, rest))
            PY
            """)
        XCTAssertEqual(built, 0, out + err)
        let topic = "tick_data_\(getpid())_restart"
        let group = "restart-\(getpid())"
        let url = try freshDatabase("restart")
        let (simulator, port) = try startFeedSim([folder + "/gap.gz"], speed: "20", folder: folder)
        defer { simulator.terminate(); simulator.waitUntilExit() }
        let ingest = try startTape(["ingest", "--feed", "binance-spot:btcusdt=ws://127.0.0.1:\(port)", "--duration", "25s",
                                    "--out", folder + "/ingest", "--quiet", "--kafka", Self.broker, "--topic", topic,
                                    "--partitions", "2"], log: folder + "/ingest.log")
        let started = Date()
        Thread.sleep(forTimeInterval: 1)
        // Idle exit after 20 s: the quiet stretch lasts 10 s.
        let worker = try startTape(workArguments(topic: topic, group: group, store: url, name: "steady", idle: 20),
                                   log: folder + "/worker.log")
        // The quiet stretch runs from about 3 s to 13 s after the ingest connected: wait until the worker
        // has stored every tick sent so far (the count stays put for a second: lag 0), then restart.
        let connection = try PostgresConnection(url: url)
        var stored = "", steadySince = Date(), caughtUp = false
        while !caughtUp && Date().timeIntervalSince(started) < 12 {
            Thread.sleep(forTimeInterval: 0.2)
            let now = (try? connection.query("SELECT count(*) FROM ticks").first?[0] ?? "") ?? ""
            if now != stored { stored = now; steadySince = Date() }
            caughtUp = (Int(stored) ?? 0) > 0 && Date().timeIntervalSince(steadySince) > 1.0
        }
        XCTAssertTrue(caughtUp, "the worker caught up in the quiet stretch (\(stored) ticks)")
        var (rc, _, _) = try shell("cd '\(Self.packageRoot.path)' && scripts/services.sh stop kafka")
        XCTAssertEqual(rc, 0)
        Thread.sleep(forTimeInterval: 0.5)
        (rc, _, _) = try shell("cd '\(Self.packageRoot.path)' && scripts/services.sh start kafka")
        XCTAssertEqual(rc, 0)
        waitExit(ingest, seconds: 90, "ingest")
        XCTAssertEqual(ingest.terminationStatus, 0, (try? String(contentsOfFile: folder + "/ingest.log", encoding: .utf8)) ?? "")
        waitExit(worker, seconds: 150, "the worker")
        XCTAssertEqual(worker.terminationStatus, 0)
        let ingestLog = (try? String(contentsOfFile: folder + "/ingest.log", encoding: .utf8)) ?? ""
        let workerLog = (try? String(contentsOfFile: folder + "/worker.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(ingestLog.contains("resent through a new producer"), ingestLog)
        XCTAssertTrue(workerLog.contains("re-created"), workerLog)
        let kafka = try XCTUnwrap((try summary(folder + "/ingest")["stores"] as? [String: Any])?["kafka"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(kafka["recoveries"] as? Int ?? 0, 1, "\(kafka)")

        let replay = folder + "/replay"
        try runTape(["replay"] + (try recordingFiles(folder + "/ingest")) + ["--out", replay, "--quiet", "--no-report"])
        try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(replay))
        XCTAssertEqual(try connection.query("""
            SELECT count(*) FROM (SELECT symbol, receive_ns, sequence, kind FROM ticks GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d
            """).first?[0], "0", "no tick twice")
    }
}
