import Foundation
import TapeCore

/// Listens on one Redis pub/sub channel on a thread of its own and hands every message to `onMessage`
/// (on that thread, in the order Redis delivered them): how `tape serve` receives the updates a
/// pipeline's `RedisSink` publishes (`RedisLayout.updatesChannel`), so that several serve processes
/// behind a load balancer see the same stream.
///
/// - A server that goes away (or is not there at start) is retried with jittered backoff (100 ms … 5 s);
///   one log line per state change. Pub/sub does not keep what was published while a subscriber was
///   away: `onSubscribed` runs after every (re)subscription so that the listener can take a fresh
///   snapshot (from the stores) before relaying updates again.
/// - `stop()` ends the thread within about `pollMilliseconds` and closes the connection; idempotent.
public final class RedisSubscriber: @unchecked Sendable {
    public struct Counters: Sendable, Equatable {
        public var messages = 0
        public var subscriptions = 0
        public var outages = 0
    }

    public let channel: String
    public var peer: String { endpoint.peer }
    private let endpoint: RedisEndpoint
    private let pollMilliseconds: Int32
    private let log: @Sendable (String) -> Void
    private let onMessage: @Sendable (String) -> Void
    private let onSubscribed: @Sendable () -> Void
    private let lock = NSCondition()
    private var stopping = false
    private var running = false
    private var connected = false
    private var counted = Counters()

    /// Parses the URL (a bad one throws); nothing connects before `start()`.
    public init(url: String, channel: String, pollMilliseconds: Int32 = 200,
                log: @escaping @Sendable (String) -> Void,
                onSubscribed: @escaping @Sendable () -> Void = {},
                onMessage: @escaping @Sendable (String) -> Void) throws {
        endpoint = try RedisEndpoint(url: url)
        self.channel = channel
        self.pollMilliseconds = pollMilliseconds
        self.log = log
        self.onMessage = onMessage
        self.onSubscribed = onSubscribed
    }

    deinit { stop() }

    /// Whether the subscription is live now.
    public var isSubscribed: Bool { lock.lock(); defer { lock.unlock() }; return connected }

    public var counters: Counters { lock.lock(); defer { lock.unlock() }; return counted }

    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !running && !stopping else { return }
        running = true
        let thread = Thread { [self] in run() }
        thread.name = "tape-redis-subscriber"
        thread.start()
    }

    /// Ends the thread (waits for it) and closes the connection.
    public func stop() {
        lock.lock()
        stopping = true
        while running { lock.wait() }
        lock.unlock()
    }

    private var shouldStop: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func run() {
        let connection = RedisConnection(endpoint: endpoint, clientName: "tape-subscriber")
        var backoff = Backoff(initialNanoseconds: 100_000_000, maxNanoseconds: 5_000_000_000, seed: 0x7375_6273)
        var wasDown = false
        var downSince: Int64 = 0
        while !shouldStop {
            if !connection.isConnected {
                do {
                    try connection.reconnect()
                    _ = try connection.command(["SUBSCRIBE", channel])
                    backoff.reset()
                    lock.lock(); connected = true; counted.subscriptions += 1; lock.unlock()
                    if wasDown {
                        log("tape: redis \(peer): subscribed to \(channel) again after "
                            + String(format: "%.1f s", Double(Monotonic.nanoseconds() - downSince) / 1e9))
                    }
                    wasDown = false
                    onSubscribed()
                } catch {
                    connection.close()
                    if !wasDown {
                        wasDown = true
                        downSince = Monotonic.nanoseconds()
                        lock.lock(); counted.outages += 1; lock.unlock()
                        log("tape: redis \(peer): cannot subscribe to \(channel) (\(error)); retrying")
                    }
                    sleep(nanoseconds: backoff.nextDelay())
                    continue
                }
            }
            do {
                guard let reply = try connection.nextPush(timeoutMilliseconds: pollMilliseconds) else { continue }
                // ["message", channel, payload]; subscribe confirmations and pongs are not messages.
                if let parts = reply.array, parts.count == 3, parts[0].string == "message", let payload = parts[2].string {
                    lock.lock(); counted.messages += 1; lock.unlock()
                    onMessage(payload)
                }
            } catch {
                lock.lock(); connected = false; counted.outages += 1; lock.unlock()
                wasDown = true
                downSince = Monotonic.nanoseconds()
                log("tape: redis \(peer): subscription to \(channel) lost (\(error)); resubscribing")
            }
        }
        connection.close()
        lock.lock()
        connected = false
        running = false
        lock.broadcast()
        lock.unlock()
    }

    /// Sleeps in slices, so that `stop()` is not held up by a long backoff.
    private func sleep(nanoseconds: Int64) {
        let until = Monotonic.nanoseconds() + nanoseconds
        while !shouldStop, Monotonic.nanoseconds() < until {
            Thread.sleep(forTimeInterval: min(0.05, Double(until - Monotonic.nanoseconds()) / 1e9))
        }
    }
}
