import Foundation
import TapeCore
import TapeSinks
import TapeLogging

/// What the connectors of a session tell it: state changes (logged, one event each, naming the feed and the
/// peer), reconnects and errors per feed, and a fatal failure (bad credentials) that stops the session; and
/// each feed's state for `/ready` (`dependencies`: up while connected, down from a lost connection, a failing
/// spell or a fatal failure, connecting before the first connection). Thread-safe: connectors run on their
/// own tasks.
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
    private let logger: Logger
    private let trackers: [DependencyTracker]
    /// Told of every lost connection and fatal failure (the alerts); they return at once.
    private let listeners: [any FaultListener]

    /// `feeds`: each feed's name and peer, in feed index order. `logger` gets one event per state change
    /// (`tape: NAME PEER: STATE`, metadata `feed`, `peer`, `state`).
    public init(feeds: [(name: String, peer: String)], logger: Logger, listeners: [any FaultListener] = []) {
        counters = Array(repeating: Counters(), count: feeds.count)
        trackers = feeds.map { DependencyTracker(name: "feed \($0.name)", status: .connecting, peer: $0.peer) }
        self.logger = logger
        self.listeners = listeners
    }

    /// `feeds` feeds named `feed-0` …; `log` gets the text lines (a test's capture).
    public convenience init(feeds: Int, log: @escaping @Sendable (String) -> Void, listeners: [any FaultListener] = []) {
        self.init(feeds: (0..<feeds).map { (name: "feed-\($0)", peer: "?") },
                  logger: TapeLogging.logger(label: "tape.feed", log), listeners: listeners)
    }

    /// Each feed as the session sees it now (any thread).
    public var dependencies: [DependencyState] { trackers.map(\.current) }

    /// One log line: `tape: feed peer: state`.
    public func state(_ feed: Int, _ name: String, peer: String, _ text: String, level: Logger.Level = .info) {
        logger.log(level: level, "tape: \(name) \(peer): \(MessageText.escaped(text))",
                   metadata: ["feed": .string(name), "peer": .string(peer), "state": .string(text)])
    }

    /// A connection ended (closed by the peer, silent, an error): logged as `state`, and a
    /// `feed_disconnected` fault for the listeners. The connector reconnects.
    public func disconnected(_ feed: Int, _ name: String, peer: String, _ text: String) {
        trackers[feed].set(.down, detail: text)
        state(feed, name, peer: peer, text, level: .warning)
        for listener in listeners {
            listener.fault(PipelineFault(rule: PipelineFault.feedDisconnected, subject: name, severity: .warning,
                                         detail: "\(peer): \(MessageText.escaped(text)); reconnecting"))
        }
    }

    /// A feed that keeps failing without being disconnected (a REST poller whose attempts bring no data):
    /// logged as `state`, and a `feed_failing` fault for the listeners. The connector goes on trying.
    public func failing(_ feed: Int, _ name: String, peer: String, _ text: String) {
        trackers[feed].set(.down, detail: text)
        state(feed, name, peer: peer, text, level: .warning)
        for listener in listeners {
            listener.fault(PipelineFault(rule: PipelineFault.feedFailing, subject: name, severity: .warning,
                                         detail: "\(peer): \(MessageText.escaped(text))"))
        }
    }

    /// A failing feed brings data again (a REST poller's answer with data after a failing spell).
    public func recovered(_ feed: Int, _ name: String, peer: String) {
        guard trackers[feed].set(.up) else { return }
        state(feed, name, peer: peer, "data again", level: .notice)
    }

    public func connected(_ feed: Int) {
        trackers[feed].set(.up)
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
        for tracker in trackers where tracker.current.name == "feed \(failure.feed)" { tracker.set(.down, detail: failure.detail) }
        logger.error("tape: \(failure.feed) \(failure.peer): fatal: \(MessageText.escaped(failure.detail))",
                     metadata: ["feed": .string(failure.feed), "peer": .string(failure.peer), "error": .string(failure.detail)])
        for listener in listeners {
            listener.fault(PipelineFault(rule: PipelineFault.feedRefused, subject: failure.feed, severity: .critical,
                                         detail: "\(failure.peer): \(MessageText.escaped(failure.detail)); the session stops"))
        }
    }

    public var fatal: Fatal? { lock.withLock { fatalFailure } }
    public var snapshot: [Counters] { lock.withLock { counters } }
}
