import Synchronization

/// One REST answer: HTTP status and JSON body.
public struct RestAnswer: Sendable {
    public var status: Int
    public var body: String
    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

/// What stands before every REST request, in this order: the API key (`--api-key`), the injected 429
/// (`--http-429-every N`: the Nth, 2Nth, … request of the run), the daily limit (`--daily-limit`) and
/// the per-minute limit (`--rate-limit`: more than N served calls in the last 60 s of wall time).
/// Refused calls do not count toward the limits, so a client that backs off gets served again.
public final class RestGate: Sendable {
    public enum Verdict: Sendable, Equatable { case serve, badKey, injected429, dailyLimit, minuteLimit }

    /// Length of the rate-limit window.
    public static let windowSeconds = 60

    private let faults: FaultSettings
    private struct State {
        var requests = 0
        var servedTotal = 0
        var servedInstants: [ContinuousClock.Instant] = []
    }
    private let state = Mutex(State())

    public init(faults: FaultSettings) { self.faults = faults }

    public func check(apiKey: String?, at instant: ContinuousClock.Instant = .now) -> Verdict {
        state.withLock { state in
            state.requests += 1
            if let required = faults.apiKey, apiKey != required { return .badKey }
            if let every = faults.http429Every, every > 0, state.requests % every == 0 { return .injected429 }
            if let daily = faults.dailyLimit, state.servedTotal >= daily { return .dailyLimit }
            let windowStart = instant - .seconds(Self.windowSeconds)
            state.servedInstants.removeAll { $0 <= windowStart }
            if let perMinute = faults.rateLimitPerMinute, state.servedInstants.count >= perMinute {
                return .minuteLimit
            }
            state.servedTotal += 1
            state.servedInstants.append(instant)
            return .serve
        }
    }
}
