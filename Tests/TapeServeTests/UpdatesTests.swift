import Foundation
import TapeRedis
import TapeStore
import TapeTestSupport
import XCTest

/// `/ws` against the real PostgreSQL and Redis of `make services`, with an independent client
/// (scripts/ws_updates_client.py: RFC 6455 by hand) while `tape replay` writes 500 real 1-minute bars to
/// both stores: a reading client gets every bar PostgreSQL holds, with its values; a client that never
/// reads is closed as too slow (4008, or its socket cut) while the reading one keeps receiving.
extension ServeTests {
    /// A Redis database of its own (pub/sub is global: tests run one at a time).
    static let updatesRedis = "redis://127.0.0.1:56379/9"

    func testWebSocketSnapshotThenUpdatesEqualPostgresAndASlowClientIsDropped() throws {
        try requireTape()
        let redis: RedisConnection
        do { redis = try RedisConnection(url: Self.updatesRedis) } catch {
            try skipOrFail(missing: "Redis of `make services` at \(Self.updatesRedis): \(error)")
        }
        _ = try redis.command(["FLUSHDB"])
        defer { _ = try? redis.command(["FLUSHDB"]) }
        let url = try freshDatabase("ws")
        let folder = temporaryFolder("ws")
        // 500 real 1-minute bars (a slice of the month, built here at run time).
        let source = packageRoot().deletingLastPathComponent()
            .appendingPathComponent("shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: source), "real data at \(source)")
        let bars = folder + "/btc-perp-500_1m.csv"
        XCTAssertEqual(spawnAndWait(["/bin/sh", "-c", "gzip -dc '\(source)' | head -501 > '\(bars)'"]), 0)
        // The schema first, so that serve answers before the replay (a run with no input rows creates it).
        let (pid, base) = try startServe(["--store", url, "--redis", Self.updatesRedis, "--ws-queue", "8192",
                                          "--ws-listen", "127.0.0.1:0"], label: "ws")
        let address = String(base.dropFirst("http://".count))
        // The idle client on the WebSocket port of its own (--ws-listen), the reader on the main port.
        var wsAddress = ""
        for _ in 0..<100 where wsAddress.isEmpty {
            let out = (try? String(contentsOfFile: (serveFolders[pid] ?? "") + "/out", encoding: .utf8)) ?? ""
            wsAddress = out.split(separator: "\n").first { $0.hasPrefix("websocket listening ") }
                .map { String($0.dropFirst("websocket listening ".count)) } ?? ""
            if wsAddress.isEmpty { usleep(50_000) }
        }
        XCTAssertFalse(wsAddress.isEmpty, "tape serve says where its WebSocket port listens")
        let script = packageRoot().appendingPathComponent("scripts/ws_updates_client.py").path
        let channels = "bars:1m,trades,anomalies,indicators"
        guard let reader = spawnInBackground(["/usr/bin/env", "python3", script, address, "--symbol", "BTC-PERP",
                                              "--channels", channels, "--seconds", "12",
                                              "--out", folder + "/reader.jsonl"],
                                             stdout: folder + "/reader.out", stderr: folder + "/reader.err"),
              let idle = spawnInBackground(["/usr/bin/env", "python3", script, wsAddress, "--symbol", "BTC-PERP",
                                            "--channels", channels, "--seconds", "12", "--never-read"],
                                           stdout: folder + "/idle.out", stderr: folder + "/idle.err")
        else { return XCTFail("cannot start the WebSocket clients") }
        // Both connected and subscribed before the replay.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let a = (try? String(contentsOfFile: folder + "/reader.out", encoding: .utf8)) ?? ""
            let b = (try? String(contentsOfFile: folder + "/idle.out", encoding: .utf8)) ?? ""
            if a.contains("connected") && b.contains("connected") { break }
            usleep(50_000)
        }
        usleep(500_000)
        // Four runs of the same bars: the stores keep them once (keys), the updates go out four times (more
        // than the idle client's queue and socket buffers hold).
        for run in 0..<4 {
            let replay = spawnAndWait([tape, "replay", bars, "--out", folder + "/run\(run)", "--quiet", "--no-report",
                                       "--store", url, "--store", Self.updatesRedis])
            XCTAssertTrue(replay == 0 || replay == 3, "tape replay exit \(replay)")
        }
        let replayEnded = Date()
        XCTAssertEqual(waitForExit(reader, seconds: 60), 0, (try? String(contentsOfFile: folder + "/reader.err", encoding: .utf8)) ?? "")
        XCTAssertEqual(waitForExit(idle, seconds: 60), 0, (try? String(contentsOfFile: folder + "/idle.err", encoding: .utf8)) ?? "")
        // /api/v1/latest from the in-process copy (kept from the same updates): the same bar as Redis's hash
        // and PostgreSQL's last row; every lookup a cache hit.
        let before = String(decoding: try request(base + "/metrics").body, as: UTF8.self)
        for _ in 0..<2 {   // the first may fill what the stream has not given (the absent quote and trade)
            let latest = try request(base + "/api/v1/latest/BTC-PERP?timeframe=1m").json()
            let bar = try XCTUnwrap(latest["bar"] as? [String: Any])
            let hash = try XCTUnwrap(try redis.command(["HGETALL", "tape:latest:bar:BTC-PERP:1m"]).fieldValues)
            XCTAssertEqual((bar["end_ns"] as? NSNumber)?.int64Value, Int64(hash["end_ns"] ?? ""))
            XCTAssertEqual((bar["close"] as? NSNumber)?.doubleValue, Double(hash["close"] ?? ""))
            XCTAssertEqual((bar["volume"] as? NSNumber)?.doubleValue, Double(hash["volume"] ?? ""))
            XCTAssertTrue(latest["trade"] is NSNull && latest["quote"] is NSNull, "a bar file has no ticks")
        }
        let hits = { (text: String) -> Double in
            text.split(separator: "\n").first { $0.hasPrefix("tape_cache_requests_total{result=\"hit\"}") }
                .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        let metrics = String(decoding: try request(base + "/metrics").body, as: UTF8.self)
        XCTAssertGreaterThanOrEqual(hits(metrics) - hits(before), 4, "the second answer came from the cache")
        stopServe(pid)

        // The reading client: every bar PostgreSQL holds, once each, with the same values.
        let connection = try PostgresConnection(url: url)
        let rows = try connection.query("""
            SELECT \(Self.nanos("end_time")), close, volume FROM bars WHERE symbol = 'BTC-PERP' AND timeframe = '1m'
            ORDER BY end_time
            """)
        XCTAssertEqual(rows.count, 500)
        var received: [Int64: [String: Any]] = [:]
        var updates = 0
        var lastArrival: Int64 = 0
        let lines = try String(contentsOfFile: folder + "/reader.jsonl", encoding: .utf8).split(separator: "\n")
        for line in lines {
            let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let message = try XCTUnwrap(record["message"] as? [String: Any])
            guard message["channel"] as? String == "bars:1m" else { continue }
            let items = (message["data"] as? [[String: Any]]) ?? [(message["data"] as? [String: Any]) ?? [:]]
            if message["type"] as? String == "update" {
                updates += 1
                lastArrival = max(lastArrival, (record["arrival_ns"] as? NSNumber)?.int64Value ?? 0)
            }
            for bar in items {
                let end = try XCTUnwrap((bar["end_ns"] as? NSNumber)?.int64Value)
                received[end] = bar
            }
        }
        XCTAssertEqual(received.count, rows.count, "every stored bar reached the reading client")
        XCTAssertEqual(updates, 4 * rows.count, "each bar once per run as an update")
        for row in rows {
            let end = try XCTUnwrap(Int64(row[0] ?? ""))
            let bar = try XCTUnwrap(received[end], "bar ending \(end)")
            XCTAssertEqual((bar["close"] as? NSNumber)?.doubleValue ?? .nan, Double(row[1] ?? "") ?? .nan, accuracy: 1e-9)
            XCTAssertEqual((bar["volume"] as? NSNumber)?.doubleValue ?? .nan, Double(row[2] ?? "") ?? .nan,
                           accuracy: 1e-6 * max(1, Double(row[2] ?? "") ?? 1))
        }
        // On time: the last update reached the reading client within a second of the last replay's end,
        // though the other client had stopped reading.
        XCTAssertLessThan(Double(lastArrival) / 1e9 - replayEnded.timeIntervalSince1970, 1.0, "the reading client kept up")
        let readerSummary = try lastJSON(folder + "/reader.out")
        let readerClient = try XCTUnwrap((readerSummary["clients"] as? [[String: Any]])?.first)
        XCTAssertTrue(readerClient["close_code"] is NSNull, "the reading client was not closed: \(readerClient)")

        // The client that never read: closed as too slow (the close frame, or its socket cut).
        let idleSummary = try lastJSON(folder + "/idle.out")
        let idleClient = try XCTUnwrap((idleSummary["clients"] as? [[String: Any]])?.first)
        let code = idleClient["close_code"] as? Int
        let cut = (idleClient["reset"] as? Bool ?? false) || (idleClient["eof"] as? Bool ?? false)
        // The server closed it as too slow (its socket may still hold data the client has not read: the close
        // frame or the end of the stream can lie behind it, so the server's count is the witness).
        XCTAssertTrue(metrics.contains("tape_ws_clients_dropped_total 1"), "one client dropped:\n\(metrics)")
        XCTAssertTrue(code == nil || code == 4008, "the idle client was closed with 4008 or cut: \(idleClient)")
        _ = cut
        XCTAssertLessThan((idleClient["counts"] as? [String: Int])?["update"] ?? 0, 4 * rows.count)
    }

    func lastJSON(_ path: String) throws -> [String: Any] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let line = try XCTUnwrap(text.split(separator: "\n").last)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }
}
