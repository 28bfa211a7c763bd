import Foundation

/// Token buckets per client (an API key's name or an IP address): each request takes one token; a bucket
/// refills at `limit.ratePerSecond` up to `limit.burst`. An empty bucket answers how long until the next
/// token (the 429's `Retry-After`).
///
/// ```swift
/// let limiter = RateLimiter(limit: .init(ratePerSecond: 10, burst: 20))
/// if let wait = limiter.take("10.0.0.7", now: Stores.monotonicNanoseconds()) { throw Problem.tooManyRequests(…) }
/// ```
///
/// Bounded: at most `clientsMax` buckets. When full, buckets that have refilled completely (idle clients:
/// forgetting them changes nothing) are dropped; if none has, the oldest-touched half goes. One lock, held
/// for a dictionary lookup and a few arithmetic operations (no I/O).
public final class RateLimiter: @unchecked Sendable {
    public let limit: ServeConfig.Limit
    public let clientsMax: Int

    private struct Bucket {
        var tokens: Double
        var updatedNanoseconds: Int64
    }

    private let lock = NSLock()
    private var buckets: [String: Bucket] = [:]

    public init(limit: ServeConfig.Limit, clientsMax: Int = 100_000) {
        precondition(clientsMax > 0, "a rate limiter holds at least one client")
        self.limit = limit
        self.clientsMax = clientsMax
    }

    /// Takes a token for `client` at monotonic time `now`: nil when granted, else the seconds until one is
    /// available (at least 1, rounded up).
    public func take(_ client: String, now: Int64) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        var bucket = buckets[client] ?? Bucket(tokens: limit.burst, updatedNanoseconds: now)
        let elapsedSeconds = Double(max(0, now - bucket.updatedNanoseconds)) / 1e9
        bucket.tokens = min(limit.burst, bucket.tokens + elapsedSeconds * limit.ratePerSecond)
        bucket.updatedNanoseconds = now
        let granted = bucket.tokens >= 1
        if granted { bucket.tokens -= 1 }
        if buckets[client] == nil && buckets.count >= clientsMax { evict(now: now) }
        buckets[client] = bucket
        assert(bucket.tokens >= 0 && bucket.tokens <= limit.burst, "a bucket holds 0 ... burst tokens")
        if granted { return nil }
        return max(1, Int(((1 - bucket.tokens) / limit.ratePerSecond).rounded(.up)))
    }

    /// Clients currently held.
    public var clients: Int {
        lock.lock()
        defer { lock.unlock() }
        return buckets.count
    }

    /// Under `lock`.
    private func evict(now: Int64) {
        let refillNanoseconds = Int64(limit.burst / limit.ratePerSecond * 1e9)
        buckets = buckets.filter { now - $0.value.updatedNanoseconds < refillNanoseconds }
        if buckets.count >= clientsMax {
            let newestFirst = buckets.sorted { $0.value.updatedNanoseconds > $1.value.updatedNanoseconds }
            let kept = newestFirst.prefix(clientsMax / 2)
            buckets = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }
    }
}
