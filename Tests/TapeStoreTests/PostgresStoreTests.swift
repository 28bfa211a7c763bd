import Foundation
import TapeStore
import TapeRedis
import TapeGraph
import TapeTestSupport
import XCTest

/// `tape replay --store postgres://…` end to end, against the PostgreSQL of `make services`: the tables
/// against the run folder's CSVs, a repeated write, an outage in the middle of a run, pg_partman's day
/// partitions and retention. Every test writes into a database of its own, dropped afterwards.
final class PostgresStoreTests: XCTestCase {
    static let server = "postgres://postgres@127.0.0.1:55432"
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url = url.deletingLastPathComponent()
        }
        return url
    }()
    var tape: String { Self.packageRoot.appendingPathComponent(".build/release/tape").path }
    private let databases = ScratchDatabases(namePrefix: "tape_test")

    override func tearDown() { databases.dropAll() }

    /// A new empty database (dropped in tearDown); its URL.
    func freshDatabase(_ label: String) throws -> String { try databases.fresh(label) }

    func captures() throws -> [String] {
        let folder = Self.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/binance-feed").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.filter { $0.hasSuffix(".gz") }.sorted() ?? []
        try requireOrSkip(!names.isEmpty, "real data at \(folder)")
        return names.map { "\(folder)/\($0)" }
    }

    func temporaryFolder(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "tape-store-tests-\(getpid())/\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `tape` with `arguments`; stdout and stderr go to files (a server started by a child must not
    /// hold a pipe of ours).
    @discardableResult
    func runTape(_ arguments: [String], expect code: Int32 = 0) throws -> String {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = arguments
        let log = temporaryFolder("log") + "/stderr"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(process.terminationStatus, code, "tape \(arguments.joined(separator: " ")): \(stderr)")
        return stderr
    }

    func summary(_ runFolder: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: runFolder + "/summary.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The CSV's rows (header dropped), each as fields.
    func csvRows(_ path: String) throws -> [[String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Compares one stored table with one CSV: the same rows, in key order; numbers compared as doubles
    /// (an empty CSV field is SQL NULL), integers and text exactly.
    func assertTable(_ connection: PostgresConnection, sql: String, csv: String, numericColumns: Set<Int>,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let stored = try connection.query(sql)
        let expected = try csvRows(csv)
        XCTAssertEqual(stored.count, expected.count, "\(csv): row count", file: file, line: line)
        for (index, (row, want)) in zip(stored, expected).enumerated() {
            XCTAssertEqual(row.count, want.count, "\(csv) row \(index)", file: file, line: line)
            for (column, (got, wanted)) in zip(row, want).enumerated() {
                if numericColumns.contains(column) {
                    let gotValue = got.flatMap(Double.init)
                    let wantedValue = wanted.isEmpty ? nil : Double(wanted)
                    if gotValue != wantedValue {
                        XCTFail("\(csv) row \(index) column \(column): stored \(got ?? "NULL"), CSV \(wanted)", file: file, line: line)
                        return
                    }
                } else if (got ?? "") != wanted {
                    XCTFail("\(csv) row \(index) column \(column): stored \(got ?? "NULL"), CSV \(wanted)", file: file, line: line)
                    return
                }
            }
        }
    }

    static func nanos(_ column: String) -> String { "(extract(epoch from \(column)) * 1000000000)::bigint" }

    /// The stored outputs of a run equal its CSVs, and its ticks number `ticks_delivered`.
    func assertStoreEqualsRunFolder(_ url: String, runFolder: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let connection = try PostgresConnection(url: url)
        let n = Self.nanos(_:)
        try assertTable(connection, sql: """
            SELECT symbol, timeframe, \(n("time")), \(n("end_time")), open, high, low, close, volume, vwap, trades
            FROM bars ORDER BY symbol, time, end_time - time
            """, csv: runFolder + "/bars.csv", numericColumns: [4, 5, 6, 7, 8, 9], file: file, line: line)
        try assertTable(connection, sql: """
            SELECT symbol, timeframe, \(n("time")), sma, ema, rsi, macd, macd_signal, macd_hist, bb_middle, bb_upper, bb_lower, session_vwap
            FROM indicators i ORDER BY symbol, time, (SELECT end_time - time FROM bars b WHERE b.symbol = i.symbol
                AND b.timeframe = i.timeframe AND b.end_time = i.time)
            """, csv: runFolder + "/indicators.csv", numericColumns: Set(3...12), file: file, line: line)
        try assertTable(connection, sql: """
            SELECT symbol, time_ns, rule, value, threshold, severity FROM anomalies ORDER BY time_ns, symbol, rule
            """, csv: runFolder + "/anomalies.csv", numericColumns: [3, 4], file: file, line: line)
        let delivered = try XCTUnwrap(try summary(runFolder)["ticks_delivered"] as? Int)
        XCTAssertEqual(try connection.query("SELECT count(*) FROM ticks").first?[0], String(delivered), file: file, line: line)
    }

    /// The CSVs are written in emission order; the tables are read in key order. Sort the CSVs the same
    /// way before comparing (bars and indicators by symbol, start/end, timeframe length; anomalies by time).
    func sortedRunFolder(_ runFolder: String) throws -> String {
        let sorted = temporaryFolder("sorted")
        func seconds(_ timeframe: String) -> Int {
            let value = Int(timeframe.dropLast()) ?? 0
            switch timeframe.last { case "m": return value * 60; case "h": return value * 3600; case "d": return value * 86400; default: return value }
        }
        for (name, key) in [("bars", { (r: [String]) in [r[0], r[2], String(format: "%012d", seconds(r[1]))] }),
                            ("indicators", { (r: [String]) in [r[0], r[2], String(format: "%012d", seconds(r[1]))] }),
                            ("anomalies", { (r: [String]) in [r[1], r[0], r[2]] })] {
            let text = try String(contentsOfFile: "\(runFolder)/\(name).csv", encoding: .utf8)
            var lines = text.split(separator: "\n").map(String.init)
            let header = lines.removeFirst()
            let rows = lines.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            let ordered = rows.sorted { key($0).lexicographicallyPrecedes(key($1)) }
            try ([header] + ordered.map { $0.joined(separator: ",") }).joined(separator: "\n").appending("\n")
                .write(toFile: "\(sorted)/\(name).csv", atomically: true, encoding: .utf8)
        }
        try FileManager.default.copyItem(atPath: runFolder + "/summary.json", toPath: sorted + "/summary.json")
        return sorted
    }

    func capturesForQueries() throws -> [String] { try captures() }

    /// Replays `inputs` into a new database; its URL and the run folder.
    func replayIntoFreshDatabase(_ inputs: [String], label: String) throws -> (String, String) {
        let url = try freshDatabase(label)
        let out = temporaryFolder(label)
        try runTape(["replay"] + inputs + ["--out", out, "--quiet", "--no-report", "--store", url])
        return (url, out)
    }

    func testEveryCaptureStoredEqualsItsRunFolder() throws {
        for capture in try captures() {
            let url = try freshDatabase("capture")
            let out = temporaryFolder("run")
            try runTape(["replay", capture, "--out", out, "--quiet", "--no-report", "--store", url])
            try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(out))
            let stores = try XCTUnwrap(try summary(out)["stores"] as? [String: Any])
            let postgres = try XCTUnwrap(stores["postgres"] as? [String: Any])
            XCTAssertEqual(postgres["rows_already_stored"] as? Int, 0, capture)
            XCTAssertEqual(postgres["outages"] as? Int, 0, capture)
            let runID = try XCTUnwrap(stores["run_id"] as? String)
            let connection = try PostgresConnection(url: url)
            let run = try connection.query("SELECT kind, config_hash, inputs->>0, summary->>'digest' FROM tape_runs WHERE run_id = '\(runID)'")
            XCTAssertEqual(run.first?[0], "replay")
            XCTAssertEqual(run.first?[1], try summary(out)["config_hash"] as? String)
            XCTAssertEqual(run.first?[2], capture)
            XCTAssertEqual(run.first?[3], try summary(out)["digest"] as? String, "summary.json kept with the run")
        }
    }

    func testTheSameReplayTwiceAddsNoRow() throws {
        let inputs = try captures().filter { $0.contains("spot-btcusdt") }
        XCTAssertEqual(inputs.count, 2)
        let url = try freshDatabase("twice")
        let first = temporaryFolder("first"), second = temporaryFolder("second")
        try runTape(["replay"] + inputs + ["--out", first, "--quiet", "--no-report", "--store", url])
        let connection = try PostgresConnection(url: url)
        let count = "SELECT (SELECT count(*) FROM ticks), (SELECT count(*) FROM bars), (SELECT count(*) FROM indicators), (SELECT count(*) FROM anomalies)"
        let before = try connection.query(count)
        try runTape(["replay"] + inputs + ["--out", second, "--quiet", "--no-report", "--store", url])
        XCTAssertEqual(try connection.query(count), before, "a repeated write adds nothing")
        XCTAssertEqual(try connection.query("""
            SELECT count(*) FROM (SELECT symbol, receive_ns, sequence, kind FROM ticks GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d
            """).first?[0], "0", "no tick twice")
        let postgres = try XCTUnwrap((try summary(second)["stores"] as? [String: Any])?["postgres"] as? [String: Any])
        XCTAssertEqual(postgres["rows_inserted"] as? Int, 0)
        let stored = try XCTUnwrap(before.first).compactMap { $0.flatMap(Int.init) }.reduce(0, +)
        XCTAssertEqual(postgres["rows_already_stored"] as? Int, stored, "every row of the second run was there already")
        try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(second))
    }

    /// `pg_ctl stop -m immediate` in the middle of a paced replay, started again 10 s later: the batches
    /// written meanwhile go to the spool and back, and the tables equal the CSVs. A PostgreSQL of the test's own
    /// (`PrivatePostgres`): the shared server of `make services` is never stopped.
    func testPostgresStoppedInTheMiddleLosesNothing() throws {
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") })
        let postgres = try PrivatePostgres()
        let url = try postgres.createDatabase("outage")
        let out = temporaryFolder("outage")
        // 347 s of capture at 15x: about 23 s of replay.
        let replay = Process()
        replay.executableURL = URL(fileURLWithPath: tape)
        replay.arguments = ["replay", capture, "--speed", "15", "--out", out, "--quiet", "--no-report", "--store", url]
        let log = temporaryFolder("log") + "/stderr"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        replay.standardOutput = FileHandle.nullDevice
        replay.standardError = FileHandle(forWritingAtPath: log)
        try replay.run()
        Thread.sleep(forTimeInterval: 5)
        postgres.stop(immediate: true)
        Thread.sleep(forTimeInterval: 10)
        XCTAssertTrue(replay.isRunning, "the replay goes on while PostgreSQL is away")
        try postgres.start()
        replay.waitUntilExit()
        let stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(replay.terminationStatus, 0, stderr)
        XCTAssertTrue(stderr.contains("postgres 127.0.0.1:\(postgres.port)/outage: down ("), stderr)
        XCTAssertTrue(stderr.contains(": up again; writing back"), stderr)
        let summary = try self.summary(out)
        let stores = try XCTUnwrap(summary["stores"] as? [String: Any])
        let counters = try XCTUnwrap(stores["postgres"] as? [String: Any])
        XCTAssertEqual(counters["outages"] as? Int, 1)
        XCTAssertGreaterThan(counters["batches_spooled"] as? Int ?? 0, 0)
        XCTAssertEqual(counters["batches_spooled"] as? Int, counters["batches_replayed_from_spool"] as? Int)
        XCTAssertEqual(counters["batches_left_in_spool"] as? Int, 0)
        try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(out))
        let spool = (try? FileManager.default.contentsOfDirectory(atPath: out + "/spool/postgres")) ?? []
        XCTAssertEqual(spool, [], "the spool is emptied once written back")
    }

    /// A day partition per day of data; `tape store maintain --now` one year and a half day later drops
    /// the older day and nothing newer; without --now (reference = newest data) nothing is dropped.
    func testDayPartitionsAndRetention() throws {
        let inputs = try captures().filter { $0.contains("spot-btcusdt") }
        let url = try freshDatabase("partman")
        let out = temporaryFolder("partman")
        try runTape(["replay"] + inputs + ["--out", out, "--quiet", "--no-report", "--store", url])
        let connection = try PostgresConnection(url: url)
        let days = try connection.query("""
            SELECT DISTINCT to_char(time AT TIME ZONE 'UTC', 'YYYY_MM_DD') FROM ticks ORDER BY 1
            """).compactMap { $0[0] }
        XCTAssertEqual(days, ["2024_08_08", "2024_08_09"])
        func partitionsHolding() throws -> [String] {
            try connection.query("""
                SELECT DISTINCT tableoid::regclass::text FROM ticks ORDER BY 1
                """).compactMap { $0[0] }
        }
        XCTAssertEqual(try partitionsHolding(), days.map { "ticks_p\($0)" }, "each day's rows in its own partition, none in the default")
        func tickPartitions() throws -> [String] {
            try connection.query("""
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'ticks'::regclass ORDER BY 1
                """).compactMap { $0[0] }
        }
        XCTAssertTrue(try tickPartitions().contains("ticks_p2024_08_08"))
        let rowsOfNinth = try connection.query("SELECT count(*) FROM ticks WHERE time >= '2024-08-09'").first?[0]

        try runTape(["store", "maintain", "--store", url])
        XCTAssertEqual(try partitionsHolding(), days.map { "ticks_p\($0)" }, "reference = newest data: nothing dropped")

        try runTape(["store", "maintain", "--store", url, "--now", "2025-08-09T12:00:00Z"])
        let left = try tickPartitions()
        XCTAssertFalse(left.contains("ticks_p2024_08_08"), "older than 365 days before the reference: dropped (\(left))")
        XCTAssertTrue(left.contains("ticks_p2024_08_09"), "within 365 days: kept")
        XCTAssertEqual(try connection.query("SELECT count(*) FROM ticks").first?[0], rowsOfNinth)
        for table in ["bars", "indicators"] {
            XCTAssertEqual(try connection.query("SELECT count(*) FROM \(table) WHERE time < '2024-08-09'").first?[0], "0", table)
        }
    }

    /// The reads the API will make (`StoreQueries`), against what the run folder says.
    func testQueriesAnswerWhatTheRunFolderHolds() throws {
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let (url, out) = try replayIntoFreshDatabase([capture], label: "queries")
        let queries = StoreQueries(connection: try PostgresConnection(url: url))
        let bars = try String(contentsOfFile: out + "/bars.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let indicators = try String(contentsOfFile: out + "/indicators.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        for timeframe in ["1m", "5m", "15m"] {
            let rows = bars.filter { $0[1] == timeframe }.sorted { Int64($0[2])! < Int64($1[2])! }
            let last = try XCTUnwrap(rows.last)
            let latest = try XCTUnwrap(try queries.latestBar(symbol: "usdm:BTCUSDT", timeframe: timeframe))
            XCTAssertEqual(latest.start, Int64(last[2]))
            XCTAssertEqual(latest.end, Int64(last[3]))
            XCTAssertEqual(latest.close, Double(last[7]))
            XCTAssertEqual(latest.trades, Int64(last[10]))
            let lastIndicators = try XCTUnwrap(indicators.first { $0[1] == timeframe && $0[2] == last[3] })
            XCTAssertEqual(latest.indicators["session_vwap"], Double(lastIndicators[12]))
            if let rsi = Double(lastIndicators[5]) { XCTAssertEqual(latest.indicators["rsi"], rsi) }
            // Paging: pages of 2 rebuild the whole range in order.
            var paged: [Int64] = []
            var after: Int64? = nil
            while true {
                let page = try queries.bars(symbol: "usdm:BTCUSDT", timeframe: timeframe, from: .min / 2, to: .max / 2,
                                            after: after, limit: 2)
                paged += page.map(\.start)
                guard page.count == 2 else { break }
                after = page.last!.start
            }
            XCTAssertEqual(paged, rows.map { Int64($0[2])! }, timeframe)
        }
        XCTAssertNil(try queries.latestBar(symbol: "usdm:NOPE", timeframe: "1m"))
        let anomalies = try String(contentsOfFile: out + "/anomalies.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        let stored = try queries.anomalies(symbol: "usdm:BTCUSDT", from: .min / 2, to: .max / 2, limit: 100_000)
        XCTAssertEqual(stored.count, anomalies.count)
        // The latest tick: the capture's last trade or quote of the symbol (by event time, then receive time).
        let latest = try XCTUnwrap(try queries.latestTick(symbol: "usdm:BTCUSDT"))
        let lastEvent = try XCTUnwrap(try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any])["last_event_ns"] as? Int64)
        XCTAssertEqual(latest[0].flatMap { Int64($0) }, lastEvent)
    }

    /// `tape live --store` on a feed-sim session, paper trading (`--trading`), then `tape replay --store` of its
    /// recording into the same database: the same digest, and the replay adds no row (live and replay write
    /// the same rows); the orders, fills, positions and equity stored equal the live run folder's.
    func testLiveThenReplayOfItsRecordingAddsNoRow() throws {
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let url = try freshDatabase("live")
        let work = temporaryFolder("live")
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let simulator = Process()
        simulator.executableURL = URL(fileURLWithPath: tape)
        simulator.arguments = ["feed-sim", capture, "--protocol", "binance", "--speed", "50", "--port", "0",
                               "--port-file", work + "/port"]
        simulator.standardOutput = FileHandle.nullDevice
        simulator.standardError = FileHandle.nullDevice
        try simulator.run()
        defer { simulator.terminate(); simulator.waitUntilExit() }
        var port = ""
        for _ in 0..<100 where port.isEmpty {
            Thread.sleep(forTimeInterval: 0.1)
            port = ((try? String(contentsOfFile: work + "/port", encoding: .utf8)) ?? "").split(separator: ":").last.map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        }
        XCTAssertFalse(port.isEmpty, "feed-sim wrote its port")
        let trading = try tradingConfig()
        try runTape(["live", "--feed", "binance-usdm:btcusdt=ws://127.0.0.1:\(port)", "--duration", "4s",
                     "--trading", trading, "--out", work + "/live", "--quiet", "--store", url])
        let recording = try FileManager.default.contentsOfDirectory(atPath: work + "/live/recording").sorted()
            .map { work + "/live/recording/" + $0 }
        try runTape(["replay"] + recording + ["--trading", trading, "--out", work + "/replay", "--quiet", "--no-report",
                                              "--store", url])
        let live = try summary(work + "/live"), replay = try summary(work + "/replay")
        XCTAssertEqual(live["digest"] as? String, replay["digest"] as? String)
        let livePostgres = try XCTUnwrap((live["stores"] as? [String: Any])?["postgres"] as? [String: Any])
        let replayPostgres = try XCTUnwrap((replay["stores"] as? [String: Any])?["postgres"] as? [String: Any])
        XCTAssertGreaterThan(livePostgres["batches"] as? Int ?? 0, 1, "a live session hands batches over by time")
        XCTAssertEqual(replayPostgres["rows_inserted"] as? Int, 0, "the replay of the recording adds no row")
        XCTAssertEqual(replayPostgres["rows_already_stored"] as? Int, livePostgres["rows_inserted"] as? Int)
        let delivered = try XCTUnwrap(live["ticks_delivered"] as? Int)
        XCTAssertGreaterThan(delivered, 0)
        let connection = try PostgresConnection(url: url)
        XCTAssertEqual(try connection.query("SELECT count(*) FROM ticks").first?[0], String(delivered))
        XCTAssertEqual(try connection.query("SELECT kind FROM tape_runs ORDER BY started_at").map { $0[0] }, ["live", "replay"])
        XCTAssertGreaterThan(try TradingTables.assertStoredEqualsRunFolder(url, runFolder: work + "/live"), 0,
                             "the paper-trading session filled orders")
    }

    /// A store that cannot be reached at the start: exit 5 naming the server (never the password);
    /// an unknown scheme: a usage error.
    func testAnUnreachableOrUnknownStoreIsAClearError() throws {
        let capture = try XCTUnwrap(try captures().first)
        let out = temporaryFolder("unreachable")
        let stderr = try runTape(["replay", capture, "--out", out, "--quiet", "--no-report",
                                  "--store", "postgres://postgres:secret@127.0.0.1:1/nowhere"], expect: 5)
        XCTAssertTrue(stderr.contains("postgres 127.0.0.1:1/nowhere") && stderr.contains("Connection refused"), stderr)
        XCTAssertFalse(stderr.contains("secret"), stderr)
        let usage = try runTape(["replay", capture, "--out", out + "/b", "--store", "mysql://x"], expect: 64)
        XCTAssertTrue(usage.contains("--store 'mysql://x'"), usage)
    }

    /// The read-through the API will use: Redis first, the PostgreSQL store on a miss (`StoreQueries`),
    /// then Redis filled — a miss, then hits, with the values of the run folder's last bar.
    func testReadThroughFallsBackToPostgresThenHitsRedis() throws {
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let (url, out) = try replayIntoFreshDatabase([capture], label: "readthrough")
        let redis: RedisConnection
        do { redis = try RedisConnection(url: "redis://127.0.0.1:56379") } catch {
            try skipOrFail(missing: "Redis of `make services` at 127.0.0.1:56379: \(error)")
        }
        let layout = RedisLayout(prefix: "tape-test-\(getpid()):")
        defer {
            if case .array(let keys)? = try? redis.command(["KEYS", layout.prefix + "*"]) {
                for key in keys { if let name = key.string { _ = try? redis.command(["DEL", name]) } }
            }
        }
        let fallbackCalls = FallbackCounter()
        let reader = LatestBars(connection: redis, layout: layout) { symbol, timeframe in
            fallbackCalls.add()
            let queries = StoreQueries(connection: try PostgresConnection(url: url))
            guard let bar = try queries.latestBar(symbol: symbol, timeframe: timeframe.description) else { return nil }
            return RedisLayout.barFields(start: bar.start, end: bar.end, open: bar.open, high: bar.high, low: bar.low,
                                         close: bar.close, volume: bar.volume, vwap: bar.vwap, trades: bar.trades,
                                         indicators: bar.indicators)
        }
        let rows = try String(contentsOfFile: out + "/bars.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0[1] == "5m" }.sorted { Int64($0[2])! < Int64($1[2])! }
        let last = try XCTUnwrap(rows.last)
        for _ in 0..<3 {
            let fields = try XCTUnwrap(try reader.latestBar(symbol: "usdm:BTCUSDT", timeframe: Timeframe(seconds: 300)))
            XCTAssertEqual(fields["start_ns"], last[2])
            XCTAssertEqual(fields["close"].flatMap(Double.init), Double(last[7]))
        }
        XCTAssertNil(try reader.latestBar(symbol: "usdm:NOPE", timeframe: Timeframe(seconds: 300)))
        XCTAssertEqual(fallbackCalls.value, 2, "PostgreSQL asked once for the known bar, once for the unknown symbol")
        XCTAssertEqual(reader.counters.hits, 2)
        XCTAssertEqual(reader.counters.misses, 2)
        XCTAssertEqual(reader.counters.filled, 1)
    }

    /// `--store influx://…` from the CLI: InfluxDB holds the ticks per symbol and the rejects (queried
    /// back); with InfluxDB unreachable the run ends the same (digest), exit 0.
    func testMetricsStoreFromTheCommandLine() throws {
        let capture = try XCTUnwrap(try captures().first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let database = "tape_cli_\(getpid())"
        let ping = (try? Data(contentsOf: URL(string: "http://127.0.0.1:58086/ping?verbose=true")!)) != nil
        try requireOrSkip(ping, "InfluxDB of `make services` at 127.0.0.1:58086")
        let out = temporaryFolder("metrics")
        try runTape(["replay", capture, "--out", out + "/up", "--quiet", "--no-report",
                     "--store", "influx://127.0.0.1:58086/\(database)"])
        try runTape(["replay", capture, "--out", out + "/down", "--quiet", "--no-report",
                     "--store", "influx://127.0.0.1:1/\(database)"])
        let up = try summary(out + "/up"), down = try summary(out + "/down")
        XCTAssertEqual(up["digest"] as? String, down["digest"] as? String)
        let query = { (q: String) throws -> String in
            var components = URLComponents(string: "http://127.0.0.1:58086/query")!
            components.queryItems = [URLQueryItem(name: "db", value: database), URLQueryItem(name: "q", value: q)]
            return String(decoding: try Data(contentsOf: components.url!), as: UTF8.self)
        }
        defer { _ = try? query("DROP DATABASE \(database)") }
        let delivered = try XCTUnwrap(up["ticks_delivered"] as? Int)
        let ticks = try query("SELECT sum(\"count\") FROM tape_ticks WHERE symbol = 'usdm:BTCUSDT'")
        XCTAssertTrue(ticks.contains(",\(delivered)]"), "InfluxDB holds the \(delivered) ticks: \(ticks)")
        let rejects = try query("SELECT last(total) FROM tape_rejects")
        XCTAssertTrue(rejects.contains(",0]"), rejects)
    }
}


final class FallbackCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
