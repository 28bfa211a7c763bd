import Foundation
import TapeCore
import TapeGraph

/// Read-through for the latest closed bar (with its indicators) of a symbol and timeframe: Redis first,
/// on a miss the store of history (a closure: the PostgreSQL query lives with the store, so this module
/// does not link libpq), then Redis is filled so the next lookup is a hit.
///
///     let bars = LatestBars(connection: try RedisConnection(url: url)) { symbol, timeframe in
///         try history.latestBar(symbol: symbol, timeframe: timeframe)   // fields as in `RedisLayout.barFields`
///     }
///     let bar = try bars.latestBar(symbol: "spot:BTCUSDT", timeframe: Timeframe("1m")!)
///
/// Contract:
/// - Every lookup is one hit or one miss; the fallback is called once per miss and never on a hit.
/// - The fallback's fields (names as in `RedisLayout.barFields`) are written to
///   `<prefix>latest:bar:<symbol>:<timeframe>` with the sink's expiry, then returned. nil or no fields:
///   nothing is written, the lookup returns nil.
/// - Redis unreachable: the lookup is a miss served by the fallback (not filled), counted in
///   `redisUnavailable`; a reconnect is tried at most once per `retryIntervalNanoseconds`. An error reply
///   of the server (e.g. `WRONGTYPE`) and an error of the fallback are thrown.
/// - Thread-safe: the connection is used under a lock, the fallback is called outside it.
public final class LatestBars: @unchecked Sendable {
    public typealias Fallback = @Sendable (_ symbol: String, _ timeframe: Timeframe) throws -> [String: String]?

    public struct Counters: Sendable, Equatable {
        /// Lookups Redis answered.
        public var hits = 0
        /// Lookups Redis did not answer (no key, or Redis unreachable): the fallback was called.
        public var misses = 0
        /// Misses the fallback answered and that were written to Redis.
        public var filled = 0
        /// Misses the fallback had nothing for.
        public var notFound = 0
        /// Misses whose read or fill found Redis unreachable (served by the fallback, not filled).
        public var redisUnavailable = 0
        public init() {}
    }

    public let layout: RedisLayout
    public let ttlSeconds: Int64?
    public let retryIntervalNanoseconds: Int64
    private let connection: RedisConnection
    private let fallback: Fallback
    private let lock = NSLock()
    // Guarded by `lock`.
    private var counters_ = Counters()
    private var nextReconnectAt: Int64 = 0

    /// `connection` may be connected or not (then the first lookup connects). `ttlSeconds` as the sink's
    /// (`RedisSinkOptions.ttlSeconds`), so a filled key lives as long as a written one.
    public init(connection: RedisConnection, layout: RedisLayout = RedisLayout(),
                ttlSeconds: Int64? = RedisSinkOptions().ttlSeconds, retryIntervalNanoseconds: Int64 = 1_000_000_000,
                fallback: @escaping Fallback) {
        precondition(ttlSeconds.map { $0 > 0 } ?? true, "a Redis TTL is positive (nil: never expire)")
        self.connection = connection
        self.layout = layout
        self.ttlSeconds = ttlSeconds
        self.retryIntervalNanoseconds = retryIntervalNanoseconds
        self.fallback = fallback
    }

    public var counters: Counters {
        lock.lock()
        defer { lock.unlock() }
        return counters_
    }

    /// The latest bar's fields (`RedisLayout.barFields` names), from Redis or else from the fallback;
    /// nil if neither has one.
    public func latestBar(symbol: String, timeframe: Timeframe) throws -> [String: String]? {
        let key = layout.latestBar(symbol, timeframe)
        let reachable: Bool
        switch try read(key) {
        case .hit(let fields): return fields
        case .absent: reachable = true
        case .unreachable: reachable = false
        }
        let found = try fallback(symbol, timeframe)
        lock.lock()
        defer { lock.unlock() }
        guard let found, !found.isEmpty else {
            counters_.notFound += 1
            return nil
        }
        guard reachable else { return found }
        do {
            try withConnection { connection in
                var hashSet = ["HSET", key]
                for field in found.keys.sorted() {
                    hashSet.append(field)
                    hashSet.append(found[field]!)
                }
                _ = try connection.command(hashSet)
                if let seconds = RedisLayout.expirySeconds(ttlSeconds: ttlSeconds, timeframe: timeframe) {
                    _ = try connection.command(["EXPIRE", key, String(seconds)])
                }
            }
            counters_.filled += 1
        } catch let error as RedisError where error.kind == .connection {
            counters_.redisUnavailable += 1
        }
        return found
    }

    private enum Read {
        case hit([String: String])
        case absent
        case unreachable
    }

    /// Looks the key up and counts the hit or the miss.
    private func read(_ key: String) throws -> Read {
        lock.lock()
        defer { lock.unlock() }
        let result: Read
        do {
            let reply = try withConnection { try $0.command(["HGETALL", key]) }
            guard let fields = reply.fieldValues else {
                throw RedisError(peer: connection.peer, kind: .server, detail: "HGETALL \(key): not a hash reply")
            }
            result = fields.isEmpty ? .absent : .hit(fields)
        } catch let error as RedisError where error.kind == .connection {
            result = .unreachable
        }
        switch result {
        case .hit: counters_.hits += 1
        case .absent: counters_.misses += 1
        case .unreachable:
            counters_.misses += 1
            counters_.redisUnavailable += 1
        }
        return result
    }

    /// Runs `body` on a connected connection, reconnecting first if the last attempt is old enough.
    /// Under `lock`.
    private func withConnection<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        if !connection.isConnected {
            let now = Monotonic.nanoseconds()
            guard now >= nextReconnectAt else {
                throw RedisError(peer: connection.peer, kind: .connection, detail: "not connected (retrying later)")
            }
            nextReconnectAt = now + retryIntervalNanoseconds
            try connection.reconnect()
        }
        return try body(connection)
    }
}
