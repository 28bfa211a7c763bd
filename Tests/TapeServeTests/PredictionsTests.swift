import Foundation
import TapeRedis
import TapeStore
import TapeTestSupport
import XCTest

/// Model predictions and indicators served by `tape serve`, over a real model run: `tape train` on two days of
/// real 1-minute BTC-PERP bars, then `tape replay --model` of the next day into a database and a Redis of the
/// test's own. `/api/v1/predictions` paged, and the `/ws` snapshots of `indicators` and `predictions` (from
/// Redis's latest hashes, then from PostgreSQL once Redis holds nothing), each against an SQL query.
extension ServeTests {
    /// A Redis database of its own (7, 8, 9 are other tests').
    static let predictionsRedis = "redis://127.0.0.1:56379/11"

    /// The model's replay into `url` and `predictionsRedis`: the symbol.
    func replayWithAModel(into url: String, folder: String) throws -> String {
        let source = packageRoot().deletingLastPathComponent()
            .appendingPathComponent("shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: source), "real data at \(source)")
        let train = spawnAndWait([tape, "train", source, "--from", "2022-01-03T00:00:00Z",
                                  "--to", "2022-01-05T00:00:00Z", "--timeframe", "1m", "--rounds", "20",
                                  "--folds", "2", "--out", folder + "/train", "--quiet", "--no-report"])
        XCTAssertEqual(train, 0, "tape train")
        let replay = spawnAndWait([tape, "replay", source, "--from", "2022-01-05T00:00:00Z",
                                   "--to", "2022-01-06T00:00:00Z", "--model", folder + "/train/model",
                                   "--out", folder + "/replay", "--quiet", "--no-report",
                                   "--store", url, "--store", Self.predictionsRedis])
        XCTAssertTrue(replay == 0 || replay == 3, "tape replay --model exit \(replay)")
        return "BTC-PERP"
    }

    /// Every prediction PostgreSQL holds for the symbol at 1m, paged 97 at a time (under the per-IP rate limit
    /// of config/serve.yaml) through `/api/v1/predictions/{symbol}`, and a range in ISO-8601; 404 for an unknown
    /// symbol, 400 for a cursor the API did not give, an empty page for a timeframe without predictions.
    func testPredictionsArePagedAsPostgresHoldsThem() throws {
        try requireTape()
        let redis = try clearedRedis(Self.predictionsRedis)
        defer { _ = try? redis.command(["FLUSHDB"]) }
        let url = try freshDatabase("predictions")
        let folder = temporaryFolder("predictions")
        let symbol = try replayWithAModel(into: url, folder: folder)
        let (pid, base) = try startServe(["--store", url], label: "predictions")
        defer { stopServe(pid) }

        let database = try PostgresConnection(url: url)
        let expected = try database.query("""
            SELECT \(Self.nanos("time")), prediction FROM predictions WHERE symbol = '\(symbol)' AND timeframe = '1m'
            ORDER BY time
            """)
        XCTAssertGreaterThan(expected.count, 1000, "a day of 1-minute bars, a prediction each")
        var received: [PredictionItem] = []
        var cursor: String? = nil
        var pages = 0
        repeat {
            var address = base + "/api/v1/predictions/\(symbol)?timeframe=1m&limit=97"
            if let cursor { address += "&cursor=\(cursor)" }
            let page = try decodedPage(PredictionItem.self, address)
            received += page.items
            cursor = page.next_cursor
            pages += 1
        } while cursor != nil && pages < 1000
        XCTAssertEqual(received.map { String($0.end_ns) }, expected.map { $0[0]! })
        XCTAssertEqual(received.map(\.prediction), expected.map { $0[1].flatMap(Double.init) })
        XCTAssertEqual(pages, (expected.count + 96) / 97)
        XCTAssertTrue(received.allSatisfy { item in
            item.symbol == symbol && item.timeframe == "1m" && item.end == isoText(item.end_ns)
        })

        // A range: [from, to) by bar end, as SQL selects it.
        let from = try XCTUnwrap(Int64(expected[100][0]!)), to = try XCTUnwrap(Int64(expected[200][0]!))
        let range = try decodedPage(PredictionItem.self,
                                    base + "/api/v1/predictions/\(symbol)?timeframe=1m&from=\(isoText(from))&to=\(isoText(to))")
        XCTAssertEqual(range.items.map { String($0.end_ns) }, expected[100..<200].map { $0[0]! })
        XCTAssertNil(range.next_cursor)

        XCTAssertEqual(try request(base + "/api/v1/predictions/spot:NOPE?timeframe=1m").status, 404)
        XCTAssertEqual(try request(base + "/api/v1/predictions/\(symbol)?cursor=yesterday").status, 400)
        let empty = try decodedPage(PredictionItem.self, base + "/api/v1/predictions/\(symbol)?timeframe=5m")
        XCTAssertEqual(empty.items.count, 0, "a timeframe the model does not run on: an empty page, not a 404")
    }

    /// A `/ws` subscriber to `indicators` and `predictions` gets the latest stored values per timeframe as its
    /// snapshot: first from Redis's latest hashes, then — Redis emptied — from PostgreSQL; both equal to the
    /// newest rows of each timeframe by SQL.
    func testIndicatorAndPredictionSnapshotsAreTheLatestStoredValues() throws {
        try requireTape()
        let redis = try clearedRedis(Self.predictionsRedis)
        defer { _ = try? redis.command(["FLUSHDB"]) }
        let url = try freshDatabase("snapshots")
        let folder = temporaryFolder("snapshots")
        let symbol = try replayWithAModel(into: url, folder: folder)
        let (pid, base) = try startServe(["--store", url, "--redis", Self.predictionsRedis], label: "snapshots")
        defer { stopServe(pid) }
        try waitForUpdates(base)

        let database = try PostgresConnection(url: url)
        let indicatorRows = try database.query("""
            SELECT DISTINCT ON (timeframe) timeframe, \(Self.nanos("time")), sma, ema, rsi, bb_upper, session_vwap
            FROM indicators WHERE symbol = '\(symbol)' ORDER BY timeframe, time DESC
            """)
        let predictionRows = try database.query("""
            SELECT DISTINCT ON (timeframe) timeframe, \(Self.nanos("time")), prediction FROM predictions
            WHERE symbol = '\(symbol)' ORDER BY timeframe, time DESC
            """)
        XCTAssertGreaterThan(indicatorRows.count, 1, "the pipeline config's timeframes")
        XCTAssertEqual(predictionRows.count, 1, "the model runs on 1m")
        func expectedIndicators() -> [String: [Double?]] {
            Dictionary(uniqueKeysWithValues: indicatorRows.map { row in
                (row[0]!, [Double(row[1]!)] + row[2...6].map { $0.flatMap(Double.init) })
            })
        }
        let expectedPredictions = Dictionary(uniqueKeysWithValues: predictionRows.map { row in
            (row[0]!, [Double(row[1]!), row[2].flatMap(Double.init)])
        })

        for source in ["redis", "postgres"] {
            if source == "postgres" {
                _ = try redis.command(["FLUSHDB"])
                XCTAssertEqual(try redis.command(["DBSIZE"]).integer, 0)
            }
            let snapshots = try snapshotsOf(base, symbol: symbol, folder: folder, label: source)
            let indicators = try XCTUnwrap(snapshots["indicators"], "an indicators snapshot (\(source))")
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: indicators.map { item in
                (item.timeframe, [item.end_ns.map(Double.init), item.sma, item.ema, item.rsi, item.bb_upper,
                                  item.session_vwap])
            }), expectedIndicators(), "indicators from \(source)")
            let predictions = try XCTUnwrap(snapshots["predictions"], "a predictions snapshot (\(source))")
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: predictions.map { item in
                (item.timeframe, [item.end_ns.map(Double.init), item.prediction])
            }), expectedPredictions, "predictions from \(source)")
        }
    }

    /// The page `address` answers, decoded (a failure names the answer).
    func decodedPage<Item: Decodable>(_ type: Item.Type, _ address: String) throws -> Page<Item> {
        let reply = try request(address)
        do { return try JSONDecoder().decode(Page<Item>.self, from: reply.body) } catch {
            XCTFail("\(address): \(reply.status) \(reply.text)")
            throw error
        }
    }

    /// Redis database `url`, emptied; skips (fails under CI) without Redis.
    func clearedRedis(_ url: String) throws -> RedisConnection {
        let redis: RedisConnection
        do { redis = try RedisConnection(url: url) } catch {
            try skipOrFail(missing: "Redis of `make services` at \(url): \(error)")
        }
        _ = try redis.command(["FLUSHDB"])
        return redis
    }

    /// One WebSocket client (scripts/ws_updates_client.py) subscribed to `indicators` and `predictions` for a
    /// second: the snapshot messages' data by channel.
    func snapshotsOf(_ base: String, symbol: String, folder: String, label: String) throws -> [String: [SnapshotItem]] {
        let script = packageRoot().appendingPathComponent("scripts/ws_updates_client.py").path
        let out = folder + "/ws-\(label).jsonl"
        let code = spawnAndWait(["/usr/bin/env", "python3", script, String(base.dropFirst("http://".count)),
                                 "--symbol", symbol, "--channels", "indicators,predictions", "--seconds", "1.5",
                                 "--out", out])
        XCTAssertEqual(code, 0, "ws_updates_client.py")
        var snapshots: [String: [SnapshotItem]] = [:]
        for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") {
            let record = try JSONDecoder().decode(ClientLine.self, from: Data(line.utf8))
            guard record.message.type == "snapshot", let channel = record.message.channel else { continue }
            XCTAssertNil(snapshots[channel], "one snapshot per channel")
            snapshots[channel] = record.message.data ?? []
        }
        return snapshots
    }
}

struct PredictionItem: Decodable {
    let symbol: String
    let timeframe: String
    let end_ns: Int64
    let end: String
    let prediction: Double?
    let config_hash: String
}

/// A line of ws_updates_client.py's `--out` (only snapshots are decoded: their `data` is a list).
struct ClientLine: Decodable {
    struct Message: Decodable {
        let type: String
        let channel: String?
        let data: [SnapshotItem]?

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = try container.decode(String.self, forKey: .type)
            channel = try container.decodeIfPresent(String.self, forKey: .channel)
            data = type == "snapshot" ? try container.decodeIfPresent([SnapshotItem].self, forKey: .data) : nil
        }

        enum CodingKeys: String, CodingKey { case type, channel, data }
    }
    let message: Message
}

/// An element of an `indicators` or `predictions` snapshot.
struct SnapshotItem: Decodable {
    let timeframe: String
    let end_ns: Int64?
    let sma: Double?
    let ema: Double?
    let rsi: Double?
    let bb_upper: Double?
    let session_vwap: Double?
    let prediction: Double?
}
