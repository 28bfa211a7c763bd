import Foundation
import TapeCore
import TapeFeeds
import TapeHTTP

/// What a poller counted. `polls` counts HTTP requests sent (retries included).
public struct RESTCounters: Sendable, Equatable {
    public var polls = 0
    public var bodiesDelivered = 0
    /// HTTP 429 answers.
    public var tooManyRequests = 0
    /// Throttle bodies: Alpha Vantage `Note` / `Information`, FMP `Error Message: Limit Reach…`.
    public var throttleNotes = 0
    /// Transport failures, unexpected statuses, error bodies.
    public var errors = 0
    /// Backoff waits taken (after a 429, a throttle note or an error).
    public var backoffWaits = 0
    /// Times the poller started failing: `RESTPoller.failuresBeforeFailing` attempts in a row without data
    /// (errors, 429s, throttle notes), counted once until an answer with data ends the run of failures.
    public var failingSpells = 0

    public init() {}
}

/// Why a poller stopped on its own. Names the peer; never holds the API key.
public enum RESTPollerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The vendor refused the key (Alpha Vantage `Error Message` about the apikey, FMP 401/403).
    case authenticationFailed(peer: String, detail: String)
    /// No key given and none in the environment variable.
    case missingAPIKey(peer: String, variable: String)
    /// A symbol that cannot be put in a URL path or a JSON string.
    case unusableSymbol(peer: String, symbol: String)
    /// libcurl could not give an easy handle.
    case httpClientUnavailable(peer: String, detail: String)

    public var description: String {
        switch self {
        case .authenticationFailed(let peer, let detail): return "\(peer): authentication failed: \(detail)"
        case .missingAPIKey(let peer, let variable): return "\(peer): no API key (set \(variable))"
        case .unusableSymbol(let peer, let symbol): return "\(peer): symbol \(symbol.debugDescription) is not usable"
        case .httpClientUnavailable(let peer, let detail): return "\(peer): no HTTP client: \(detail)"
        }
    }
}

/// The poller's states; each change is logged once, naming the peer.
public enum RESTPollerState: String, Sendable {
    case idle, polling, waitingForRateLimit = "waiting for rate limit", backingOff = "backing off", stopped, failed
}

/// Settings shared by both vendors' pollers.
public struct RESTPollerSettings: Sendable {
    public var symbols: [String]
    /// Without the trailing `/`; tests point it at a loopback server.
    public var baseURL: String
    public var apiKey: String
    public var limits: [RateLimit]
    /// A round polls every symbol once; the next round starts this long after the previous one started.
    public var roundIntervalNanoseconds: Int64
    public var timeoutMilliseconds: Int
    public var backoffInitialNanoseconds: Int64
    public var backoffMaxNanoseconds: Int64
    /// Attempts of one symbol's poll (the first included) before it is given up for this round.
    public var attemptsPerPollMax: Int
    public var seed: UInt64

    public static let symbolsMax = 1_000
    public static let attemptsPerPollLimit = 100

    public init(
        symbols: [String], baseURL: String, apiKey: String, limits: [RateLimit],
        roundIntervalNanoseconds: Int64 = 60_000_000_000, timeoutMilliseconds: Int = 10_000,
        backoffInitialNanoseconds: Int64 = 2_000_000_000, backoffMaxNanoseconds: Int64 = 300_000_000_000,
        attemptsPerPollMax: Int = 6, seed: UInt64 = 1
    ) {
        precondition(!symbols.isEmpty && symbols.count <= Self.symbolsMax, "1...\(Self.symbolsMax) symbols")
        precondition(attemptsPerPollMax >= 1 && attemptsPerPollMax <= Self.attemptsPerPollLimit, "attemptsPerPollMax")
        precondition(roundIntervalNanoseconds >= 0, "roundIntervalNanoseconds")
        self.symbols = symbols
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.limits = limits
        self.roundIntervalNanoseconds = roundIntervalNanoseconds
        self.timeoutMilliseconds = timeoutMilliseconds
        self.backoffInitialNanoseconds = backoffInitialNanoseconds
        self.backoffMaxNanoseconds = backoffMaxNanoseconds
        self.attemptsPerPollMax = attemptsPerPollMax
        self.seed = seed
    }

    /// `explicit` if given, else the environment variable; nil when neither is set (or empty).
    public static func apiKey(
        explicit: String?, variable: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        if let explicit, !explicit.isEmpty { return explicit }
        if let value = environment[variable], !value.isEmpty { return value }
        return nil
    }
}

/// What one response means to the polling loop (decided by the vendor's rules).
enum PollVerdict: Equatable {
    case data
    case throttled(String)
    case tooManyRequests
    case authenticationFailed(String)
    /// An answer retrying will not change (an unknown symbol): counted, the poll moves on.
    case rejected(String)
    /// A server error: backed off and retried.
    case retryable(String)
}

/// One vendor's rules: its URLs, how to read an answer, how to frame a body for delivery.
struct VendorRules: Sendable {
    var vendor: String
    var keyVariable: String
    var url: @Sendable (_ baseURL: String, _ symbol: String, _ key: String) -> String
    var verdict: @Sendable (_ response: HTTPResponse) -> PollVerdict
    /// Wraps a body that does not name its symbol (FMP chart); identity otherwise.
    var frame: @Sendable (_ symbol: String, _ body: [UInt8]) -> [UInt8]
}

/// The polling loop shared by `AlphaVantagePoller` and `FMPPoller`: on its own thread (libcurl is
/// blocking), round after round, every symbol once per round:
/// rate limiter (sliding window, waits) → GET → every HTTP 200 body delivered (newlines → spaces, the
/// key masked, framed) → on 429 / a throttle note / an error: jittered exponential backoff and retry
/// (at most `attemptsPerPollMax` attempts per poll; `Retry-After` respected); on an auth failure: stop
/// with `RESTPollerError.authenticationFailed`.
///
/// ```swift
/// let poller = try FMPPoller(symbols: ["AAPL"], endpoint: .historicalChart1min, deliver: { body in inbox.put(body) })
/// poller.start()      // its own thread
/// poller.stop(); let error = poller.join()
/// ```
public class RESTPoller: @unchecked Sendable {
    /// `vendor host[:port]`, used in every log line and error.
    public let peer: String
    public let settings: RESTPollerSettings
    let rules: VendorRules
    private let clock: RESTClock
    private let log: @Sendable (String) -> Void
    private let deliver: @Sendable (_ body: UnsafeRawBufferPointer) -> Void

    /// Sleeps are cut into slices of at most this, so `stop()` is noticed promptly.
    public static let sleepSliceNanosecondsMax: Int64 = 100_000_000
    /// Vendor text quoted in logs and errors is cut to this many characters.
    public static let detailCharactersMax = 200
    /// Attempts in a row without data after which the poller counts a failing spell (`failingSpells`):
    /// one failure is routine (a 429 under the limit, a timeout); three in a row is an outage to report.
    public static let failuresBeforeFailing = 3

    private let lock = NSCondition()
    private var counterValues = RESTCounters()
    private var stateValue = RESTPollerState.idle
    private var stopRequested = false
    private var running = false
    /// Attempts without data since the last answer with data (the polling thread's own).
    private var failuresInARow = 0
    private var lastFailureValue: String?
    private var finishedError: RESTPollerError?
    private var limiter: SlidingWindowRateLimiter
    private var backoff: Backoff

    init(
        settings: RESTPollerSettings, rules: VendorRules, clock: RESTClock,
        log: @escaping @Sendable (String) -> Void, deliver: @escaping @Sendable (_ body: UnsafeRawBufferPointer) -> Void
    ) throws {
        self.peer = "\(rules.vendor) \(HTTPClient.host(of: settings.baseURL))"
        if settings.apiKey.isEmpty { throw RESTPollerError.missingAPIKey(peer: peer, variable: rules.keyVariable) }
        for symbol in settings.symbols where !RESTPoller.isUsable(symbol) {
            throw RESTPollerError.unusableSymbol(peer: peer, symbol: symbol)
        }
        self.settings = settings
        self.rules = rules
        self.clock = clock
        self.log = log
        self.deliver = deliver
        limiter = SlidingWindowRateLimiter(limits: settings.limits)
        backoff = Backoff(
            initialNanoseconds: settings.backoffInitialNanoseconds,
            maxNanoseconds: settings.backoffMaxNanoseconds, seed: settings.seed)
    }

    /// Letters, digits and `.-_^=:` only: safe in a URL path, a query and a JSON string.
    static func isUsable(_ symbol: String) -> Bool {
        !symbol.isEmpty && symbol.count <= 32
            && symbol.unicodeScalars.allSatisfy {
                ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || ".-_^=:".unicodeScalars.contains($0)
            }
    }

    public var counters: RESTCounters { lock.lock(); defer { lock.unlock() }; return counterValues }
    /// The reason of the last failed attempt (`symbol: HTTP 500: …`; the key masked), nil before any.
    public var lastFailure: String? { lock.lock(); defer { lock.unlock() }; return lastFailureValue }
    public var state: RESTPollerState { lock.lock(); defer { lock.unlock() }; return stateValue }

    /// Starts polling on a new thread until `stop()` or an auth failure.
    public func start() {
        lock.lock()
        precondition(!running, "\(peer): poller started twice")
        running = true
        lock.unlock()
        let thread = Thread { [self] in
            var failure: RESTPollerError? = nil
            do throws(RESTPollerError) { try self.run(roundsMax: nil) } catch { failure = error }
            self.lock.lock()
            self.finishedError = failure
            self.running = false
            self.lock.broadcast()
            self.lock.unlock()
        }
        thread.name = "tape-rest-\(rules.vendor)"
        thread.start()
    }

    /// Asks the loop to stop (noticed within a sleep slice or the HTTP timeout).
    public func stop() {
        lock.lock()
        stopRequested = true
        lock.unlock()
    }

    /// Waits for the thread started by `start()` to end; its error, if it stopped on one.
    @discardableResult
    public func join() -> RESTPollerError? {
        lock.lock()
        defer { lock.unlock() }
        while running { lock.wait() }
        return finishedError
    }

    private var isStopRequested: Bool { lock.lock(); defer { lock.unlock() }; return stopRequested }

    private func count(_ change: (inout RESTCounters) -> Void) {
        lock.lock()
        change(&counterValues)
        lock.unlock()
    }

    private func enter(_ state: RESTPollerState, _ reason: @autoclosure () -> String) {
        lock.lock()
        let changed = stateValue != state
        stateValue = state
        lock.unlock()
        if changed { log("\(peer): \(state.rawValue)\(reason().isEmpty ? "" : ": " + reason())") }
    }

    /// Polls `roundsMax` rounds (nil: until `stop()`) on the calling thread.
    public func run(roundsMax: Int? = nil) throws(RESTPollerError) {
        let client: HTTPClient
        do {
            client = try HTTPClient(timeoutMilliseconds: settings.timeoutMilliseconds)
        } catch {
            enter(.failed, "\(error)")
            throw .httpClientUnavailable(peer: peer, detail: "\(error)")
        }
        enter(.polling, "\(settings.symbols.count) symbols, limits \(settings.limits.map(\.description))")
        var round = 0
        while !isStopRequested && (roundsMax.map { round < $0 } ?? true) {
            let roundStart = clock.now()
            for symbol in settings.symbols where !isStopRequested {
                do {
                    try poll(symbol, client: client)
                } catch {
                    enter(.failed, "\(error)")
                    throw error
                }
            }
            round += 1
            if roundsMax.map({ round < $0 }) ?? true {
                pause(roundStart + settings.roundIntervalNanoseconds - clock.now())
            }
        }
        enter(.stopped, isStopRequested ? "stop requested" : "\(round) rounds done")
    }

    private func poll(_ symbol: String, client: HTTPClient) throws(RESTPollerError) {
        let key = settings.apiKey
        let url = rules.url(settings.baseURL, symbol, key)
        backoff.reset()
        for attempt in 1...settings.attemptsPerPollMax {
            waitForRateLimit()
            if isStopRequested { return }
            limiter.recordCall(now: clock.now())
            count { $0.polls += 1 }
            let response: HTTPResponse
            do {
                response = try client.get(url, redacting: key)
            } catch {
                count { $0.errors += 1 }
                backOff(symbol, attempt, reason: "\(error)", retryAfterSeconds: nil)
                continue
            }
            if response.status == 200 { deliverBody(symbol, response.body) }
            switch rules.verdict(response) {
            case .data:
                failuresInARow = 0
                enter(.polling, "")
                return
            case .throttled(let text):
                count { $0.throttleNotes += 1 }
                backOff(symbol, attempt, reason: "throttled: \(clean(text))", retryAfterSeconds: nil)
            case .tooManyRequests:
                count { $0.tooManyRequests += 1 }
                backOff(symbol, attempt, reason: "HTTP 429", retryAfterSeconds: response.retryAfterSeconds)
            case .authenticationFailed(let text):
                count { $0.errors += 1 }
                throw .authenticationFailed(peer: peer, detail: "HTTP \(response.status): \(clean(text))")
            case .rejected(let text):
                count { $0.errors += 1 }
                log("\(peer): \(symbol): \(clean(text)) (HTTP \(response.status)); not retried")
                return
            case .retryable(let text):
                count { $0.errors += 1 }
                backOff(symbol, attempt, reason: "HTTP \(response.status): \(clean(text))", retryAfterSeconds: nil)
            }
        }
        log("\(peer): \(symbol): gave up after \(settings.attemptsPerPollMax) attempts this round")
    }

    /// Vendor text for a log line or an error: key masked, one line, cut to `detailCharactersMax`.
    private func clean(_ text: String) -> String {
        var line = Redaction.redact(text, secret: settings.apiKey).replacingOccurrences(of: "\n", with: " ")
        if line.count > Self.detailCharactersMax { line = String(line.prefix(Self.detailCharactersMax)) + "…" }
        return line
    }

    private func deliverBody(_ symbol: String, _ received: [UInt8]) {
        var body = received
        for index in body.indices where body[index] == 0x0A || body[index] == 0x0D { body[index] = 0x20 }
        Redaction.redact(&body, secret: Array(settings.apiKey.utf8))
        body = rules.frame(symbol, body)
        body.withUnsafeBytes { deliver($0) }
        count { $0.bodiesDelivered += 1 }
    }

    private func waitForRateLimit() {
        var delay = limiter.delayBeforeNextCall(now: clock.now())
        while delay > 0 && !isStopRequested {
            enter(.waitingForRateLimit, "next call in \(Self.seconds(delay)) s")
            pause(delay)
            delay = limiter.delayBeforeNextCall(now: clock.now())
        }
    }

    private func backOff(_ symbol: String, _ attempt: Int, reason: String, retryAfterSeconds: Int?) {
        failuresInARow += 1
        let failing = failuresInARow == Self.failuresBeforeFailing
        lock.lock()
        lastFailureValue = "\(symbol): \(reason)"
        if failing { counterValues.failingSpells += 1 }
        lock.unlock()
        var delay = backoff.nextDelay()
        if let retryAfterSeconds, retryAfterSeconds > 0 {
            delay = max(delay, min(Int64(retryAfterSeconds) * nanosPerSecond, settings.backoffMaxNanoseconds))
        }
        count { $0.backoffWaits += 1 }
        let next =
            attempt < settings.attemptsPerPollMax
            ? "retry in \(Self.seconds(delay)) s" : "wait \(Self.seconds(delay)) s"
        lock.lock()
        let already = stateValue == .backingOff
        lock.unlock()
        if already {
            log("\(peer): \(symbol): \(reason); attempt \(attempt), \(next)")
        } else {
            enter(.backingOff, "\(symbol): \(reason); attempt \(attempt), \(next)")
        }
        pause(delay)
    }

    /// Sleeps `nanoseconds` on the clock, in slices, returning early on `stop()`.
    private func pause(_ nanoseconds: Int64) {
        var remaining = nanoseconds
        while remaining > 0 && !isStopRequested {
            let slice = min(remaining, Self.sleepSliceNanosecondsMax)
            let before = clock.now()
            clock.sleep(slice)
            remaining -= max(clock.now() - before, slice)
        }
    }

    static func seconds(_ nanoseconds: Int64) -> String {
        String(format: "%.3f", Double(nanoseconds) / 1e9)
    }
}
