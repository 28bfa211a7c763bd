import Foundation
import TapeRedis
import TapeStore
import TapeTestSupport
import XCTest

/// Two `tape serve` processes on the same PostgreSQL and Redis, as behind a load balancer, with one publisher
/// (`tape replay --store redis://…`): a WebSocket client on each gets the same updates, in the same order, and
/// every REST answer is the same byte for byte from either — so a balancer may send any request or
/// connection to any of them (docs/serving.md, "Several serve processes behind a load balancer").
extension ServeTests {
    /// A Redis database of its own (7, 8, 9 are other tests', 11 the predictions tests').
    static let balancedRedis = "redis://127.0.0.1:56379/12"

    func testTwoServeProcessesGiveTheSameUpdatesAndTheSameAnswers() throws {
        try requireTape()
        let redis = try clearedRedis(Self.balancedRedis)
        defer { _ = try? redis.command(["FLUSHDB"]) }
        let url = try freshDatabase("balanced")
        let folder = temporaryFolder("balanced")
        let source = packageRoot().deletingLastPathComponent()
            .appendingPathComponent("shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: source), "real data at \(source)")
        let bars = folder + "/btc-perp-500_1m.csv"
        XCTAssertEqual(spawnAndWait(["/bin/sh", "-c", "gzip -dc '\(source)' | head -501 > '\(bars)'"]), 0)
        // The schema first (a run of no rows), so that both servers answer before the replay.
        XCTAssertEqual(spawnAndWait([tape, "store", "migrate", "--store", url]), 0, "tape store migrate")

        let (first, firstBase) = try startServe(["--store", url, "--redis", Self.balancedRedis], label: "first")
        defer { stopServe(first) }
        let (second, secondBase) = try startServe(["--store", url, "--redis", Self.balancedRedis], label: "second")
        defer { stopServe(second) }
        try waitForUpdates(firstBase)
        try waitForUpdates(secondBase)

        let script = packageRoot().appendingPathComponent("scripts/ws_updates_client.py").path
        var clients: [pid_t] = []
        for (index, base) in [firstBase, secondBase].enumerated() {
            clients.append(try XCTUnwrap(spawnInBackground(
                ["/usr/bin/env", "python3", script, String(base.dropFirst("http://".count)), "--symbol", "BTC-PERP",
                 "--channels", "bars:1m,indicators,anomalies,trades", "--seconds", "10",
                 "--out", folder + "/client\(index).jsonl"],
                stdout: folder + "/client\(index).out", stderr: folder + "/client\(index).err")))
        }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let connected = (0..<2).allSatisfy {
                let out = (try? String(contentsOfFile: folder + "/client\($0).out", encoding: .utf8)) ?? ""
                return out.contains("connected")
            }
            if connected { break }
            usleep(50_000)
        }
        usleep(500_000)
        let replay = spawnAndWait([tape, "replay", bars, "--out", folder + "/run", "--quiet", "--no-report",
                                   "--store", url, "--store", Self.balancedRedis])
        XCTAssertTrue(replay == 0 || replay == 3, "tape replay exit \(replay)")
        for (index, client) in clients.enumerated() {
            XCTAssertEqual(waitForExit(client, seconds: 60), 0,
                           (try? String(contentsOfFile: folder + "/client\(index).err", encoding: .utf8)) ?? "")
        }

        // The updates: the same messages in the same order at both clients, every stored bar among them.
        let updates = try (0..<2).map { index in
            try String(contentsOfFile: folder + "/client\(index).jsonl", encoding: .utf8).split(separator: "\n")
                .map { line -> String in
                    // The message as the server sent it, without the client's arrival stamp.
                    let text = String(line)
                    guard let start = text.range(of: "\"message\": ") else { return "" }
                    return String(text[start.upperBound...].dropLast())
                }
                .filter { $0.hasPrefix("{\"type\": \"update\"") }
        }
        let connection = try PostgresConnection(url: url)
        let stored = try connection.query("SELECT count(*) FROM bars WHERE symbol = 'BTC-PERP' AND timeframe = '1m'")
        let barCount = try XCTUnwrap(Int(stored.first?[0] ?? ""))
        XCTAssertEqual(barCount, 500)
        let barUpdates = updates[0].filter { $0.contains("bars:1m") }.count
        XCTAssertEqual(barUpdates, barCount, "each stored bar once as an update")
        XCTAssertEqual(updates[0].count, updates[1].count, "as many updates at each client")
        XCTAssertTrue(updates[0] == updates[1], "the same updates in the same order from either server")

        // REST: the same bytes from either server.
        let paths = ["/api/v1/symbols", "/api/v1/latest/BTC-PERP?timeframe=1m", "/api/v1/latest/BTC-PERP?timeframe=5m",
                     "/api/v1/bars/BTC-PERP?timeframe=1m&limit=50", "/api/v1/bars/BTC-PERP?timeframe=5m&limit=1000",
                     "/api/v1/indicators/BTC-PERP?timeframe=1m&limit=1000", "/api/v1/anomalies?limit=1000",
                     "/api/v1/runs", "/api/v1/predictions/BTC-PERP?timeframe=1m", "/api/v1/bars/NOPE"]
        for path in paths {
            let one = try request(firstBase + path)
            let other = try request(secondBase + path)
            XCTAssertEqual(one.status, other.status, path)
            XCTAssertEqual(one.text, other.text, path)
        }
        // A page cursor from one server is good at the other (keyset: the cursor is a position in the data).
        let page = try JSONDecoder().decode(Page<BarItem>.self, from: try request(
            firstBase + "/api/v1/bars/BTC-PERP?timeframe=1m&limit=100").body)
        let cursor = try XCTUnwrap(page.next_cursor)
        let next = firstBase + "/api/v1/bars/BTC-PERP?timeframe=1m&limit=100&cursor=\(cursor)"
        XCTAssertEqual(try request(next).text,
                       try request(secondBase + "/api/v1/bars/BTC-PERP?timeframe=1m&limit=100&cursor=\(cursor)").text)
    }
}
