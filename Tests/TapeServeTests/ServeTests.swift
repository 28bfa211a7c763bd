import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TapeRedis
import TapeServe
import TapeStore
import TapeTestSupport
import XCTest

/// The built `tape serve` against the PostgreSQL and Redis of `make services`, filled by the built
/// `tape replay --store postgres://…` with real captures from ../shared/data. Each test that needs data has a
/// database of its own (dropped afterwards) and a Redis key prefix of its own (deleted afterwards). Every
/// value the API answers is held against an independent SQL query (libpq, not `StoreQueries`).
final class ServeTests: XCTestCase {
    static let server = "postgres://postgres@127.0.0.1:55432"
    static let redisURL = "redis://127.0.0.1:56379"
    var tape: String { packageRoot().appendingPathComponent(".build/release/tape").path }
    private let databases = ScratchDatabases(namePrefix: "tape_serve_test")
    private var redisPrefixes: [String] = []
    private var servers: [pid_t] = []
    /// Each started server's folder (its stdout is `out`).
    var serveFolders: [pid_t: String] = [:]

    override func tearDown() {
        for pid in servers where waitForExit(pid, seconds: 0) == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(pid)
        }
        databases.dropAll()
        if let redis = try? RedisConnection(url: Self.redisURL) {
            for prefix in redisPrefixes {
                if let keys = try? redis.command(["KEYS", prefix + "*"]).array {
                    for key in keys { if let name = key.string { _ = try? redis.command(["DEL", name]) } }
                }
            }
        }
    }

    // MARK: fixtures

    /// A new empty database (dropped in tearDown); its URL.
    func freshDatabase(_ label: String) throws -> String { try databases.fresh(label) }

    /// A Redis key prefix of this test (its keys are deleted in tearDown); skips without Redis.
    func freshRedisPrefix(_ label: String) throws -> String {
        do { _ = try RedisConnection(url: Self.redisURL) } catch {
            try skipOrFail(missing: "Redis of `make services` at \(Self.redisURL): \(error)")
        }
        let prefix = "tape-serve-test-\(getpid())-\(label)-\(redisPrefixes.count):"
        redisPrefixes.append(prefix)
        return prefix
    }

    func capture(_ name: String) throws -> String {
        let path = packageRoot().deletingLastPathComponent()
            .appendingPathComponent("shared/data/binance-feed/\(name)").path
        try requireOrSkip(FileManager.default.fileExists(atPath: path), "real data at \(path)")
        return path
    }

    func temporaryFolder(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "tape-serve-tests-\(getpid())/\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func requireTape() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
    }

    /// `tape replay CAPTURES --store URL` into a new database: its URL and the run folder (alone in a folder of
    /// its own: `--runs-dir`).
    func replayIntoFreshDatabase(_ captures: [String], label: String, arguments: [String] = []) throws -> (String, String) {
        try requireTape()
        let url = try freshDatabase(label)
        let out = temporaryFolder("runs-" + label) + "/" + label
        let log = out + ".log"
        let pid = try XCTUnwrap(spawnInBackground([tape, "replay"] + captures + arguments
                                                  + ["--out", out, "--quiet", "--no-report", "--store", url],
                                                  stdout: log, stderr: log))
        let code = waitForExit(pid)
        XCTAssertEqual(code, 0, "tape replay: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        return (url, out)
    }

    /// Starts `tape serve ARGUMENTS --listen 127.0.0.1:0`; its pid and base URL once it listens.
    func startServe(_ arguments: [String], label: String) throws -> (pid_t, String) {
        try requireTape()
        let folder = temporaryFolder("serve-" + label)
        let swaggerUI = packageRoot().appendingPathComponent(".tape/swagger-ui").path
        let pid = try XCTUnwrap(spawnInBackground([tape, "serve", "--listen", "127.0.0.1:0", "--swagger-ui", swaggerUI]
                                                  + arguments, stdout: folder + "/out", stderr: folder + "/err"))
        servers.append(pid)
        serveFolders[pid] = folder
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let out = (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? ""
            if let line = out.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
                return (pid, "http://" + line.dropFirst("listening ".count))
            }
            if let code = waitForExit(pid, seconds: 0) {
                let log = (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? ""
                XCTFail("tape serve exited \(code): \(log)")
                throw MissingRequirement(description: "tape serve did not start")
            }
            usleep(50_000)
        }
        throw MissingRequirement(description: "tape serve did not say where it listens within 20 s")
    }

    /// Waits until the server's updates subscription is live (`/ready`'s `updates`), so that what goes through
    /// the in-process latest copy does not depend on when the subscription came up.
    func waitForUpdates(_ base: String) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let ready = try request(base + "/ready").json()
            let updates = ((ready["dependencies"] as? [String: Any])?["updates"] as? [String: Any])?["status"] as? String
            if updates == "up" { return }
            usleep(50_000)
        }
        XCTFail("the updates subscription did not come up within 10 s")
    }

    /// SIGTERM: the server ends gracefully, exit 0.
    func stopServe(_ pid: pid_t) {
        kill(pid, SIGTERM)
        XCTAssertEqual(waitForExit(pid, seconds: 10), 0, "tape serve ends on SIGTERM with exit 0")
    }

    struct Reply {
        let status: Int
        let headers: [String: String]
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func json() throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: body) as? [String: Any], "a JSON object: \(text)")
        }
        var contentType: String { headers["content-type"] ?? "" }
    }

    /// One request, answered or failed within 30 s.
    func request(_ url: String, method: String = "GET", headers: [String: String] = [:]) throws -> Reply {
        var request = URLRequest(url: try XCTUnwrap(URL(string: url)))
        request.httpMethod = method
        request.timeoutInterval = 30
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let box = ReplyBox()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.set(data: data, response: response as? HTTPURLResponse, error: error)
            done.signal()
        }.resume()
        done.wait()
        let (data, response, error) = box.get()
        guard let response else {
            throw MissingRequirement(description: "\(method) \(url): \(String(describing: error))")
        }
        var fields: [String: String] = [:]
        for (name, value) in response.allHeaderFields {
            fields[String(describing: name).lowercased()] = String(describing: value)
        }
        return Reply(status: response.statusCode, headers: fields, body: data ?? Data())
    }

    func assertProblem(_ reply: Reply, _ status: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
        XCTAssertEqual(reply.contentType, "application/problem+json", file: file, line: line)
        let body = try reply.json()
        XCTAssertEqual(body["status"] as? Int, status, file: file, line: line)
        XCTAssertNotNil(body["type"] as? String, file: file, line: line)
        XCTAssertNotNil(body["title"] as? String, file: file, line: line)
        XCTAssertFalse((body["detail"] as? String ?? "").isEmpty, file: file, line: line)
    }

    static func nanos(_ column: String) -> String { "(extract(epoch from \(column)) * 1000000000)::bigint" }

    // MARK: tests

    /// Every data route against an independent SQL query on the database the replay filled, paging included;
    /// the latest bar and trade go through Redis (a miss filled from PostgreSQL, then a hit).
    func testRoutesAnswerWhatPostgresHolds() throws {
        // Two feeds of 2024-08-08 and one of 08-09: the clock runs on past the first two, so they go stale
        // (anomalies).
        let captures = try ["usdm-btcusdt_20240808.gz", "cm-ethusd_perp_20240808.gz", "spot-ethusdt_20240809.gz"]
            .map { try capture($0) }
        let (url, out) = try replayIntoFreshDatabase(captures, label: "routes")
        let prefix = try freshRedisPrefix("routes")
        let database = try PostgresConnection(url: url)
        let runsDirectory = (out as NSString).deletingLastPathComponent
        let (pid, base) = try startServe(["--store", url, "--redis", Self.redisURL, "--redis-prefix", prefix,
                                          "--runs-dir", runsDirectory], label: "routes")
        try waitForUpdates(base)

        // Symbols: tick_ranges per symbol.
        let expectedSymbols = try database.query(
            "SELECT symbol, sum(rows)::bigint FROM tick_ranges GROUP BY symbol ORDER BY symbol")
        let symbols = try XCTUnwrap(try request(base + "/api/v1/symbols").json()["items"] as? [[String: Any]])
        XCTAssertEqual(symbols.map { $0["symbol"] as? String }, expectedSymbols.map { $0[0] })
        XCTAssertEqual(symbols.map { ($0["ticks"] as? Int).map(String.init) }, expectedSymbols.map { $0[1] })
        XCTAssertEqual(expectedSymbols.count, 3)

        // Latest: the newest 1m bar and trade of each symbol, first a cache miss (filled), then a hit.
        for symbol in expectedSymbols.compactMap({ $0[0] }) {
            let bar = try XCTUnwrap(try database.query("""
                SELECT \(Self.nanos("time")), close, volume, trades FROM bars
                WHERE symbol = '\(symbol)' AND timeframe = '1m' ORDER BY time DESC LIMIT 1
                """).first)
            let trade = try XCTUnwrap(try database.query("""
                SELECT time_ns, price, size FROM ticks WHERE symbol = '\(symbol)' AND kind = 0
                ORDER BY time DESC, receive_ns DESC LIMIT 1
                """).first)
            for _ in 0..<2 {
                let reply = try request(base + "/api/v1/latest/\(symbol)?timeframe=1m")
                let latest = try JSONDecoder().decode(LatestReply.self, from: reply.body)
                let latestBar = try XCTUnwrap(latest.bar, reply.text)
                XCTAssertEqual(String(latestBar.start_ns), bar[0])
                XCTAssertEqual(latestBar.close, Double(bar[1]!))
                XCTAssertEqual(latestBar.trades.map(String.init), bar[3])
                XCTAssertFalse(latestBar.start.isEmpty)
                let latestTrade = try XCTUnwrap(latest.trade, reply.text)
                XCTAssertEqual(String(latestTrade.time_ns), trade[0])
                XCTAssertEqual(latestTrade.price, Double(trade[1]!))
                XCTAssertEqual(latestTrade.size, Double(trade[2]!))
            }
        }
        let redis = try RedisConnection(url: Self.redisURL)
        let symbol = try XCTUnwrap(expectedSymbols.first?[0])
        let cached = try XCTUnwrap(try redis.command(["HGETALL", "\(prefix)latest:bar:\(symbol):1m"]).fieldValues)
        XCTAssertFalse(cached.isEmpty, "the read-through filled Redis")
        let metrics = try request(base + "/metrics").text
        // Per call 4 lookups (trade, quote, bar, prediction) × 3 symbols × 2 calls: the first call misses all 4
        // (Redis, then PostgreSQL, which fills Redis and the in-process copy; the prediction — no model ran — is
        // found nowhere and noted absent), the second is answered from the in-process copy: 4 hits.
        XCTAssertTrue(metrics.contains("tape_cache_requests_total{result=\"miss\"} 12"), metrics)
        XCTAssertTrue(metrics.contains("tape_cache_requests_total{result=\"hit\"} 12"), metrics)

        // Bars in a range, paged by 7: the same rows as SQL, in order.
        let range = try XCTUnwrap(try database.query("""
            SELECT min(\(Self.nanos("time"))), max(\(Self.nanos("time"))) FROM bars
            WHERE symbol = '\(symbol)' AND timeframe = '1m'
            """).first)
        let from = Int64(range[0]!)!, to = Int64(range[1]!)!
        let expectedBars = try database.query("""
            SELECT \(Self.nanos("time")), open, high, low, close, volume, vwap, trades FROM bars
            WHERE symbol = '\(symbol)' AND timeframe = '1m'
              AND time >= to_timestamp(\(from) / 1e9) AND time < to_timestamp(\(to) / 1e9)
            ORDER BY time
            """)
        XCTAssertGreaterThan(expectedBars.count, 1)
        var pagedBars: [BarItem] = []
        var cursor: String? = nil
        var pages = 0
        repeat {
            var address = base + "/api/v1/bars/\(symbol)?timeframe=1m&from=\(from)&to=\(to)&limit=2"
            if let cursor { address += "&cursor=\(cursor)" }
            let page = try JSONDecoder().decode(Page<BarItem>.self, from: try request(address).body)
            pagedBars += page.items
            cursor = page.next_cursor
            pages += 1
        } while cursor != nil && pages < 100
        XCTAssertEqual(pagedBars.map { String($0.start_ns) }, expectedBars.map { $0[0]! })
        XCTAssertEqual(pagedBars.map(\.close), expectedBars.map { $0[4].flatMap(Double.init) })
        XCTAssertEqual(pagedBars.map(\.vwap), expectedBars.map { $0[6].flatMap(Double.init) })
        XCTAssertEqual(pages, (expectedBars.count + 1) / 2)
        let isoAddress = base + "/api/v1/bars/\(symbol)?timeframe=1m&from=\(isoText(from))&to=\(isoText(to))&limit=1000"
        let isoRange = try request(isoAddress).json()
        XCTAssertEqual((isoRange["items"] as? [Any])?.count, expectedBars.count, "ISO-8601 bounds select the same bars")

        // Indicators: the same rows as SQL.
        let expectedIndicators = try database.query("""
            SELECT \(Self.nanos("time")), sma, rsi FROM indicators
            WHERE symbol = '\(symbol)' AND timeframe = '1m' ORDER BY time
            """)
        let indicators = try JSONDecoder().decode(Page<IndicatorItem>.self, from: try request(
            base + "/api/v1/indicators/\(symbol)?timeframe=1m&limit=1000").body).items
        XCTAssertEqual(indicators.map { String($0.end_ns) }, expectedIndicators.map { $0[0]! })
        XCTAssertEqual(indicators.map(\.sma), expectedIndicators.map { $0[1].flatMap(Double.init) })
        XCTAssertEqual(indicators.map(\.rsi), expectedIndicators.map { $0[2].flatMap(Double.init) })

        // Anomalies, paged by 1, and filtered by rule.
        let expectedAnomalies = try database.query(
            "SELECT symbol, time_ns, rule, value FROM anomalies ORDER BY time_ns, symbol, rule")
        XCTAssertGreaterThan(expectedAnomalies.count, 0, "the merged replay raises stale-feed anomalies")
        var anomalies: [AnomalyItem] = []
        cursor = nil
        repeat {
            var address = base + "/api/v1/anomalies?limit=1"
            if let cursor { address += "&cursor=\(cursor)" }
            let page = try JSONDecoder().decode(Page<AnomalyItem>.self, from: try request(address).body)
            anomalies += page.items
            cursor = page.next_cursor
        } while cursor != nil && anomalies.count < 1000
        XCTAssertEqual(anomalies.map { "\($0.symbol) \($0.time_ns) \($0.rule)" },
                       expectedAnomalies.map { "\($0[0]!) \($0[1]!) \($0[2]!)" })
        XCTAssertEqual(anomalies.map(\.value), expectedAnomalies.map { $0[3].flatMap(Double.init) })
        let rule = try XCTUnwrap(expectedAnomalies.first?[2])
        let byRule = try XCTUnwrap(try request(base + "/api/v1/anomalies?rule=\(rule)&severity=warning").json()["items"]
                                   as? [Any])
        XCTAssertEqual(byRule.count, try database.query(
            "SELECT count(*) FROM anomalies WHERE rule = '\(rule)' AND severity = 'warning'")
            .first?[0].flatMap { Int($0) })

        // Runs: the replay's row, and its summary (the digest of summary.json).
        let summaryData = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
        let runID = try XCTUnwrap(try database.query("SELECT run_id FROM tape_runs").first?[0])
        let runs = try XCTUnwrap(try request(base + "/api/v1/runs?kind=replay").json()["items"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["run_id"] as? String }, [runID])
        XCTAssertEqual(try XCTUnwrap(try request(base + "/api/v1/sessions").json()["items"] as? [Any]).count, 0)
        let run = try request(base + "/api/v1/runs/\(runID)").json()
        XCTAssertEqual((run["summary"] as? [String: Any])?["digest"] as? String, summary["digest"] as? String)
        XCTAssertEqual(run["kind"] as? String, "replay")

        // Run folders on disk: the replay's folder, its headline and its whole summary.json.
        let folders = try request(base + "/api/v1/run-folders").json()
        let folder = try XCTUnwrap((folders["items"] as? [[String: Any]])?.first, "\(folders)")
        XCTAssertEqual(folder["name"] as? String, "routes")
        XCTAssertEqual(folder["digest"] as? String, summary["digest"] as? String)
        XCTAssertEqual(folder["run_id"] as? String, runID)
        XCTAssertEqual(folder["ticks_delivered"] as? Int, summary["ticks_delivered"] as? Int)
        let detail = try request(base + "/api/v1/run-folders/routes").json()
        XCTAssertEqual((detail["summary"] as? [String: Any])?["digest"] as? String, summary["digest"] as? String)
        try assertProblem(try request(base + "/api/v1/run-folders/nope"), 404)
        try assertProblem(try request(base + "/api/v1/run-folders/..%2F..%2Fetc"), 404)
        stopServe(pid)
    }

    /// 404 unknown symbol, 400 bad range and parameters, 401 without a key, 403 with a read-only key, the admin
    /// endpoint with a key, 429 with Retry-After on a flood; reads behind a key when `auth.read: key`.
    func testErrorsAuthAndRateLimits() throws {
        let (url, _) = try replayIntoFreshDatabase([try capture("spot-btcusdt_20240808.gz")], label: "errors")
        let prefix = try freshRedisPrefix("errors")
        let config = temporaryFolder("config") + "/serve.yaml"
        try """
            auth:
              read: open
              keys:
                - {name: ops, sha256: "\(ServeConfig.hash(key: "admin-secret"))", scopes: [read, admin]}
                - {name: viewer, sha256: "\(ServeConfig.hash(key: "read-secret"))"}
            rate_limits:
              per_key: {rate_per_second: 1, burst: 5}
              per_ip: {rate_per_second: 1000, burst: 1000}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let (pid, base) = try startServe(["--store", url, "--redis", Self.redisURL, "--redis-prefix", prefix,
                                          "--config", config], label: "errors")
        try assertProblem(try request(base + "/api/v1/latest/spot:NOPE"), 404)
        try assertProblem(try request(base + "/api/v1/bars/spot:NOPE"), 404)
        let backwards = "from=2024-08-09T00:00:00Z&to=2024-08-08T00:00:00Z"
        try assertProblem(try request(base + "/api/v1/bars/spot:BTCUSDT?" + backwards), 400)
        try assertProblem(try request(base + "/api/v1/bars/spot:BTCUSDT?from=yesterday"), 400)
        try assertProblem(try request(base + "/api/v1/bars/spot:BTCUSDT?limit=0"), 400)
        try assertProblem(try request(base + "/api/v1/bars/spot:BTCUSDT?timeframe=+5m"), 400)
        try assertProblem(try request(base + "/api/v1/anomalies?severity=loud"), 400)
        try assertProblem(try request(base + "/api/v1/runs/nope"), 404)
        try assertProblem(try request(base + "/api/v1/nothing/here"), 404)
        XCTAssertEqual(try request(base + "/api/v1/latest/spot:BTCUSDT").status, 200)

        // Writes: no key 401, a wrong key 401, a read-only key 403, the admin key 200 and the cache is gone.
        let invalidate = base + "/api/v1/admin/cache/invalidate?symbol=spot:BTCUSDT"
        try assertProblem(try request(invalidate, method: "POST"), 401)
        try assertProblem(try request(invalidate, method: "POST", headers: ["X-API-Key": "guess"]), 401)
        try assertProblem(try request(invalidate, method: "POST", headers: ["X-API-Key": "read-secret"]), 403)
        let redis = try RedisConnection(url: Self.redisURL)
        let barKey = "\(prefix)latest:bar:spot:BTCUSDT:1m"
        XCTAssertFalse(try XCTUnwrap(try redis.command(["HGETALL", barKey]).fieldValues).isEmpty)
        let invalidated = try request(invalidate, method: "POST", headers: ["X-API-Key": "admin-secret"])
        XCTAssertEqual(invalidated.status, 200, invalidated.text)
        XCTAssertEqual(try invalidated.json()["keys_deleted"] as? Int, 3, "trade, quote and the 1m bar")
        XCTAssertTrue(try XCTUnwrap(try redis.command(["HGETALL", barKey]).fieldValues).isEmpty)

        // A flood from one key: 429 with Retry-After once its burst is spent.
        var statuses: [Int] = []
        var retryAfter: String?
        for _ in 0..<20 {
            let reply = try request(base + "/api/v1/symbols", headers: ["X-API-Key": "read-secret"])
            statuses.append(reply.status)
            if reply.status == 429 {
                retryAfter = reply.headers["retry-after"]
                try assertProblem(reply, 429)
            }
        }
        XCTAssertTrue(statuses.prefix(4).allSatisfy { $0 == 200 }, "\(statuses)")
        XCTAssertTrue(statuses.contains(429), "\(statuses)")
        XCTAssertNotNil(retryAfter.flatMap(Int.init), "Retry-After in seconds")
        // The other key and anonymous reads have buckets of their own.
        XCTAssertEqual(try request(base + "/api/v1/symbols").status, 200)
        let metrics = try request(base + "/metrics").text
        for expected in ["tape_http_requests_total{route=\"/api/v1/symbols\",method=\"GET\",status=\"429\"}",
                         "tape_http_requests_total{route=\"/api/v1/bars/{symbol}\",method=\"GET\",status=\"400\"}",
                         "tape_http_requests_total{route=\"/api/v1/admin/cache/invalidate\","
                            + "method=\"POST\",status=\"401\"}",
                         "tape_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}",
                         "tape_http_request_duration_seconds_bucket{route=\"/api/v1/latest/{symbol}\""] {
            XCTAssertTrue(metrics.contains(expected), "\(expected) in\n\(metrics)")
        }
        XCTAssertTrue(metrics.contains("tape_ws_clients 0"), metrics)
        stopServe(pid)

        // auth.read: key — reads need a key too.
        try "auth: {read: key, keys: [{name: viewer, sha256: \"\(ServeConfig.hash(key: "read-secret"))\"}]}\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let (closed, closedBase) = try startServe(["--store", url, "--config", config], label: "closed")
        try assertProblem(try request(closedBase + "/api/v1/symbols"), 401)
        XCTAssertEqual(try request(closedBase + "/api/v1/symbols", headers: ["X-API-Key": "read-secret"]).status, 200)
        XCTAssertEqual(try request(closedBase + "/health").status, 200, "monitoring needs no key")
        stopServe(closed)
    }

    /// `/ready` names each dependency: 503 while the configured Redis does not answer, yet the API answers from
    /// PostgreSQL; PostgreSQL away: 503 problems, and the server keeps running.
    func testReadinessAndOutages() throws {
        let (url, _) = try replayIntoFreshDatabase([try capture("spot-btcusdt_20240808.gz")], label: "ready")
        let (up, upBase) = try startServe(["--store", url, "--redis", Self.redisURL, "--redis-prefix",
                                           try freshRedisPrefix("ready")], label: "up")
        let ready = try request(upBase + "/ready")
        XCTAssertEqual(ready.status, 200, ready.text)
        XCTAssertEqual(try ready.json()["status"] as? String, "ready")
        stopServe(up)

        let (deadRedis, deadRedisBase) = try startServe(["--store", url, "--redis", "redis://127.0.0.1:1"],
                                                        label: "deadredis")
        let notReady = try request(deadRedisBase + "/ready")
        XCTAssertEqual(notReady.status, 503, notReady.text)
        let dependencies = try XCTUnwrap(try notReady.json()["dependencies"] as? [String: [String: Any]])
        XCTAssertEqual(dependencies["redis"]?["status"] as? String, "down")
        XCTAssertEqual(dependencies["postgres"]?["status"] as? String, "up")
        let latest = try request(deadRedisBase + "/api/v1/latest/spot:BTCUSDT")
        XCTAssertEqual(latest.status, 200, "served from PostgreSQL: \(latest.text)")
        XCTAssertNotNil(try latest.json()["bar"] as? [String: Any])
        stopServe(deadRedis)

        let (deadPostgres, deadPostgresBase) = try startServe(["--store", "postgres://postgres@127.0.0.1:1/tape"],
                                                              label: "deadpg")
        try assertProblem(try request(deadPostgresBase + "/api/v1/symbols"), 503)
        try assertProblem(try request(deadPostgresBase + "/api/v1/latest/spot:BTCUSDT"), 503)
        XCTAssertEqual(try request(deadPostgresBase + "/ready").status, 503)
        XCTAssertEqual(try request(deadPostgresBase + "/health").status, 200, "alive through the outage")
        stopServe(deadPostgres)
    }

    /// PostgreSQL and Redis drop the server's connections (as a restart does): the next requests reconnect and
    /// answer 200, and the cache is filled again.
    func testDroppedConnectionsAreReconnected() throws {
        let (url, _) = try replayIntoFreshDatabase([try capture("spot-btcusdt_20240808.gz")], label: "reconnect")
        let prefix = try freshRedisPrefix("reconnect")
        let (pid, base) = try startServe(["--store", url, "--redis", Self.redisURL, "--redis-prefix", prefix,
                                          "--store-threads", "1"], label: "reconnect")
        XCTAssertEqual(try request(base + "/api/v1/latest/spot:BTCUSDT").status, 200)
        let database = try PostgresConnection(url: url)
        let name = try XCTUnwrap(URL(string: url)?.lastPathComponent)
        let terminated = try database.query("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = '\(name)' AND pid <> pg_backend_pid()
            """)
        XCTAssertEqual(terminated.first?[0], "1", "the server's one connection (one store thread)")
        let redis = try RedisConnection(url: Self.redisURL)
        let clients = try XCTUnwrap(try redis.command(["CLIENT", "LIST"]).string)
        let ours = clients.split(separator: "\n").filter { $0.contains(" name=tape-serve ") }
        for line in ours {
            if let id = line.split(separator: " ").first(where: { $0.hasPrefix("id=") })?.dropFirst(3) {
                _ = try redis.command(["CLIENT", "KILL", "ID", String(id)])
            }
        }
        XCTAssertFalse(ours.isEmpty, "the server's Redis connection was found")
        _ = try redis.command(["DEL", "\(prefix)latest:bar:spot:BTCUSDT:5m"])
        Thread.sleep(forTimeInterval: 1.1)   // past the Redis reconnect interval
        // Another timeframe: not in the in-process copy, so the stores are asked over new connections.
        let again = try request(base + "/api/v1/latest/spot:BTCUSDT?timeframe=5m")
        XCTAssertEqual(again.status, 200, again.text)
        XCTAssertEqual(try request(base + "/api/v1/symbols").status, 200)
        let refilled = try XCTUnwrap(try redis.command(["HGETALL", "\(prefix)latest:bar:spot:BTCUSDT:5m"]).fieldValues)
        XCTAssertFalse(refilled.isEmpty, "the read-through wrote the bar again over a new connection")
        XCTAssertEqual(try request(base + "/ready").status, 200)
        stopServe(pid)
    }

    /// Every route the server registers is in the OpenAPI document and every path of the document is served,
    /// method for method; the binary serves the repository's spec file as is, and Swagger UI at /docs.
    func testEveryRouteIsInTheSpecAndEverySpecPathIsServed() throws {
        let specURL = packageRoot().appendingPathComponent("Sources/TapeServe/Resources/openapi.json")
        let specData = try Data(contentsOf: specURL)
        let spec = try XCTUnwrap(JSONSerialization.jsonObject(with: specData) as? [String: Any])
        XCTAssertEqual(spec["openapi"] as? String, "3.1.0")
        let paths = try XCTUnwrap(spec["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let nowhere = "postgres://postgres@127.0.0.1:1/none"
        let server = try ServeServer(settings: .init(stores: .init(postgresURL: nowhere)))
        let registered = Set(server.makeRoutes().routes.map(\.description))
        XCTAssertEqual(registered.subtracting(documented), [], "routes missing from the spec")
        XCTAssertEqual(documented.subtracting(registered), [], "spec paths no route serves")
        XCTAssertEqual(Data(OpenAPISpec.bytes), specData, "the binary carries the repository's spec")

        let (pid, base) = try startServe(["--store", "postgres://postgres@127.0.0.1:1/none"], label: "spec")
        let served = try request(base + "/openapi.json")
        XCTAssertEqual(served.body, specData)
        XCTAssertEqual(served.contentType, "application/json")
        let swagger = packageRoot().appendingPathComponent(".tape/swagger-ui/swagger-ui-bundle.js").path
        try requireOrSkip(FileManager.default.fileExists(atPath: swagger),
                          "Swagger UI from scripts/setup.sh at \(swagger)")
        let docs = try request(base + "/docs")
        XCTAssertEqual(docs.status, 200)
        XCTAssertTrue(docs.text.contains("url: \"/openapi.json\""), docs.text)
        let bundle = try request(base + "/docs/swagger-ui-bundle.js")
        XCTAssertEqual(bundle.status, 200)
        XCTAssertEqual(bundle.body, try Data(contentsOf: URL(fileURLWithPath: swagger)))
        try assertProblem(try request(base + "/docs/../../etc/passwd"), 404)

        // Swagger UI renders offline in headless Chromium: one operation block per path of the spec.
        let chromium = "/usr/bin/chromium"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: chromium), "chromium at \(chromium)")
        let dom = temporaryFolder("docs") + "/dom.html"
        let browser = try XCTUnwrap(spawnInBackground([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                                       "--virtual-time-budget=8000", "--dump-dom", base + "/docs"],
                                                      stdout: dom, stderr: "/dev/null"))
        if waitForExit(browser, seconds: 90) == nil {
            kill(browser, SIGKILL)
            _ = waitForExit(browser)
            XCTFail("chromium did not finish within 90 s")
        }
        let rendered = (try? String(contentsOfFile: dom, encoding: .utf8)) ?? ""
        for path in paths.keys {
            XCTAssertTrue(rendered.contains("data-path=\"\(path)\""), "Swagger UI shows \(path)")
        }
        stopServe(pid)
    }

    /// schemathesis (PyPI) against /openapi.json of a server over real data (a backtest with paper trading, so
    /// that orders, fills and positions are there too): no 5xx, every status, content type, header and body as
    /// the spec says.
    func testSchemathesisFindsNoServerErrorAndNoSpecViolation() throws {
        let available = spawnAndWait(["/usr/bin/env", "python3", "-c", "import schemathesis"]) == 0
        try requireOrSkip(available, "schemathesis (PyPI; scripts/setup.sh installs it)")
        let trading = try TradingTables.writeConfig(in: temporaryFolder("schemathesis-trading"))
        let (url, out) = try replayIntoFreshDatabase([try capture("spot-btcusdt_20240808.gz")], label: "schemathesis",
                                                     arguments: ["--trading", trading])
        let prefix = try freshRedisPrefix("schemathesis")
        let config = temporaryFolder("config") + "/serve.yaml"
        // An admin key for every request, so the admin endpoint is exercised too; limits schemathesis stays under.
        try """
            auth: {keys: [{name: fuzz, sha256: "\(ServeConfig.hash(key: "fuzz-secret"))", scopes: [read, admin]}]}
            rate_limits: {per_key: {rate_per_second: 100000, burst: 100000}}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let (pid, base) = try startServe(["--store", url, "--redis", Self.redisURL, "--redis-prefix", prefix,
                                          "--config", config, "--runs-dir", (out as NSString).deletingLastPathComponent],
                                         label: "schemathesis")
        let folder = temporaryFolder("schemathesis")
        let code = spawnAndWait(["/bin/bash", "-c", """
            cd '\(folder)' && python3 -m schemathesis.cli run '\(base)/openapi.json' \
              --checks not_a_server_error,status_code_conformance,content_type_conformance,\
            response_headers_conformance,response_schema_conformance \
              --max-examples 40 --seed 14 --workers 2 --generation-database none --no-color --request-timeout 30 \
              --header 'X-API-Key: fuzz-secret' \
              > '\(folder)/out' 2>&1
            """])
        let output = (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? ""
        XCTAssertEqual(code, 0, "schemathesis:\n\(output)")
        XCTAssertFalse(output.contains("Server error"), output)
        print(output.split(separator: "\n").suffix(12).joined(separator: "\n"))
        stopServe(pid)
    }
}

// Typed replies: JSONDecoder reads doubles exactly (Foundation's JSONSerialization on Linux does not always).
struct Page<Item: Decodable>: Decodable {
    let items: [Item]
    let next_cursor: String?
}

struct BarItem: Decodable {
    let start_ns: Int64
    let start: String
    let close: Double?
    let vwap: Double?
    let trades: Int64?
}

struct TradeItem: Decodable {
    let time_ns: Int64
    let price: Double?
    let size: Double?
}

struct LatestReply: Decodable {
    let bar: BarItem?
    let trade: TradeItem?
}

struct AnomalyItem: Decodable {
    let symbol: String
    let time_ns: Int64
    let rule: String
    let value: Double?
}

struct IndicatorItem: Decodable {
    let end_ns: Int64
    let sma: Double?
    let rsi: Double?
}

/// The URLSession callback's values, handed to the waiting test.
private final class ReplyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    private var response: HTTPURLResponse?
    private var error: (any Error)?

    func set(data: Data?, response: HTTPURLResponse?, error: (any Error)?) {
        lock.lock()
        self.data = data
        self.response = response
        self.error = error
        lock.unlock()
    }

    func get() -> (Data?, HTTPURLResponse?, (any Error)?) {
        lock.lock()
        defer { lock.unlock() }
        return (data, response, error)
    }
}

/// ISO-8601 UTC with nanoseconds (the server's own parser reads it).
func isoText(_ nanoseconds: Int64) -> String {
    let seconds = nanoseconds / 1_000_000_000
    let fraction = nanoseconds % 1_000_000_000
    let date = Date(timeIntervalSince1970: TimeInterval(seconds))
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
    return formatter.string(from: date) + "." + String(format: "%09lld", fraction) + "Z"
}
