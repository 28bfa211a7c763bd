import TapeCore
import TapeGraph

/// A token bucket: at most `capacity` at once, refilled continuously at `refillPerSecond`. Starts full.
/// Time is given by the caller (monotonic ns), so a test decides it.
struct TokenBucket: Sendable {
    let capacity: Double
    let refillPerNanosecond: Double
    private(set) var tokens: Double
    private var last: Int64?

    init(capacity: Int, perMinute: Double) {
        precondition(capacity >= 1 && perMinute > 0, "a token bucket holds at least one token and refills")
        self.capacity = Double(capacity)
        refillPerNanosecond = perMinute / 60e9
        tokens = Double(capacity)
    }

    /// Takes one token if there is one at `now`.
    mutating func take(now: Int64) -> Bool {
        if let last, now > last { tokens = min(capacity, tokens + Double(now - last) * refillPerNanosecond) }
        last = max(last ?? now, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        assert(tokens >= 0 && tokens <= capacity, "a bucket's tokens stay within 0 ... capacity")
        return true
    }
}

/// What one channel decides for one alert.
enum AlertDecision: Equatable {
    /// Under the channel's threshold for this rule (or the rule is off for it).
    case belowThreshold
    /// Same rule and subject inside the window, no higher severity: counted.
    case deduplicated
    /// Past de-duplication, but the channel's bucket is empty: counted for the next summary.
    case suppressed
    /// Send it, with the repeats de-duplicated before it.
    case send(repeatsBefore: Int)
}

/// One channel's threshold, de-duplication and rate limit — pure state, no I/O, no clock of its own.
///
/// - Threshold: `config.threshold(rule:channel:)`; below it (or off) nothing else happens.
/// - De-duplication, per (rule, subject): an alert opens a window of `dedupeWindowNanoseconds` at its
///   `time`; later alerts of the same key inside it with no higher severity are counted, not sent. The
///   next alert sent for the key (after the window, or a higher severity) carries that count; counts
///   still untold at the end go into the closing summary. Keys are bounded (`keysMax`).
/// - Rate limit: a token bucket per channel on monotonic wall time. An alert without a token is counted
///   per rule; the summary of those is sent as soon as a token is free (or at close, without one).
struct ChannelPolicy {
    let channel: String
    let config: AlertConfig
    /// Keys remembered for de-duplication, at most; beyond, windows with nothing pending are forgotten.
    static let keysMax = 10_000

    struct Window {
        var start: Nanos
        var severity: Severity
        var repeats: Int
    }
    private struct Key: Hashable {
        var rule: String
        var subject: String
    }
    private var windows: [Key: Window] = [:]
    private var bucket: TokenBucket
    private(set) var suppressedByRule: [String: Int] = [:]

    init(channel: String, config: AlertConfig) {
        self.channel = channel
        self.config = config
        bucket = TokenBucket(capacity: config.rateLimitBurst, perMinute: config.rateLimitPerMinute)
    }

    mutating func decide(_ alert: Alert, now: Int64) -> AlertDecision {
        guard let threshold = config.threshold(rule: alert.rule, channel: channel),
              alert.severity.rank >= threshold.rank else { return .belowThreshold }
        let key = Key(rule: alert.rule, subject: alert.subject)
        var repeats = 0
        if var window = windows[key] {
            let inside = alert.time < window.start &+ config.dedupeWindowNanoseconds
            if inside && alert.severity.rank <= window.severity.rank {
                window.repeats += 1
                windows[key] = window
                return .deduplicated
            }
            repeats = window.repeats
        } else if windows.count >= ChannelPolicy.keysMax {
            windows = windows.filter { $0.value.repeats > 0 }
            if windows.count >= ChannelPolicy.keysMax { windows.removeAll() }
        }
        windows[key] = Window(start: alert.time, severity: alert.severity, repeats: 0)
        guard bucket.take(now: now) else {
            suppressedByRule[alert.rule, default: 0] += 1
            // Its repeats stay with it: told in the summary's pending counts.
            windows[key]?.repeats = repeats
            return .suppressed
        }
        return .send(repeatsBefore: repeats)
    }

    /// The summary of what the rate limit held back, when there is some and a token is free (or
    /// `closing`: then also every repeat not yet told, and no token is needed).
    mutating func summary(now: Int64, closing: Bool) -> AlertMessage.Content? {
        var pending: [String: Int] = [:]
        if closing {
            for (key, window) in windows where window.repeats > 0 {
                pending["\(key.rule) \(key.subject)"] = window.repeats
            }
        }
        if suppressedByRule.isEmpty && pending.isEmpty { return nil }
        if !closing && !bucket.take(now: now) { return nil }
        let suppressed = suppressedByRule
        suppressedByRule.removeAll()
        if closing { windows.removeAll() }
        return .summary(suppressedByRule: suppressed, pendingRepeats: pending)
    }
}
