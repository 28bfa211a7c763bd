import Dispatch
import Foundation

/// A symbol and one of its update channels (`trades`, `quotes`, `bars:<tf>`, `indicators`, `anomalies`,
/// `predictions`, `orders`, `fills`, `positions`, `equity`: `RedisLayout.updateChannels`).
public struct UpdateKey: Hashable, Sendable, CustomStringConvertible {
    public let symbol: String
    public let channel: String
    public init(symbol: String, channel: String) { self.symbol = symbol; self.channel = channel }
    public var description: String { "\(symbol) \(channel)" }
}

/// Why the server closes a client's connection.
public struct CloseReason: Equatable, Sendable {
    /// A WebSocket close code (RFC 6455 §7.4; 4000–4999 are the application's own).
    public let code: UInt16
    public let text: String
    /// The client did not read fast enough: its queue of updates filled up, or updates waited too long.
    public static func slow(capacity: Int) -> CloseReason {
        CloseReason(code: 4008, text: "too slow: \(capacity) updates waiting; reconnect and take a snapshot")
    }
    public static func lagging(milliseconds: Int64) -> CloseReason {
        CloseReason(code: 4008, text: "too slow: updates waited over \(milliseconds) ms; reconnect and take a snapshot")
    }
    /// The server is stopping.
    public static let goingAway = CloseReason(code: 1001, text: "server stopping")
}

/// One connected client: its subscriptions and its bounded queue of messages to send. The hub offers
/// messages from any thread and never waits; the client's writer task drains the queue when rung.
public final class UpdateClient: @unchecked Sendable {
    public let id: Int
    public let capacity: Int
    /// Longest an update may wait in the queue (`checkLag`).
    public let maxLagNanoseconds: Int64
    /// Rung (at most one wake-up pending) whenever messages or a close wait; finishes when the client is
    /// closed and drained.
    public let wakeups: AsyncStream<Void>
    private let doorbell: AsyncStream<Void>.Continuation
    private let lock = NSLock()
    private var queue: [String] = []
    /// When the oldest message in `queue` arrived (monotonic ns; 0: the queue is empty).
    private var oldestWaitingSince: Int64 = 0
    /// When the writer took the batch it is writing (0: none in flight; `delivered()` clears it).
    private var inFlightSince: Int64 = 0
    private var closing: CloseReason? = nil
    /// Keys subscribed; a key waiting for its snapshot buffers its updates here (sent after it).
    private var subscriptions: [UpdateKey: [String]?] = [:]
    private(set) var sent = 0

    init(id: Int, capacity: Int, maxLagNanoseconds: Int64) {
        self.id = id
        self.capacity = capacity
        self.maxLagNanoseconds = maxLagNanoseconds
        (wakeups, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Also called at every ring (from the thread that queued, e.g. the Redis subscriber's): a connection
    /// that writes on its own event loop schedules its write from here, without a hop through a task.
    private var ringer: (@Sendable () -> Void)? = nil

    /// Sets the ringer (before the client subscribes to anything).
    public func setRinger(_ ringer: @escaping @Sendable () -> Void) {
        lock.lock()
        self.ringer = ringer
        lock.unlock()
    }

    /// With a ringer, the doorbell (a task's wake-up) rings only for a close: a wake-up per update per
    /// client would resume a task for nothing.
    private func ring() {
        lock.lock()
        let ringer = self.ringer, closing = self.closing != nil
        lock.unlock()
        guard let ringer else { doorbell.yield(); return }
        ringer()
        if closing { doorbell.yield() }
    }

    /// The messages waiting, in order, without the close (a writer that leaves the close to another task).
    public func drainMessages() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let messages = queue
        queue.removeAll(keepingCapacity: true)
        oldestWaitingSince = 0
        if !messages.isEmpty { inFlightSince = UpdateHub.monotonicNanoseconds() }
        sent += messages.count
        return messages
    }

    /// The messages waiting, in order, and the close to send after them (then nothing more comes).
    public func drain() -> (messages: [String], close: CloseReason?) {
        lock.lock()
        defer { lock.unlock() }
        let messages = queue
        queue.removeAll(keepingCapacity: true)
        oldestWaitingSince = 0
        if !messages.isEmpty { inFlightSince = UpdateHub.monotonicNanoseconds() }
        sent += messages.count
        return (messages, closing)
    }

    /// The writer's batch has been taken by the socket.
    public func delivered() {
        lock.lock()
        inFlightSince = 0
        lock.unlock()
    }

    public var closeReason: CloseReason? { lock.lock(); defer { lock.unlock() }; return closing }

    var keys: [UpdateKey] { lock.lock(); defer { lock.unlock() }; return Array(subscriptions.keys) }

    /// Queues `message` for `key` if subscribed (buffered while its snapshot is pending). Returns false
    /// when the client is closed or has just overflowed (then it is closing with `slow`).
    @discardableResult
    func offer(_ message: String, for key: UpdateKey) -> Bool {
        lock.lock()
        guard closing == nil, let state = subscriptions[key] else { lock.unlock(); return closing == nil }
        if var pending = state {
            pending.append(message)
            if pending.count > capacity { return overflowLocked() }
            subscriptions[key] = .some(pending)
            lock.unlock()
            return true
        }
        guard queue.count < capacity else { return overflowLocked() }
        if queue.isEmpty { oldestWaitingSince = UpdateHub.monotonicNanoseconds() }
        queue.append(message)
        lock.unlock()
        ring()
        return true
    }

    /// Queues a message that is not an update (a reply to the client), subject to the same bound.
    @discardableResult
    func reply(_ message: String) -> Bool {
        lock.lock()
        guard closing == nil else { lock.unlock(); return false }
        guard queue.count < capacity else { return overflowLocked() }
        if queue.isEmpty { oldestWaitingSince = UpdateHub.monotonicNanoseconds() }
        queue.append(message)
        lock.unlock()
        ring()
        return true
    }

    /// Closes the client as too slow when an update has waited longer than `maxLagNanoseconds`, in the queue
    /// or in the batch the writer is writing (the socket has not taken it: a peer that does not read). Returns whether it did. Called periodically
    /// by the connection's watchdog; a burst that the writer drains in time never trips it.
    @discardableResult
    public func checkLag(now: Int64) -> Bool {
        lock.lock()
        let waiting = !queue.isEmpty && now - oldestWaitingSince > maxLagNanoseconds
        let stuck = inFlightSince != 0 && now - inFlightSince > maxLagNanoseconds
        guard closing == nil, waiting || stuck else {
            lock.unlock()
            return false
        }
        closing = .lagging(milliseconds: maxLagNanoseconds / 1_000_000)
        queue.removeAll()
        subscriptions.removeAll()
        lock.unlock()
        ring()
        return true
    }

    private func overflowLocked() -> Bool {
        closing = .slow(capacity: capacity)
        queue.removeAll()
        subscriptions.removeAll()
        lock.unlock()
        ring()
        return false
    }

    /// Subscribes `key` with its snapshot pending; false if already subscribed.
    func beginSubscription(_ key: UpdateKey) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard closing == nil, subscriptions[key] == nil else { return false }
        subscriptions[key] = .some([])
        return true
    }

    /// Marks every key's snapshot pending again (after a gap in the updates): updates are buffered until
    /// the new snapshot is queued.
    func resubscribeAll() -> [UpdateKey] {
        lock.lock()
        defer { lock.unlock() }
        for key in subscriptions.keys where subscriptions[key]! == nil { subscriptions[key] = .some([]) }
        return Array(subscriptions.keys)
    }

    /// Queues the snapshot message, then the updates buffered meanwhile.
    func completeSubscription(_ key: UpdateKey, snapshot: String) {
        lock.lock()
        guard closing == nil, let state = subscriptions[key], let pending = state else { lock.unlock(); return }
        if queue.count + 1 + pending.count > capacity { _ = overflowLocked(); return }
        if queue.isEmpty { oldestWaitingSince = UpdateHub.monotonicNanoseconds() }
        queue.append(snapshot)
        queue.append(contentsOf: pending)
        subscriptions[key] = .some(nil)
        lock.unlock()
        ring()
    }

    func unsubscribe(_ key: UpdateKey) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return subscriptions.removeValue(forKey: key) != nil
    }

    func close(_ reason: CloseReason) {
        lock.lock()
        if closing == nil { closing = reason }
        subscriptions.removeAll()
        lock.unlock()
        ring()
    }

    func finish() { doorbell.finish() }
}

/// What a client asks, as JSON text messages:
/// `{"op":"subscribe","symbol":"spot:BTCUSDT","channels":["trades","bars:1m"]}`, `"op":"unsubscribe"`
/// likewise, `{"op":"ping"}`.
public enum UpdateRequest: Equatable, Sendable {
    case subscribe(symbol: String, channels: [String])
    case unsubscribe(symbol: String, channels: [String])
    case ping

    public struct Invalid: Error, Equatable, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func parse(_ text: String) throws(Invalid) -> UpdateRequest {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw Invalid(description: "not a JSON object")
        }
        guard let op = object["op"] as? String else { throw Invalid(description: "no \"op\"") }
        switch op {
        case "ping": return .ping
        case "subscribe", "unsubscribe":
            guard let symbol = object["symbol"] as? String, !symbol.isEmpty else {
                throw Invalid(description: "\(op) needs \"symbol\"")
            }
            guard let channels = object["channels"] as? [String], !channels.isEmpty else {
                throw Invalid(description: "\(op) needs \"channels\", a non-empty list")
            }
            for channel in channels where !isChannel(channel) {
                throw Invalid(description: "unknown channel \(channel) (trades, quotes, bars:<timeframe>, indicators, "
                    + "anomalies, predictions, orders, fills, positions, equity)")
            }
            return op == "subscribe" ? .subscribe(symbol: symbol, channels: channels)
                : .unsubscribe(symbol: symbol, channels: channels)
        default:
            throw Invalid(description: "unknown op \(op) (subscribe, unsubscribe, ping)")
        }
    }

    public static func isChannel(_ channel: String) -> Bool {
        switch channel {
        case "trades", "quotes", "indicators", "anomalies", "predictions": return true
        case "orders", "fills", "positions", "equity": return true   // paper trading (docs/backtesting.md)
        default:
            guard channel.hasPrefix("bars:") else { return false }
            let timeframe = channel.dropFirst(5)
            return !timeframe.isEmpty && timeframe.allSatisfy { $0.isLetter || $0.isNumber }
        }
    }
}

/// Fans the pipeline's updates (the messages of `<prefix>updates`, see docs/storage-redis.md) out to
/// WebSocket clients: each client gets, per subscribed symbol and channel, a snapshot and then the
/// updates, in order. No I/O and no waiting: a client that does not keep up — its queue full, or an update
/// waiting longer than `maxLagNanoseconds` (`UpdateClient.checkLag`) — is closed with code 4008; the others
/// are not held up. A burst larger than what the writer drains at once fits as long as it fits the queue.
///
/// - `publish` is called on the subscriber's thread for every update.
/// - `subscribe` asks `snapshot` (the caller's read of the stores: latest values, recent bars) and
///   buffers the key's updates until it is queued, so that a client never sees an update before the
///   snapshot it follows. An update the snapshot already holds may come once more after it: bars,
///   indicators and predictions carry `end_ns`, trades and quotes their times (a client keeps the newest).
/// - `resync` (after the update stream had a gap: Redis went away) takes a new snapshot for every
///   subscription of every client.
public final class UpdateHub: @unchecked Sendable {
    public struct Counters: Sendable, Equatable {
        public var updates = 0
        public var delivered = 0
        public var slowClientsClosed = 0
        public var snapshots = 0
    }

    public typealias Snapshot = @Sendable (UpdateKey) async -> String

    public let queueCapacity: Int
    public let maxLagNanoseconds: Int64
    private let snapshot: Snapshot
    private let lock = NSLock()
    private var clients: [Int: UpdateClient] = [:]
    /// Subscribers per key.
    private var subscribers: [UpdateKey: Set<Int>] = [:]
    private var nextID = 1
    private var counted = Counters()

    /// `snapshot` returns the whole snapshot message for a key (`snapshotMessage`).
    public init(queueCapacity: Int = 4096, maxLagNanoseconds: Int64 = 1_000_000_000, snapshot: @escaping Snapshot) {
        precondition(queueCapacity > 0, "a client queue holds at least one message")
        precondition(maxLagNanoseconds > 0, "a positive lag bound")
        self.queueCapacity = queueCapacity
        self.maxLagNanoseconds = maxLagNanoseconds
        self.snapshot = snapshot
    }

    public var clientCount: Int { lock.lock(); defer { lock.unlock() }; return clients.count }
    public var counters: Counters { lock.lock(); defer { lock.unlock() }; return counted }

    public func connect() -> UpdateClient {
        lock.lock()
        defer { lock.unlock() }
        let client = UpdateClient(id: nextID, capacity: queueCapacity, maxLagNanoseconds: maxLagNanoseconds)
        nextID += 1
        clients[client.id] = client
        return client
    }

    public func disconnect(_ client: UpdateClient) {
        lock.lock()
        clients[client.id] = nil
        for key in client.keys { subscribers[key]?.remove(client.id) }
        lock.unlock()
        client.close(.goingAway)
        client.finish()
    }

    /// Handles one request of `client`; replies (errors, pongs, confirmations) go to its queue.
    public func handle(_ text: String, from client: UpdateClient) async {
        let request: UpdateRequest
        do { request = try UpdateRequest.parse(text) } catch {
            client.reply(Self.errorMessage(error.description))
            return
        }
        switch request {
        case .ping:
            client.reply(#"{"type":"pong"}"#)
        case .unsubscribe(let symbol, let channels):
            for channel in channels {
                let key = UpdateKey(symbol: symbol, channel: channel)
                if client.unsubscribe(key) { _ = lock.withLock { subscribers[key]?.remove(client.id) } }
            }
            client.reply(Self.confirmation("unsubscribed", symbol: symbol, channels: channels))
        case .subscribe(let symbol, let channels):
            var added: [UpdateKey] = []
            for channel in channels {
                let key = UpdateKey(symbol: symbol, channel: channel)
                guard client.beginSubscription(key) else { continue }
                _ = lock.withLock { subscribers[key, default: []].insert(client.id) }
                added.append(key)
            }
            client.reply(Self.confirmation("subscribed", symbol: symbol, channels: channels))
            for key in added { await sendSnapshot(key, to: client) }
        }
    }

    /// One update message of the pipeline (`{"channel":…,"symbol":…,"data":…}`), to every subscriber of its
    /// symbol and channel. A message that is not one is ignored (counted as an update nonetheless).
    public func publish(_ message: String) {
        guard let key = Self.key(of: message) else { return }
        let outgoing = #"{"type":"update","# + message.dropFirst()
        lock.lock()
        counted.updates += 1
        let targets = (subscribers[key] ?? []).compactMap { clients[$0] }
        lock.unlock()
        var delivered = 0, closed = 0
        for client in targets {
            if client.offer(outgoing, for: key) { delivered += 1 } else if client.closeReason == .slow(capacity: queueCapacity) {
                closed += 1
                lock.lock(); for k in subscribers.keys { subscribers[k]?.remove(client.id) }; lock.unlock()
            }
        }
        lock.lock()
        counted.delivered += delivered
        counted.slowClientsClosed += closed
        lock.unlock()
    }

    /// After a gap in the updates: a new snapshot for every subscription of every client.
    public func resync() async {
        let all = lock.withLock { Array(clients.values) }
        for client in all {
            for key in client.resubscribeAll() { await sendSnapshot(key, to: client) }
        }
    }

    /// Monotonic time in ns (queue ages).
    public static func monotonicNanoseconds() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds) }

    /// Closes every client (the server is stopping).
    public func closeAll() {
        lock.lock()
        let all = Array(clients.values)
        lock.unlock()
        for client in all { client.close(.goingAway) }
    }

    private func sendSnapshot(_ key: UpdateKey, to client: UpdateClient) async {
        let message = await snapshot(key)
        client.completeSubscription(key, snapshot: message)
        lock.withLock { counted.snapshots += 1 }
    }

    // MARK: messages

    /// `{"type":"snapshot","channel":…,"symbol":…,"data":[…]}`; `data` is a JSON array text.
    public static func snapshotMessage(_ key: UpdateKey, data: String) -> String {
        #"{"type":"snapshot","channel":"# + quoted(key.channel) + #","symbol":"# + quoted(key.symbol) + #","data":"#
            + data + "}"
    }

    static func confirmation(_ type: String, symbol: String, channels: [String]) -> String {
        #"{"type":""# + type + #"","symbol":"# + quoted(symbol) + #","channels":["#
            + channels.map(quoted).joined(separator: ",") + "]}"
    }

    static func errorMessage(_ text: String) -> String { #"{"type":"error","message":"# + quoted(text) + "}" }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }

    /// The channel and symbol of an update message, read from its first two members as the pipeline
    /// writes them (`{"channel":"…","symbol":"…",…`); nil for anything else.
    static func key(of message: String) -> UpdateKey? {
        let channelHead = #"{"channel":""#, symbolHead = #"","symbol":""#
        guard message.hasPrefix(channelHead) else { return nil }
        let rest = message.dropFirst(channelHead.count)
        guard let channelEnd = rest.range(of: symbolHead) else { return nil }
        let channel = rest[..<channelEnd.lowerBound]
        let afterSymbol = rest[channelEnd.upperBound...]
        guard let symbolEnd = afterSymbol.firstIndex(of: "\"") else { return nil }
        let symbol = afterSymbol[..<symbolEnd]
        guard !channel.contains("\\"), !symbol.contains("\\") else { return nil }
        return UpdateKey(symbol: String(symbol), channel: String(channel))
    }
}
