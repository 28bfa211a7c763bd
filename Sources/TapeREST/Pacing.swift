import Foundation

/// Time for the pollers: a monotonic `now` and a `sleep`, both in ns. The system clock in production; a
/// fake one in tests, whose `sleep` only moves `now` forward, so a 60 s rate-limit wait takes no time.
///
/// ```swift
/// let fake = FakeRESTClock()
/// let poller = AlphaVantagePoller(configuration: configuration, clock: fake.clock, deliver: { _ in })
/// ```
public struct RESTClock: Sendable {
    public var now: @Sendable () -> Int64
    public var sleep: @Sendable (_ nanoseconds: Int64) -> Void

    public init(now: @escaping @Sendable () -> Int64, sleep: @escaping @Sendable (_ nanoseconds: Int64) -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// CLOCK_MONOTONIC and nanosleep.
    public static let system = RESTClock(now: { monotonicNanoseconds() }, sleep: { sleepNanoseconds($0) })
}

/// One limit of a rate limiter: at most `calls` calls in any window of `windowNanoseconds`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    public var calls: Int
    public var windowNanoseconds: Int64
    /// A limit keeps the times of its last `calls` calls: this bounds that memory.
    public static let callsMax = 1_000_000

    public init(calls: Int, windowNanoseconds: Int64) {
        precondition(calls > 0 && calls <= RateLimit.callsMax, "RateLimit.calls must be in 1...\(RateLimit.callsMax)")
        precondition(windowNanoseconds > 0, "RateLimit window must be positive")
        self.calls = calls
        self.windowNanoseconds = windowNanoseconds
    }

    public static func perMinute(_ calls: Int) -> RateLimit {
        RateLimit(calls: calls, windowNanoseconds: 60 * nanosPerSecond)
    }
    public static func perDay(_ calls: Int) -> RateLimit {
        RateLimit(calls: calls, windowNanoseconds: 86_400 * nanosPerSecond)
    }

    public var description: String { "\(calls) calls per \(Double(windowNanoseconds) / 1e9) s" }
}

let nanosPerSecond: Int64 = 1_000_000_000

/// Sliding-window rate limiter over several limits (Alpha Vantage free tier: 5 per minute and 25 per
/// day). A call is allowed at `now` when, for every limit, fewer than `calls` calls were recorded in
/// `(now - window, now]`. Exact, not a token-bucket approximation: it keeps the last `calls` call
/// times per limit in a ring.
public struct SlidingWindowRateLimiter: Sendable {
    public let limits: [RateLimit]
    private var rings: [[Int64]]
    private var next: [Int]

    public init(limits: [RateLimit]) {
        self.limits = limits
        rings = limits.map { Array(repeating: Int64.min, count: $0.calls) }
        next = Array(repeating: 0, count: limits.count)
    }

    /// ns to wait from `now` before the next call is allowed (0: call now).
    public func delayBeforeNextCall(now: Int64) -> Int64 {
        var delay: Int64 = 0
        for index in limits.indices {
            // The oldest of the last `calls` calls: the slot to be overwritten next.
            let oldest = rings[index][next[index]]
            if oldest == Int64.min { continue }
            let freeAt = oldest + limits[index].windowNanoseconds
            if freeAt > now { delay = max(delay, freeAt - now) }
        }
        return delay
    }

    /// Records a call at `now`. Precondition: it was allowed (`delayBeforeNextCall(now:) == 0`).
    public mutating func recordCall(now: Int64) {
        precondition(delayBeforeNextCall(now: now) == 0, "rate limit exceeded: a call was made before it was allowed")
        for index in limits.indices {
            rings[index][next[index]] = now
            next[index] = (next[index] + 1) % limits[index].calls
        }
    }
}


#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func monotonicNanoseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * nanosPerSecond + Int64(spec.tv_nsec)
}

func sleepNanoseconds(_ nanoseconds: Int64) {
    guard nanoseconds > 0 else { return }
    var request = timespec(tv_sec: Int(nanoseconds / nanosPerSecond), tv_nsec: Int(nanoseconds % nanosPerSecond))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
