import Foundation
import TapeCore
import TapeSinks

/// What the connectors of a session tell it: state changes (logged, one line each, naming the peer),
/// reconnects and errors per feed, and a fatal failure (bad credentials) that stops the session.
/// Thread-safe: connectors run on their own tasks.
public final class ConnectorReport: @unchecked Sendable {
    public struct Counters: Sendable, Codable, Equatable {
        public var connects = 0
        public var reconnects = 0
        public var errors = 0
        public var timeouts = 0
        public init() {}
    }

    /// A failure that stops the session (bad key, refused subscription).
    public struct Fatal: Error, CustomStringConvertible, Sendable {
        public let feed: String
        public let peer: String
        public let detail: String
        public var description: String { "\(feed) (\(peer)): \(detail)" }
        public init(feed: String, peer: String, detail: String) {
            self.feed = feed
            self.peer = peer
            self.detail = detail
        }
    }

    private let lock = NSLock()
    private var counters: [Counters]
    private var fatalFailure: Fatal? = nil
    private let log: @Sendable (String) -> Void
    /// Told of every lost connection and fatal failure (the alerts); they return at once.
    private let listeners: [any FaultListener]

    public init(feeds: Int, log: @escaping @Sendable (String) -> Void, listeners: [any FaultListener] = []) {
        counters = Array(repeating: Counters(), count: feeds)
        self.log = log
        self.listeners = listeners
    }

    /// One log line: `feed peer: state`.
    public func state(_ feed: Int, _ name: String, peer: String, _ text: String) {
        log("\(name) \(peer): \(MessageText.escaped(text))")
    }

    /// A connection ended (closed by the peer, silent, an error): logged as `state`, and a
    /// `feed_disconnected` fault for the listeners. The connector reconnects.
    public func disconnected(_ feed: Int, _ name: String, peer: String, _ text: String) {
        state(feed, name, peer: peer, text)
        for listener in listeners {
            listener.fault(PipelineFault(rule: PipelineFault.feedDisconnected, subject: name, severity: .warning,
                                         detail: "\(peer): \(MessageText.escaped(text)); reconnecting"))
        }
    }

    /// A feed that keeps failing without being disconnected (a REST poller whose attempts bring no data):
    /// logged as `state`, and a `feed_failing` fault for the listeners. The connector goes on trying.
    public func failing(_ feed: Int, _ name: String, peer: String, _ text: String) {
        state(feed, name, peer: peer, text)
        for listener in listeners {
            listener.fault(PipelineFault(rule: PipelineFault.feedFailing, subject: name, severity: .warning,
                                         detail: "\(peer): \(MessageText.escaped(text))"))
        }
    }

    public func connected(_ feed: Int) {
        lock.withLock {
            if counters[feed].connects > 0 { counters[feed].reconnects += 1 }
            counters[feed].connects += 1
        }
    }

    public func error(_ feed: Int, timeout: Bool = false) {
        lock.withLock {
            counters[feed].errors += 1
            if timeout { counters[feed].timeouts += 1 }
        }
    }

    public func fail(_ failure: Fatal) {
        lock.withLock { if fatalFailure == nil { fatalFailure = failure } }
        log("\(failure.feed) \(failure.peer): fatal: \(MessageText.escaped(failure.detail))")
        for listener in listeners {
            listener.fault(PipelineFault(rule: PipelineFault.feedRefused, subject: failure.feed, severity: .critical,
                                         detail: "\(failure.peer): \(MessageText.escaped(failure.detail)); the session stops"))
        }
    }

    public var fatal: Fatal? { lock.withLock { fatalFailure } }
    public var snapshot: [Counters] { lock.withLock { counters } }
}
