import Foundation
import TapeCore
import TapeRedis
import TapeStore
import TapeTestSupport
import XCTest

/// Paper trading through `tape serve`: the `orders`, `fills`, `positions` and `equity` WebSocket channels and the
/// `/api/v1/orders`, `/api/v1/fills`, `/api/v1/positions` routes, against PostgreSQL (independent SQL) and
/// the run folder of the same backtest run whole (the reference), with the independent WebSocket client
/// (scripts/ws_updates_client.py).
extension ServeTests {
    /// A Redis database of its own (the updates channel is global: this test's symbol is its own).
    static let tradingRedis = "redis://127.0.0.1:56379/10"

    /// One message a client received: `type` (`snapshot`, `update`, …), `channel`, and `data` (an array for a
    /// snapshot, an object for an update), decoded exactly (JSONDecoder).
    struct TradingClientMessage: Decodable {
        let type: String
        let channel: String?
        let data: JSONValue?
    }

    struct TradingClientLine: Decodable {
        let message: TradingClientMessage
    }

    func clientMessages(_ path: String) throws -> [TradingClientMessage] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(TradingClientLine.self, from: Data($0.utf8)).message
        }
    }

    /// An object's members as `name=text` (integers as digits, numbers in their shortest round trip, null
    /// empty), sorted: one text per row, whoever wrote it.
    static func canonical(_ value: JSONValue) -> String {
        guard case .object(let members) = value else { return "not an object: \(value.renderCompact())" }
        return members.map { name, member -> String in
            switch member {
            case .int(let integer): return "\(name)=\(integer)"
            case .number(let number): return "\(name)=\(Numbers.format(number))"
            case .string(let text): return "\(name)=\(text)"
            case .null: return "\(name)="
            case .bool(let flag): return "\(name)=\(flag)"
            case .array, .object: return "\(name)=\(member.renderCompact())"
            }
        }.sorted().joined(separator: " ")
    }

    /// A stored row as the same text: `names` are the columns of `row` (the channel's field names), `numbers`
    /// the ones holding doubles.
    static func canonical(_ row: [String?], names: [String], numbers: Set<String>) -> String {
        zip(names, row).map { name, value in
            "\(name)=\(numbers.contains(name) ? TradingTables.canonicalNumber(value) : (value ?? ""))"
        }.sorted().joined(separator: " ")
    }

    static let fillFields = ["time_ns", "order_id", "fill_number", "side", "price", "quantity", "fee", "rule",
                             "arrival_ns", "tag"]
    static let fillNumbers: Set<String> = ["price", "quantity", "fee"]
    static let orderFields = ["time_ns", "order_id", "sequence", "side", "type", "tif", "quantity", "limit_price",
                              "stop_price", "status", "filled_quantity", "tag", "reason"]
    static let orderNumbers: Set<String> = ["quantity", "limit_price", "stop_price", "filled_quantity"]
    static let positionFields = ["time_ns", "order_id", "fill_number", "quantity", "average_price", "realized_pnl",
                                 "unrealized_pnl", "fees", "mark_price"]
    static let positionNumbers: Set<String> = ["quantity", "average_price", "realized_pnl", "unrealized_pnl", "fees",
                                               "mark_price"]

    /// A backtest on a capture, split in two processes (`--stop-at`/`--snapshot-out`, then `--snapshot-in`), both
    /// writing to PostgreSQL and Redis while `tape serve` relays: a client subscribed before the first part gets
    /// every fill and order change PostgreSQL ends with as an update, once; one subscribed between the parts
    /// gets the first part's as its snapshot (from Redis) and the second's as updates; one subscribed after
    /// Redis lost the lists gets its snapshot from PostgreSQL. PostgreSQL equals the run folder of the whole
    /// backtest run in one process. The REST routes page the same rows as SQL.
    func testFillsOrdersAndPositionsReachTheWebSocketAndTheRoutes() throws {
        try requireTape()
        let redis: RedisConnection
        do { redis = try RedisConnection(url: Self.tradingRedis) } catch {
            try skipOrFail(missing: "Redis of `make services` at \(Self.tradingRedis): \(error)")
        }
        _ = try redis.command(["FLUSHDB"])
        defer { _ = try? redis.command(["FLUSHDB"]) }
        let capture = try capture("usdm-btcusdt_20240808.gz")
        let symbol = "usdm:BTCUSDT"
        let folder = temporaryFolder("trading-ws")
        let trading = try TradingTables.writeConfig(in: folder)

        // The reference: the whole backtest in one process; the split between two of its fills.
        let whole = folder + "/whole"
        XCTAssertEqual(spawnAndWait([tape, "replay", capture, "--trading", trading, "--out", whole, "--quiet",
                                     "--no-report"]), 0)
        let fills = try TradingTables.csv(whole + "/fills.csv").rows
        XCTAssertGreaterThan(fills.count, 10, "the backtest traded")
        let split = try XCTUnwrap(Int64(fills[fills.count / 2][1]))

        let url = try freshDatabase("trading_ws")
        XCTAssertEqual(spawnAndWait([tape, "store", "migrate", "--store", url]), 0)
        let (pid, base) = try startServe(["--store", url, "--redis", Self.tradingRedis, "--ws-queue", "65536"],
                                         label: "trading-ws")
        try waitForUpdates(base)
        let address = String(base.dropFirst("http://".count))
        let script = packageRoot().appendingPathComponent("scripts/ws_updates_client.py").path
        func client(_ name: String, seconds: Int) throws -> pid_t {
            let pid = try XCTUnwrap(spawnInBackground(["/usr/bin/env", "python3", script, address, "--symbol", symbol,
                                                       "--channels", "fills,orders,positions,equity", "--seconds", String(seconds),
                                                       "--out", "\(folder)/\(name).jsonl"],
                                                      stdout: "\(folder)/\(name).out", stderr: "\(folder)/\(name).err"))
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, !((try? String(contentsOfFile: "\(folder)/\(name).out", encoding: .utf8)) ?? "")
                .contains("connected") {
                usleep(50_000)
            }
            usleep(500_000)   // subscribed and its snapshots taken
            return pid
        }
        func part(_ arguments: [String], _ name: String) {
            let code = spawnAndWait([tape, "replay", capture, "--trading", trading, "--out", folder + "/" + name,
                                     "--quiet", "--no-report", "--store", url, "--store", Self.tradingRedis] + arguments)
            XCTAssertEqual(code, 0, "tape replay (\(name))")
        }
        let early = try client("early", seconds: 25)
        part(["--stop-at", String(split), "--snapshot-out", folder + "/part1.snapshot"], "part1")
        let middle = try client("middle", seconds: 15)
        part(["--snapshot-in", folder + "/part1.snapshot"], "part2")
        XCTAssertEqual(waitForExit(early, seconds: 60), 0, (try? String(contentsOfFile: folder + "/early.err", encoding: .utf8)) ?? "")
        XCTAssertEqual(waitForExit(middle, seconds: 60), 0, (try? String(contentsOfFile: folder + "/middle.err", encoding: .utf8)) ?? "")

        // PostgreSQL holds the whole run's rows, split or not.
        XCTAssertEqual(try TradingTables.assertStoredEqualsRunFolder(url, runFolder: whole), fills.count)
        let database = try PostgresConnection(url: url)
        let storedFills = try database.query("""
            SELECT \(Self.fillFields.joined(separator: ", ")) FROM fills WHERE symbol = '\(symbol)'
            ORDER BY time_ns, order_id, fill_number
            """).map { Self.canonical($0, names: Self.fillFields, numbers: Self.fillNumbers) }
        let storedOrders = try database.query("""
            SELECT \(Self.orderFields.joined(separator: ", ")) FROM orders WHERE symbol = '\(symbol)'
            ORDER BY time_ns, order_id, sequence
            """).map { Self.canonical($0, names: Self.orderFields, numbers: Self.orderNumbers) }
        // The latest position by the stores' rule (the greatest time; at one instant a mark's row, then the
        // greatest order and fill number), by SQL of this test's own.
        let latestPosition = try XCTUnwrap(try database.query("""
            SELECT \(Self.positionFields.joined(separator: ", ")) FROM positions WHERE symbol = '\(symbol)'
            ORDER BY time_ns DESC, (order_id = 0) DESC, order_id DESC, fill_number DESC LIMIT 1
            """).first)
        let expectedPosition = Self.canonical(latestPosition, names: Self.positionFields, numbers: Self.positionNumbers)
        let equityFields = ["time_ns", "cash", "equity", "gross_exposure"]
        let latestEquity = try XCTUnwrap(try database.query("""
            SELECT time_ns, cash, equity, gross_exposure FROM equity WHERE symbol = '\(symbol)' ORDER BY time_ns DESC LIMIT 1
            """).first)
        let expectedEquity = Self.canonical(latestEquity, names: equityFields, numbers: ["cash", "equity", "gross_exposure"])

        func updates(_ messages: [TradingClientMessage], _ channel: String) -> [String] {
            messages.filter { $0.type == "update" && $0.channel == channel }.compactMap { $0.data.map(Self.canonical) }
        }
        func snapshot(_ messages: [TradingClientMessage], _ channel: String) throws -> [String] {
            let found = messages.filter { $0.type == "snapshot" && $0.channel == channel }
            XCTAssertEqual(found.count, 1, "one \(channel) snapshot")
            guard case .array(let items)? = found.first?.data else { return [] }
            return items.map(Self.canonical)
        }
        // Subscribed before anything: empty snapshots, then every fill and order change once, as an update.
        let early1 = try clientMessages(folder + "/early.jsonl")
        XCTAssertEqual(try snapshot(early1, "fills"), [])
        XCTAssertEqual(try snapshot(early1, "orders"), [])
        XCTAssertEqual(updates(early1, "fills").sorted(), storedFills.sorted(), "every fill once, as an update")
        XCTAssertEqual(updates(early1, "orders").sorted(), storedOrders.sorted(), "every order change once, as an update")
        XCTAssertEqual(updates(early1, "positions").last, expectedPosition, "the last position update is the latest")
        XCTAssertEqual(updates(early1, "equity").last, expectedEquity, "the last equity update is the latest")
        // Subscribed between the parts: the first part's rows as the snapshot (Redis), the second's as updates.
        let middle1 = try clientMessages(folder + "/middle.jsonl")
        let middleSnapshot = try snapshot(middle1, "fills"), middleUpdates = updates(middle1, "fills")
        XCTAssertGreaterThan(middleSnapshot.count, 0)
        XCTAssertGreaterThan(middleUpdates.count, 0)
        XCTAssertEqual((middleSnapshot + middleUpdates).sorted(), storedFills.sorted(), "snapshot + updates = the fills")
        XCTAssertEqual(middleSnapshot, Array(storedFills.prefix(middleSnapshot.count)), "the snapshot: the first fills, in order")
        let middleOrders = try snapshot(middle1, "orders") + updates(middle1, "orders")
        XCTAssertEqual(middleOrders.sorted(), storedOrders.sorted(), "snapshot + updates = the order changes")

        // Redis's latest position is the same row; without Redis's lists and hash a client's snapshots come from
        // PostgreSQL: the newest 200 fills and order changes, in order, and the latest position.
        let hash = try XCTUnwrap(try redis.command(["HGETALL", "tape:latest:position:\(symbol)"]).fieldValues)
        XCTAssertEqual(Self.canonical(Self.positionFields.map { hash[$0] }, names: Self.positionFields,
                                      numbers: Self.positionNumbers), expectedPosition)
        let equityHash = try XCTUnwrap(try redis.command(["HGETALL", "tape:latest:equity:\(symbol)"]).fieldValues)
        XCTAssertEqual(Self.canonical(equityFields.map { equityHash[$0] }, names: equityFields,
                                      numbers: ["cash", "equity", "gross_exposure"]), expectedEquity)
        _ = try redis.command(["DEL", "tape:fills:\(symbol)", "tape:orders:\(symbol)", "tape:latest:position:\(symbol)",
                               "tape:latest:equity:\(symbol)"])
        let late = try client("late", seconds: 3)
        XCTAssertEqual(waitForExit(late, seconds: 30), 0)
        let late1 = try clientMessages(folder + "/late.jsonl")
        XCTAssertEqual(try snapshot(late1, "fills"), Array(storedFills.suffix(200)))
        XCTAssertEqual(try snapshot(late1, "orders"), Array(storedOrders.suffix(200)))
        XCTAssertEqual(try snapshot(late1, "positions"), [expectedPosition])
        XCTAssertEqual(try snapshot(late1, "equity"), [expectedEquity])

        // REST: fills of the symbol paged by 7, orders of every symbol paged by 50, the latest positions.
        func pages(_ path: String) throws -> [JSONValue] {
            var items: [JSONValue] = []
            var cursor: String? = nil
            repeat {
                let reply = try request(base + path + (cursor.map { "&cursor=\($0)" } ?? ""))
                XCTAssertEqual(reply.status, 200, reply.text)
                guard case .object(let page) = try JSONDecoder().decode(JSONValue.self, from: reply.body),
                      case .array(let found)? = page.first(where: { $0.0 == "items" })?.1 else { break }
                items += found
                if case .string(let next)? = page.first(where: { $0.0 == "next_cursor" })?.1 { cursor = next } else { cursor = nil }
            } while cursor != nil && items.count < 100_000
            return items
        }
        func without(_ names: Set<String>, _ value: JSONValue) -> JSONValue {
            guard case .object(let members) = value else { return value }
            return .object(members.filter { !names.contains($0.0) })
        }
        let routeFills = try pages("/api/v1/fills?symbol=\(symbol)&limit=7")
        XCTAssertEqual(routeFills.map { Self.canonical(without(["symbol", "time", "config_hash", "run_id"], $0)) }, storedFills)
        let allOrders = try database.query("""
            SELECT \(Self.orderFields.joined(separator: ", ")) FROM orders ORDER BY time_ns, symbol, order_id, sequence
            """).map { Self.canonical($0, names: Self.orderFields, numbers: Self.orderNumbers) }
        let routeOrders = try pages("/api/v1/orders?limit=50")
        XCTAssertEqual(routeOrders.map { Self.canonical(without(["symbol", "time", "config_hash", "run_id"], $0)) }, allOrders)
        let from = try XCTUnwrap(Int64(fills[3][1])), to = try XCTUnwrap(Int64(fills[9][1]))
        let inRange = try database.query("""
            SELECT count(*) FROM fills WHERE time_ns >= \(from) AND time_ns < \(to)
            """).first?[0]
        XCTAssertEqual(String(try pages("/api/v1/fills?from=\(isoText(from))&to=\(to)&limit=2").count), inRange)
        let positions = try request(base + "/api/v1/positions")
        guard case .object(let body) = try JSONDecoder().decode(JSONValue.self, from: positions.body),
              case .array(let items)? = body.first(where: { $0.0 == "items" })?.1 else {
            return XCTFail(positions.text)
        }
        XCTAssertEqual(items.count, 1)
        XCTAssertEqual(items.first.map { Self.canonical(without(["symbol", "time", "config_hash", "run_id", "equity"], $0)) },
                       expectedPosition)
        if case .object(let position)? = items.first, let equity = position.first(where: { $0.0 == "equity" })?.1 {
            XCTAssertEqual(Self.canonical(without(["time"], equity)), expectedEquity)
        } else {
            XCTFail("no equity with the position: \(positions.text)")
        }
        try assertProblem(try request(base + "/api/v1/positions?symbol=usdm:NOPE"), 404)
        try assertProblem(try request(base + "/api/v1/fills?cursor=bm9wZQ"), 400)
        stopServe(pid)
    }
}
