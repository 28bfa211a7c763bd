import Foundation
import TapeLogging
import Synchronization
import TapeCore

/// The simulator's counters, per connection and in total; written as JSON to `--stats` (atomically:
/// a temporary file renamed over the old one) every second and at exit. Every connection state change
/// is also logged, one line on standard error naming the peer.
///
/// JSON: `{"protocol", "listening", "speed", "shift_ns", "recording": {messages, events,
/// first_receive_time_ns, last_receive_time_ns, rejected, skipped}, "totals": {connections,
/// connections_open, connections_refused, drops, stalls, messages_served, events_served, garbled,
/// messages_skipped_disconnected, auth_failures, http_requests, http_429, http_throttled,
/// http_auth_failures}, "done", "connections": [{id, peer, path, state, close_reason, messages_served,
/// events_served, garbled, stalls, opened_ns, closed_ns}]}`.
public final class SimStats: Sendable {
    public struct Connection: Sendable {
        public var identifier: Int
        public var peer: String
        public var path: String
        public var state = "open"
        public var closeReason = ""
        public var messagesServed = 0
        public var eventsServed = 0
        public var garbled = 0
        public var stalls = 0
        public var openedNanos: Nanos
        public var closedNanos: Nanos? = nil
    }

    public struct Totals: Sendable {
        public var connections = 0
        public var connectionsOpen = 0
        public var connectionsRefused = 0
        public var drops = 0
        public var stalls = 0
        public var messagesServed = 0
        public var eventsServed = 0
        public var garbled = 0
        public var authFailures = 0
        public var httpRequests = 0
        public var http429 = 0
        public var httpThrottled = 0
        public var httpAuthFailures = 0
    }

    /// The most connections listed one by one in the JSON (the totals count them all).
    public static let listedConnectionsMaximum = 1_000

    private struct State {
        var totals = Totals()
        var connections: [Connection] = []
        var listening = ""
        var done = false
    }
    private let state = Mutex(State())
    private let header: [(String, JSONValue)]
    private let timeline: SimTimeline?

    public init(feedProtocol: FeedProtocol, speed: Double?, recording: SimRecording, timeline: SimTimeline?) {
        self.timeline = timeline
        header = [
            ("protocol", .string(feedProtocol.rawValue)),
            ("speed", speed.map { .number($0) } ?? .string("max")),
            ("shift_ns", .int(recording.shiftNanos)),
            ("recording", .object([
                ("messages", .int(Int64(recording.messages.count))),
                ("events", .int(Int64(recording.eventCount))),
                ("first_receive_time_ns", recording.firstReceiveTime.map { .int($0) } ?? .null),
                ("last_receive_time_ns", recording.lastReceiveTime.map { .int($0) } ?? .null),
                ("rejected", .int(Int64(recording.rejected))),
                ("skipped", .int(Int64(recording.skipped))),
            ])),
        ]
    }

    public func setListening(_ address: String) { state.withLock { $0.listening = address } }
    public func setDone() { state.withLock { $0.done = true } }

    /// A connection opened; returns its identifier (1, 2, …).
    public func opened(peer: String, path: String) -> Int {
        let identifier = state.withLock { state -> Int in
            state.totals.connections += 1
            state.totals.connectionsOpen += 1
            let identifier = state.totals.connections
            if state.connections.count < Self.listedConnectionsMaximum {
                state.connections.append(Connection(identifier: identifier, peer: peer, path: path,
                                                    openedNanos: Self.wallNanos()))
            }
            return identifier
        }
        log("connection \(identifier) from \(peer) open: \(path)",
            ["connection": .stringConvertible(identifier), "peer": .string(peer), "event": "open", "path": .string(path)])
        return identifier
    }

    public func refused(peer: String) {
        state.withLock { $0.totals.connectionsRefused += 1 }
        log("connection from \(peer) refused: over --max-connections", ["peer": .string(peer), "event": "refused"],
            level: .warning)
    }

    /// A state change of connection `identifier` worth a log line (subscribed, stalled, resumed, …).
    public func note(_ identifier: Int, peer: String, _ what: String) {
        log("connection \(identifier) from \(peer) \(what)",
            ["connection": .stringConvertible(identifier), "peer": .string(peer), "event": .string(what)])
    }

    public func served(_ identifier: Int, events: Int, garbled: Bool) {
        state.withLock { state in
            state.totals.messagesServed += 1
            state.totals.eventsServed += events
            if garbled { state.totals.garbled += 1 }
            update(&state, identifier) { connection in
                connection.messagesServed += 1
                connection.eventsServed += events
                if garbled { connection.garbled += 1 }
            }
        }
    }

    public func stalled(_ identifier: Int) {
        state.withLock { state in
            state.totals.stalls += 1
            update(&state, identifier) { $0.stalls += 1 }
        }
    }

    public func authFailed() { state.withLock { $0.totals.authFailures += 1 } }

    /// Connection `identifier` closed: `reason` is `drop` (forced), `client`, `auth_failed`, `shutdown`…
    public func closed(_ identifier: Int, peer: String, reason: String) {
        let served = state.withLock { state -> Int in
            state.totals.connectionsOpen -= 1
            if reason == "drop" { state.totals.drops += 1 }
            var served = 0
            update(&state, identifier) { connection in
                connection.state = "closed"
                connection.closeReason = reason
                connection.closedNanos = Self.wallNanos()
                served = connection.messagesServed
            }
            return served
        }
        log("connection \(identifier) from \(peer) closed (\(reason)) after \(served) messages",
            ["connection": .stringConvertible(identifier), "peer": .string(peer), "event": "closed",
             "reason": .string(reason), "messages": .stringConvertible(served)])
    }

    public enum HTTPOutcome: Sendable { case served, throttled, tooManyRequests, authFailed }

    public func httpRequest(_ outcome: HTTPOutcome) {
        state.withLock { state in
            state.totals.httpRequests += 1
            switch outcome {
            case .served: break
            case .throttled: state.totals.httpThrottled += 1
            case .tooManyRequests: state.totals.http429 += 1
            case .authFailed: state.totals.httpAuthFailures += 1
            }
        }
    }

    public var totals: Totals { state.withLock { $0.totals } }

    /// The statistics as JSON text.
    public func render() -> String {
        let skipped = timeline?.skippedWhileDisconnected ?? 0
        let (totals, connections, listening, done) = state.withLock {
            ($0.totals, $0.connections, $0.listening, $0.done)
        }
        let totalsObject: JSONValue = .object([
            ("connections", .int(Int64(totals.connections))),
            ("connections_open", .int(Int64(totals.connectionsOpen))),
            ("connections_refused", .int(Int64(totals.connectionsRefused))),
            ("drops", .int(Int64(totals.drops))),
            ("stalls", .int(Int64(totals.stalls))),
            ("messages_served", .int(Int64(totals.messagesServed))),
            ("events_served", .int(Int64(totals.eventsServed))),
            ("garbled", .int(Int64(totals.garbled))),
            ("messages_skipped_disconnected", .int(Int64(skipped))),
            ("auth_failures", .int(Int64(totals.authFailures))),
            ("http_requests", .int(Int64(totals.httpRequests))),
            ("http_429", .int(Int64(totals.http429))),
            ("http_throttled", .int(Int64(totals.httpThrottled))),
            ("http_auth_failures", .int(Int64(totals.httpAuthFailures))),
        ])
        let list: [JSONValue] = connections.map { connection in
            .object([
                ("id", .int(Int64(connection.identifier))),
                ("peer", .string(connection.peer)),
                ("path", .string(connection.path)),
                ("state", .string(connection.state)),
                ("close_reason", .string(connection.closeReason)),
                ("messages_served", .int(Int64(connection.messagesServed))),
                ("events_served", .int(Int64(connection.eventsServed))),
                ("garbled", .int(Int64(connection.garbled))),
                ("stalls", .int(Int64(connection.stalls))),
                ("opened_ns", .int(connection.openedNanos)),
                ("closed_ns", connection.closedNanos.map { .int($0) } ?? .null),
            ])
        }
        let document: JSONValue = .object(header + [("listening", .string(listening)), ("totals", totalsObject),
                                                    ("done", .bool(done)), ("connections", .array(list))])
        return document.render() + "\n"
    }

    /// Writes the statistics to `path` atomically (temporary file, then rename).
    public func write(to path: String) throws {
        try Data(render().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func update(_ state: inout State, _ identifier: Int, _ change: (inout Connection) -> Void) {
        let index = identifier - 1
        guard index >= 0, index < state.connections.count else { return }
        change(&state.connections[index])
    }

    /// One event of feed-sim's (`tape.feed-sim`), `feed-sim: LINE` in text.
    private func log(_ line: String, _ metadata: Logger.Metadata, level: Logger.Level = .info) {
        Self.logger.log(level: level, "feed-sim: \(line)", metadata: metadata)
    }

    static let logger = Logger(label: "tape.feed-sim")

    static func wallNanos() -> Nanos { Nanos(Date().timeIntervalSince1970 * 1e9) }
}
