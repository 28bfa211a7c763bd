import Foundation
import TapeCore

/// One dependency of a process (a server it talks to, a feed) as the process sees it now: an entry of the
/// process's `/ready` (docs/operations.md).
public struct DependencyState: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Answering.
        case up
        /// Gone: the last attempt failed, the process retries (`detail` says what failed).
        case down
        /// Not reached yet (starting).
        case connecting
    }

    /// `postgres`, `kafka`, `redis`, `influx`, `feed binance-spot`.
    public var name: String
    public var status: Status
    /// Whether the process is not ready while this dependency is not up (a metrics store is not required:
    /// the pipeline runs on without it).
    public var required: Bool
    /// `host:port[/database]`, never a password.
    public var peer: String?
    public var detail: String?
    /// Wall time (ns since the epoch) of the last change of `status`, when known.
    public var sinceNanoseconds: Int64?

    public init(name: String, status: Status, required: Bool = true, peer: String? = nil, detail: String? = nil,
                sinceNanoseconds: Int64? = nil) {
        self.name = name
        self.status = status
        self.required = required
        self.peer = peer
        self.detail = detail
        self.sinceNanoseconds = sinceNanoseconds
    }

    /// The entry's JSON: `{"status":"down","required":true,"server":"127.0.0.1:55432/tape","detail":"…","since":"…"}`.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("status", .string(status.rawValue)), ("required", .bool(required))]
        if let peer { members.append(("server", .string(peer))) }
        if let detail { members.append(("detail", .string(detail))) }
        if let sinceNanoseconds { members.append(("since", .string(JSONLogLine.timestamp(sinceNanoseconds)))) }
        return .object(members)
    }
}

/// A process's dependencies, each reported by the part that talks to it (a provider, read when asked: a
/// store's writer thread, the consumer loop, the feed connectors keep their own state under their own
/// locks). What `/ready` of `--metrics-listen` serves: 200 when every required dependency is up, else 503.
///
/// ```swift
/// let readiness = Readiness()
/// readiness.register("postgres") { [sink] in [sink.dependencyState] }
/// readiness.isReady          // false while PostgreSQL is away
/// readiness.report().json.renderCompact()   // {"status":"not_ready","dependencies":{"postgres":{"status":"down",…}}}
/// ```
public final class Readiness: @unchecked Sendable {
    /// Providers a process may register (a bound on a registration loop gone wrong).
    public static let providersMax = 1_024
    private let lock = NSLock()
    private var providers: [(key: String, provider: @Sendable () -> [DependencyState])] = []

    public init() {}

    /// Adds the provider under `key`, replacing one registered under the same key.
    public func register(_ key: String, _ provider: @escaping @Sendable () -> [DependencyState]) {
        lock.withLock {
            if let index = providers.firstIndex(where: { $0.key == key }) {
                providers[index].provider = provider
            } else {
                precondition(providers.count < Self.providersMax, "at most \(Self.providersMax) readiness providers")
                providers.append((key, provider))
            }
        }
    }

    public func remove(_ key: String) {
        lock.withLock { providers.removeAll { $0.key == key } }
    }

    /// Every dependency, in registration order (providers are called outside the lock).
    public var states: [DependencyState] {
        let current = lock.withLock { providers.map(\.provider) }
        return current.flatMap { $0() }
    }

    /// Every required dependency is up.
    public var isReady: Bool { Self.isReady(states) }

    public static func isReady(_ states: [DependencyState]) -> Bool {
        states.allSatisfy { !$0.required || $0.status == .up }
    }

    /// `{"status":"ready"|"not_ready","dependencies":{NAME:{…},…}}` — the shape of `tape serve`'s `/ready` — and
    /// whether it says ready (one reading of the providers for both). A name seen twice gets `#2`, `#3` … after it.
    public func report() -> (ready: Bool, json: JSONValue) {
        let states = self.states
        var seen: [String: Int] = [:]
        let members = states.map { state -> (String, JSONValue) in
            let count = seen[state.name, default: 0] + 1
            seen[state.name] = count
            return (count == 1 ? state.name : "\(state.name)#\(count)", state.json)
        }
        let ready = Self.isReady(states)
        return (ready, .object([("status", .string(ready ? "ready" : "not_ready")), ("dependencies", .object(members))]))
    }
}

/// A dependency's state kept by the part that talks to it, thread-safe: set on its own thread, read by
/// `/ready`. Remembers when the status last changed.
public final class DependencyTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var state: DependencyState

    public init(name: String, status: DependencyState.Status = .connecting, required: Bool = true, peer: String? = nil) {
        state = DependencyState(name: name, status: status, required: required, peer: peer,
                                sinceNanoseconds: WallTime.now())
    }

    public var current: DependencyState { lock.withLock { state } }

    /// Sets the status (and the detail: nil clears it); returns whether the status changed.
    @discardableResult
    public func set(_ status: DependencyState.Status, detail: String? = nil) -> Bool {
        lock.withLock {
            let changed = state.status != status
            state.status = status
            state.detail = detail
            if changed { state.sinceNanoseconds = WallTime.now() }
            return changed
        }
    }

    public func set(peer: String) {
        lock.withLock { state.peer = peer }
    }
}
