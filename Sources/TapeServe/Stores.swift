import Dispatch
import Foundation
import NIOPosix
import TapeCore
import TapeGraph
import TapeRedis
import TapeStore
import TapeUpdates

/// The blocking store clients of `tape serve`, off the event loop: libpq and hiredis calls block, so every
/// one runs on a thread of `threads` (a `NIOThreadPool` of `threadCount` threads), never on a NIO event loop.
///
/// ```swift
/// let stores = Stores(settings: .init(postgresURL: url, redisURL: "redis://127.0.0.1:56379"))
/// let bar = try await stores.run { session in try session.latestBar(symbol: "spot:BTCUSDT", timeframe: tf) }
/// ```
///
/// Contract:
/// - A `Session` (one PostgreSQL connection, and one Redis connection with its `LatestBars` when a cache
///   is configured) is used by one request at a time: checked out of the idle stack for the body, returned
///   after. At most `threadCount` sessions are ever in use, so at most `threadCount` connections per server.
/// - PostgreSQL away: connecting fails or a query finds the connection lost → the request is a 503 problem
///   (`Problem.unavailable`), the broken connection is dropped, and the next request connects anew — the
///   server keeps running. A lost connection is retried once at once (a server restarted since the last
///   request), within the same request.
/// - Redis away: a cache read is a miss answered by PostgreSQL (`LatestBars`' contract; the other latest
///   reads do the same here); reconnects are tried at most once per `redisRetryNanoseconds` per session.
/// - Every SQL statement of a session has `statement_timeout` (`statementTimeoutMilliseconds`).
/// - At most `waitingMax` calls wait for a thread (beyond those running); one more is a 503 at once
///   ("busy") instead of a queue that grows without bound while the database is slow.
public final class Stores: @unchecked Sendable {
    public struct Settings: Sendable {
        public var postgresURL: String
        public var redisURL: String?
        public var redisPrefix = RedisLayout.defaultPrefix
        /// Threads (and sessions) for blocking calls.
        public var threadCount = 4
        public var statementTimeoutMilliseconds = 5_000
        /// libpq's `connect_timeout` (s) when the URL gives none: a host that does not answer costs a store
        /// thread this long, not the TCP timeout (minutes).
        public var connectTimeoutSeconds = 3
        public var redisRetryNanoseconds: Int64 = 1_000_000_000
        /// Expiry of keys the read-through fills (as the Redis sink's).
        public var redisTTLSeconds: Int64? = RedisSinkOptions().ttlSeconds
        /// Calls that may wait for a store thread, beyond those running.
        public var waitingMax = 256
        public init(postgresURL: String, redisURL: String? = nil) {
            self.postgresURL = postgresURL
            self.redisURL = redisURL
        }
    }

    public let settings: Settings
    public let layout: RedisLayout
    let threads: NIOThreadPool
    private let redisEndpoint: RedisEndpoint?
    private let lock = NSLock()
    // Guarded by `lock`.
    private var idle: [Session] = []
    private var created = 0
    private var inFlight = 0

    /// Called after every `run` with the session's cache hits and misses (e.g. `ServeMetrics.cache`).
    public let onCacheLookups: @Sendable (_ hits: Int, _ misses: Int) -> Void

    public init(settings: Settings, onCacheLookups: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws {
        self.onCacheLookups = onCacheLookups
        precondition((1...64).contains(settings.threadCount), "1 ... 64 store threads")
        self.settings = settings
        self.layout = RedisLayout(prefix: settings.redisPrefix)
        self.redisEndpoint = try settings.redisURL.map { try RedisEndpoint(url: $0) }
        threads = NIOThreadPool(numberOfThreads: settings.threadCount)
        threads.start()
    }

    /// The PostgreSQL URL with `connect_timeout` added unless it has one.
    var connectURL: String {
        let url = settings.postgresURL
        if url.contains("connect_timeout=") { return url }
        return url + (url.contains("?") ? "&" : "?") + "connect_timeout=\(settings.connectTimeoutSeconds)"
    }

    /// Whether a Redis cache is configured.
    public var hasCache: Bool { redisEndpoint != nil }
    /// `host:port` of the Redis server, if any (never a password).
    public var redisPeer: String? { redisEndpoint?.peer }
    /// `host:port/database` of PostgreSQL, for messages (no user, no password).
    public var postgresPeer: String { urlWithoutPassword(settings.postgresURL) }

    public func shutdown() async throws { try await threads.shutdownGracefully() }

    /// Runs `body` on a store thread with a session (see the contract).
    public func run<Result: Sendable>(_ body: @escaping @Sendable (Session) throws -> Result) async throws -> Result {
        try admit()
        defer { release() }
        return try await threads.runIfActive { [self] in
            let session = checkout()
            defer {
                if session.cacheHits + session.cacheMisses > 0 {
                    onCacheLookups(session.cacheHits, session.cacheMisses)
                }
                checkin(session)
            }
            return try session.withRetry(body)
        }
    }

    /// Runs `body` on a store thread without a session (another blocking client: the pipeline's metrics).
    public func runBlocking<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try admit()
        defer { release() }
        return try await threads.runIfActive(body)
    }

    /// Counts a call in, or refuses it when `waitingMax` already wait.
    private func admit() throws {
        lock.lock()
        defer { lock.unlock() }
        guard inFlight < settings.threadCount + settings.waitingMax else {
            throw Problem.unavailable("the stores are busy: \(inFlight) calls running or waiting")
        }
        inFlight += 1
    }

    private func release() {
        lock.lock()
        defer { lock.unlock() }
        inFlight -= 1
        assert(inFlight >= 0, "every call released once")
    }

    private func checkout() -> Session {
        lock.lock()
        defer { lock.unlock() }
        if let session = idle.popLast() { return session }
        created += 1
        assert(created <= settings.threadCount, "at most one session per store thread")
        return Session(stores: self)
    }

    private func checkin(_ session: Session) {
        lock.lock()
        defer { lock.unlock() }
        idle.append(session)
    }

    /// One request's view of the stores: a PostgreSQL connection (opened on first use, dropped when lost) and
    /// the Redis cache. Used by one thread at a time.
    public final class Session: @unchecked Sendable {
        unowned let stores: Stores
        private var postgres: PostgresConnection?
        private let redis: RedisConnection?
        private var redisNextAttempt: Int64 = 0
        /// The read-through of the latest bar over this session's Redis connection (nil without a cache).
        private var latestBars: LatestBars?
        /// Hits and misses of this session's last cache lookup.
        public private(set) var cacheHits = 0
        public private(set) var cacheMisses = 0

        init(stores: Stores) {
            self.stores = stores
            redis = stores.redisEndpoint.map { RedisConnection(endpoint: $0, connectTimeoutNanoseconds: 500_000_000,
                                                              commandTimeoutNanoseconds: 2_000_000_000,
                                                              clientName: "tape-serve") }
            if let redis {
                latestBars = LatestBars(connection: redis, layout: stores.layout,
                                        ttlSeconds: stores.settings.redisTTLSeconds,
                                        retryIntervalNanoseconds: stores.settings.redisRetryNanoseconds) {
                    [unowned self] symbol, timeframe in
                    try self.storedBarFields(symbol: symbol, timeframe: timeframe)
                }
            }
        }

        func withRetry<Result>(_ body: (Session) throws -> Result) throws -> Result {
            cacheHits = 0
            cacheMisses = 0
            do {
                return try body(self)
            } catch let error as PostgresError where error.connectionLost {
                // A server restarted since the last request: once more on a new connection.
                postgres = nil
                do { return try body(self) } catch let again as PostgresError where again.connectionLost {
                    postgres = nil
                    throw Problem.unavailable("PostgreSQL \(stores.postgresPeer) is unreachable: \(again.detail)")
                }
            } catch let error as PostgresError where error.sqlState == "42P01" {
                throw Problem.unavailable("PostgreSQL \(stores.postgresPeer) has no Tape schema yet "
                                          + "(tape store migrate, or any run with --store postgres://… creates it)")
            } catch let error as PostgresError where error.sqlState == "57014" {
                throw Problem.unavailable("PostgreSQL \(stores.postgresPeer): the query took longer than "
                                          + "\(stores.settings.statementTimeoutMilliseconds) ms")
            }
        }

        /// The store's queries on a connected PostgreSQL connection; 503 when it cannot connect.
        public func queries() throws -> StoreQueries {
            if let postgres, postgres.isConnected { return StoreQueries(connection: postgres) }
            postgres = nil
            let connection: PostgresConnection
            do { connection = try PostgresConnection(url: stores.connectURL) } catch {
                throw Problem.unavailable("PostgreSQL \(stores.postgresPeer) is unreachable: "
                                          + "\((error as? PostgresError)?.detail ?? "\(error)")")
            }
            try connection.execute("SET statement_timeout = \(stores.settings.statementTimeoutMilliseconds)")
            postgres = connection
            return StoreQueries(connection: connection)
        }

        /// PostgreSQL answers `SELECT 1`.
        public func pingPostgres() -> String? {
            do {
                _ = try queries().connection.query("SELECT 1")
                return nil
            } catch let problem as Problem {
                return problem.detail
            } catch {
                postgres = nil
                return "\(error)"
            }
        }

        /// Redis answers `PING` (nil: up); "not configured" is the caller's business.
        public func pingRedis() -> String? {
            guard let redis else { return "no Redis configured" }
            do {
                if !redis.isConnected { try redis.reconnect() }
                _ = try redis.command(["PING"])
                return nil
            } catch {
                return "\(error)"
            }
        }

        /// The latest bar of `symbol` and `timeframe` through `LatestBars` (Redis, then PostgreSQL, then filled),
        /// or straight from PostgreSQL without a cache. Fields as `RedisLayout.barFields`.
        public func latestBar(symbol: String, timeframe: Timeframe) throws -> [String: String]? {
            guard let latestBars else { return try storedBarFields(symbol: symbol, timeframe: timeframe) }
            let before = latestBars.counters
            let fields = try latestBars.latestBar(symbol: symbol, timeframe: timeframe)
            let after = latestBars.counters
            cacheHits += after.hits - before.hits
            cacheMisses += after.misses - before.misses
            return fields
        }

        private func storedBarFields(symbol: String, timeframe: Timeframe) throws -> [String: String]? {
            try queries().latestBar(symbol: symbol, timeframe: timeframe.description).map { bar in
                RedisLayout.barFields(start: bar.start, end: bar.end, open: bar.open, high: bar.high, low: bar.low,
                                      close: bar.close, volume: bar.volume, vwap: bar.vwap, trades: bar.trades,
                                      indicators: bar.indicators)
            }
        }

        /// Read-through of one latest hash (trade, quote, prediction): Redis `HGETALL key`, else `fallback`
        /// (PostgreSQL), whose fields are then written to `key` with the sink's expiry. Redis away: a miss
        /// served by the fallback, not filled.
        public func readThrough(key: String, timeframe: Timeframe?,
                                fallback: () throws -> [(String, String)]?) throws -> [String: String]? {
            if let redis, connectedRedis() {
                do {
                    if let fields = try redis.command(["HGETALL", key]).fieldValues, !fields.isEmpty {
                        cacheHits += 1
                        return fields
                    }
                } catch let error as RedisError where error.kind == .connection {
                    redisNextAttempt = Stores.monotonicNanoseconds() + stores.settings.redisRetryNanoseconds
                }
            }
            if redis != nil { cacheMisses += 1 }
            guard let found = try fallback(), !found.isEmpty else { return nil }
            if let redis, redis.isConnected {
                var command = ["HSET", key]
                for (field, value) in found {
                    command.append(field)
                    command.append(value)
                }
                do {
                    _ = try redis.command(command)
                    if let seconds = RedisLayout.expirySeconds(ttlSeconds: stores.settings.redisTTLSeconds,
                                                               timeframe: timeframe) {
                        _ = try redis.command(["EXPIRE", key, String(seconds)])
                    }
                } catch let error as RedisError where error.kind == .connection {
                    redisNextAttempt = Stores.monotonicNanoseconds() + stores.settings.redisRetryNanoseconds
                }
            }
            return Dictionary(found, uniquingKeysWith: { _, last in last })
        }

        /// Deletes the latest-state keys of `symbol` (trade, quote, every timeframe's bar and prediction);
        /// the number deleted. 503 when Redis is away or not configured.
        public func invalidate(symbol: String) throws -> Int {
            guard let redis else { throw Problem.unavailable("no Redis cache is configured (--redis)") }
            guard connectedRedis() else { throw Problem.unavailable("Redis \(redis.peer) is unreachable") }
            let layout = stores.layout
            var keys = [layout.latestTrade(symbol), layout.latestQuote(symbol)]
            do {
                for pattern in ["\(layout.prefix)latest:bar:", "\(layout.prefix)latest:prediction:"] {
                    keys += try Self.scan(redis, keysStartingWith: pattern + symbol + ":")
                }
                return Int(try redis.command(["DEL"] + keys).integer ?? 0)
            } catch let error as RedisError where error.kind == .connection {
                throw Problem.unavailable("Redis \(redis.peer) is unreachable: \(error.detail)")
            }
        }

        /// The latest trade (read-through: Redis, else PostgreSQL), fields as `RedisLayout.tradeFields`.
        public func latestTrade(symbol: String) throws -> [String: String]? {
            try readThrough(key: stores.layout.latestTrade(symbol), timeframe: nil) {
                try queries().latestTick(symbol: symbol, kind: 0).map { row in
                    [("event_time_ns", row[0] ?? ""), ("receive_time_ns", row[1] ?? ""), ("price", APIRoutes.number(row[3])),
                     ("size", APIRoutes.number(row[4])), ("side", row[5] ?? "0"), ("sequence", row[6] ?? "0")]
                }
            }
        }

        /// The latest quote (read-through), fields as `RedisLayout.quoteFields`.
        public func latestQuote(symbol: String) throws -> [String: String]? {
            try readThrough(key: stores.layout.latestQuote(symbol), timeframe: nil) {
                try queries().latestTick(symbol: symbol, kind: 1).map { row in
                    [("event_time_ns", row[0] ?? ""), ("receive_time_ns", row[1] ?? ""), ("bid", APIRoutes.number(row[7])),
                     ("bid_size", APIRoutes.number(row[8])), ("ask", APIRoutes.number(row[9])),
                     ("ask_size", APIRoutes.number(row[10]))]
                }
            }
        }

        /// The snapshot a WebSocket client gets when it subscribes (`UpdateHub`), as the JSON array text of
        /// `data`, each element shaped as the updates of that channel (docs/storage-redis.md, "Updates"):
        /// - `trades`, `quotes`: the latest (read-through: Redis, else PostgreSQL);
        /// - `bars:<tf>`: the last `barCount` bars with indicators (Redis's list; PostgreSQL without one);
        /// - `anomalies`: the symbol's last `anomalyCount` (PostgreSQL);
        /// - `indicators`, `predictions`: the latest per timeframe (Redis's latest bar and prediction hashes,
        ///   PostgreSQL when Redis holds none), by timeframe length; their history is a REST call away;
        /// - `orders`, `fills`: the symbol's last `tradingCount` (Redis's list; PostgreSQL when it holds none);
        /// - `positions`, `equity`: the latest (read-through: Redis, else PostgreSQL).
        public func updateSnapshot(_ key: UpdateKey, barCount: Int = 200, anomalyCount: Int = 100,
                                   tradingCount: Int = 200) throws -> String {
            let layout = stores.layout
            let symbol = key.symbol
            func object(_ fields: [String: String]?, order: [String]) -> [JSONValue] {
                guard let fields else { return [] }
                return [.object(order.compactMap { name in fields[name].map { (name, Self.jsonValue($0)) } })]
            }
            switch key.channel {
            case "trades":
                return JSONValue.array(object(try latestTrade(symbol: symbol),
                                              order: ["event_time_ns", "receive_time_ns", "price", "size", "side",
                                                      "sequence"])).renderCompact()
            case "quotes":
                return JSONValue.array(object(try latestQuote(symbol: symbol),
                                              order: ["event_time_ns", "receive_time_ns", "bid", "bid_size", "ask",
                                                      "ask_size"])).renderCompact()
            case "orders", "fills":
                return try tradingListSnapshot(channel: key.channel, symbol: symbol, count: tradingCount)
            case "positions":
                return JSONValue.array(object(try latestPosition(symbol: symbol),
                                              order: Self.positionFieldOrder)).renderCompact()
            case "equity":
                return JSONValue.array(object(try latestEquity(symbol: symbol),
                                              order: Self.equityFieldOrder)).renderCompact()
            case "indicators":
                return JSONValue.array(try indicatorsSnapshot(symbol: symbol)).renderCompact()
            case "predictions":
                return JSONValue.array(try predictionsSnapshot(symbol: symbol)).renderCompact()
            case "anomalies":
                // Rows: symbol, time_ns, rule, value, threshold, severity, config_hash; the newest N, oldest first.
                let rows = try queries().connection.query("""
                    SELECT time_ns, rule, value, threshold, severity FROM anomalies
                    WHERE symbol = \(StoreSchema.quote(symbol)) ORDER BY time DESC, time_ns DESC, rule LIMIT \(anomalyCount)
                    """)
                return JSONValue.array(rows.reversed().map { row in
                    .object([("time_ns", Self.jsonValue(row[0] ?? "")), ("rule", .string(row[1] ?? "")),
                             ("value", Self.jsonValue(row[2] ?? "")), ("threshold", Self.jsonValue(row[3] ?? "")),
                             ("severity", .string(row[4] ?? ""))])
                }).renderCompact()
            default:
                guard key.channel.hasPrefix("bars:"), let timeframe = Timeframe(String(key.channel.dropFirst(5))) else {
                    return "[]"
                }
                if let redis, connectedRedis() {
                    do {
                        let members = try redis.command(["ZRANGE", layout.bars(symbol, timeframe), String(-barCount), "-1"])
                        let texts = (members.array ?? []).compactMap(\.string)
                        if !texts.isEmpty { return "[" + texts.joined(separator: ",") + "]" }
                    } catch let error as RedisError where error.kind == .connection {
                        redisNextAttempt = Stores.monotonicNanoseconds() + stores.settings.redisRetryNanoseconds
                    }
                }
                return "[]"
            }
        }

        // MARK: paper trading

        /// The fields of a position as the Redis sink writes them (`RedisLayout.positionValues`).
        static let positionFieldOrder = ["time_ns", "order_id", "fill_number", "quantity", "average_price",
                                         "realized_pnl", "unrealized_pnl", "fees", "mark_price"]
        /// The fields of a symbol's equity (`RedisLayout.equityValues`).
        static let equityFieldOrder = ["time_ns", "cash", "equity", "gross_exposure"]

        /// The latest position of `symbol` (read-through: Redis's `latest:position` hash, else PostgreSQL's
        /// latest row, then cached), fields as `RedisLayout.positionValues`; nil when it never traded.
        public func latestPosition(symbol: String) throws -> [String: String]? {
            try readThrough(key: stores.layout.latestPosition(symbol), timeframe: nil) {
                try queries().latestPositions(symbol: symbol).first.map { row in
                    // Rows: StoreQueries.positionColumns (symbol first).
                    [("time_ns", row[1] ?? ""), ("order_id", row[2] ?? "0"), ("fill_number", row[3] ?? "0"),
                     ("quantity", APIRoutes.number(row[4])), ("average_price", APIRoutes.number(row[5])),
                     ("realized_pnl", APIRoutes.number(row[6])), ("unrealized_pnl", APIRoutes.number(row[7])),
                     ("fees", APIRoutes.number(row[8])), ("mark_price", APIRoutes.number(row[9]))]
                }
            }
        }

        /// The latest equity row of `symbol` (read-through as `latestPosition`), fields as
        /// `RedisLayout.equityValues`.
        public func latestEquity(symbol: String) throws -> [String: String]? {
            try readThrough(key: stores.layout.latestEquity(symbol), timeframe: nil) {
                try queries().latestEquity(symbol: symbol).first.map { row in
                    // Rows: StoreQueries.equityColumns.
                    [("time_ns", row[1] ?? ""), ("cash", APIRoutes.number(row[2])), ("equity", APIRoutes.number(row[3])),
                     ("gross_exposure", APIRoutes.number(row[4]))]
                }
            }
        }

        /// The `orders` or `fills` snapshot: the symbol's newest `count` (Redis's list, PostgreSQL when Redis
        /// holds none), oldest first — by time, then order number and the row's number in its order (Redis
        /// orders members of one score by their text) —, each shaped as the channel's updates.
        func tradingListSnapshot(channel: String, symbol: String, count: Int) throws -> String {
            let isFills = channel == "fills"
            let number = isFills ? "fill_number" : "sequence"
            if let redis, connectedRedis() {
                do {
                    let key = isFills ? stores.layout.fills(symbol) : stores.layout.orders(symbol)
                    let members = try redis.command(["ZRANGE", key, String(-count), "-1"])
                    let texts = (members.array ?? []).compactMap(\.string)
                    if !texts.isEmpty {
                        cacheHits += 1
                        return "[" + Self.sortedTradingMembers(texts, number: number).joined(separator: ",") + "]"
                    }
                } catch let error as RedisError where error.kind == .connection {
                    redisNextAttempt = Stores.monotonicNanoseconds() + stores.settings.redisRetryNanoseconds
                }
                cacheMisses += 1
            }
            let queries = try queries()
            let rows = isFills ? try queries.recentFills(symbol: symbol, count: count)
                : try queries.recentOrders(symbol: symbol, count: count)
            return JSONValue.array(rows.map { isFills ? APIRoutes.fillData($0) : APIRoutes.orderData($0) }).renderCompact()
        }

        /// Members of an order or fill list in (time_ns, order_id, `number`) order.
        static func sortedTradingMembers(_ texts: [String], number: String) -> [String] {
            func key(_ text: String) -> (Int64, Int64, Int64) {
                guard case .object(let members)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
                    return (0, 0, 0)
                }
                func integer(_ name: String) -> Int64 {
                    guard let value = members.first(where: { $0.0 == name })?.1 else { return 0 }
                    switch value {
                    case .int(let integer): return integer
                    case .number(let number): return Int64(exactly: number) ?? 0
                    default: return 0
                    }
                }
                return (integer("time_ns"), integer("order_id"), integer(number))
            }
            return texts.map { (key($0), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
        }

        /// Keys starting with `prefix` (`SCAN … MATCH`, the prefix's glob characters escaped), at most
        /// `Stores.scannedKeysMax`.
        static func scan(_ redis: RedisConnection, keysStartingWith prefix: String) throws -> [String] {
            var keys: [String] = []
            var cursor = "0"
            repeat {
                let match = Stores.globEscaped(prefix) + "*"
                let reply = try redis.command(["SCAN", cursor, "MATCH", match, "COUNT", "1000"])
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string,
                      let found = parts[1].array else {
                    throw Problem.internalError("SCAN: unexpected reply")
                }
                keys.append(contentsOf: found.compactMap(\.string))
                guard keys.count <= Stores.scannedKeysMax else {
                    throw Problem.internalError("SCAN \(prefix)*: more than \(Stores.scannedKeysMax) keys")
                }
                cursor = next
            } while cursor != "0"
            return keys
        }

        /// The latest-state hashes of one kind for every timeframe of `symbol` (`latest:bar:<symbol>:<tf>` or
        /// `latest:prediction:<symbol>:<tf>`): (timeframe, fields), by timeframe length. Empty when Redis is
        /// away, not configured, or holds none (then the caller asks PostgreSQL).
        private func latestHashesPerTimeframe(kind: String, symbol: String) -> [(Timeframe, [String: String])] {
            guard let redis, connectedRedis() else { return [] }
            let prefix = "\(stores.layout.prefix)latest:\(kind):\(symbol):"
            do {
                var found: [(Timeframe, [String: String])] = []
                for key in try Self.scan(redis, keysStartingWith: prefix) {
                    guard let timeframe = Timeframe(String(key.dropFirst(prefix.count))),
                          let fields = try redis.command(["HGETALL", key]).fieldValues, !fields.isEmpty else {
                        continue
                    }
                    found.append((timeframe, fields))
                }
                cacheHits += found.isEmpty ? 0 : 1
                cacheMisses += found.isEmpty ? 1 : 0
                return found.sorted { $0.0.seconds < $1.0.seconds }
            } catch let error as RedisError where error.kind == .connection {
                redisNextAttempt = Stores.monotonicNanoseconds() + stores.settings.redisRetryNanoseconds
            } catch {}
            return []
        }

        /// The `indicators` snapshot: per timeframe, the latest bar's indicators (Redis's latest bar hashes,
        /// else PostgreSQL), shaped as the channel's updates (`timeframe`, `end_ns`, the indicator fields).
        func indicatorsSnapshot(symbol: String) throws -> [JSONValue] {
            let cached = latestHashesPerTimeframe(kind: "bar", symbol: symbol)
            if !cached.isEmpty {
                return cached.map { timeframe, fields in
                    .object([("timeframe", .string(timeframe.description)),
                             ("end_ns", Self.jsonValue(fields["end_ns"] ?? ""))]
                            + RedisLayout.indicatorFields.map { ($0, Self.jsonValue(fields[$0] ?? "")) })
                }
            }
            return try queries().latestIndicators(symbol: symbol).compactMap { row -> (Timeframe, JSONValue)? in
                guard let timeframe = Timeframe(row[0] ?? "") else { return nil }
                return (timeframe, .object([("timeframe", .string(timeframe.description)),
                                            ("end_ns", Self.jsonValue(row[1] ?? ""))]
                                           + RedisLayout.indicatorFields.enumerated().map { offset, name in
                                               (name, Self.jsonValue(APIRoutes.number(row[2 + offset])))
                                           }))
            }.sorted { $0.0.seconds < $1.0.seconds }.map(\.1)
        }

        /// The `predictions` snapshot: the latest prediction per timeframe (Redis's latest prediction hashes,
        /// else PostgreSQL), shaped as the channel's updates (`timeframe`, `end_ns`, `prediction`).
        func predictionsSnapshot(symbol: String) throws -> [JSONValue] {
            let cached = latestHashesPerTimeframe(kind: "prediction", symbol: symbol)
            if !cached.isEmpty {
                return cached.map { timeframe, fields in
                    .object([("timeframe", .string(timeframe.description)),
                             ("end_ns", Self.jsonValue(fields["end_ns"] ?? "")),
                             ("prediction", Self.jsonValue(fields["prediction"] ?? ""))])
                }
            }
            return try queries().latestPredictions(symbol: symbol).compactMap { row -> (Timeframe, JSONValue)? in
                guard let timeframe = Timeframe(row[0] ?? "") else { return nil }
                return (timeframe, .object([("timeframe", .string(timeframe.description)),
                                            ("end_ns", Self.jsonValue(row[1] ?? "")),
                                            ("prediction", Self.jsonValue(APIRoutes.number(row[2])))]))
            }.sorted { $0.0.seconds < $1.0.seconds }.map(\.1)
        }

        /// A hash field's text as JSON: a number when it reads as one, null when empty (NaN), else a string.
        static func jsonValue(_ text: String) -> JSONValue {
            if text.isEmpty { return .null }
            if let integer = Int64(text) { return .int(integer) }
            if let number = Double(text), number.isFinite { return .number(number) }
            return .string(text)
        }

        /// A connected Redis connection, reconnecting at most once per retry interval.
        private func connectedRedis() -> Bool {
            guard let redis else { return false }
            if redis.isConnected { return true }
            let now = Stores.monotonicNanoseconds()
            guard now >= redisNextAttempt else { return false }
            redisNextAttempt = now + stores.settings.redisRetryNanoseconds
            do { try redis.reconnect() } catch { return false }
            return true
        }
    }

    /// Keys one `SCAN` walk may return (a symbol's latest hashes: a few per timeframe).
    public static let scannedKeysMax = 10_000

    /// Monotonic time in ns (rate limits, durations, retry intervals).
    public static func monotonicNanoseconds() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds) }

    /// `text` with Redis glob characters (`* ? [ ] \`) escaped, for `SCAN MATCH`.
    static func globEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
