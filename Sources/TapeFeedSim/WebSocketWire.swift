import Foundation
import TapeCore

/// What one client has asked for on one connection.
public struct Subscription: Sendable {
    /// Subscribed keys in the protocol's own spelling: Binance stream names (`btcusdt@trade`), Polygon
    /// channels (`T.AAPL`, `Q.*`), Finage symbols (`AAPL`).
    public var keys: Set<String> = []
    /// Polygon: the `auth` action succeeded. Binance and Finage authenticate at connect (or not at all).
    public var authenticated = false
    public init() {}
}

/// What the session does after a connect or a client message: messages to send, then maybe close.
public struct WireReply: Sendable {
    public var messages: [String] = []
    /// Close the connection after sending `messages` (an auth failure); `reason` names it in the log.
    public var closeReason: String? = nil
    public var authFailed = false
    public init(messages: [String] = [], closeReason: String? = nil, authFailed: Bool = false) {
        self.messages = messages
        self.closeReason = closeReason
        self.authFailed = authFailed
    }
}

/// One message ready to go on the wire, and how many market events it carries.
public struct WireMessage: Sendable {
    public var bytes: [UInt8]
    public var eventCount: Int
}

/// A vendor's WebSocket protocol: the handshake, the client's control messages, and how the feed's
/// messages look on the wire. One value per server, shared by every connection (no per-connection
/// state: that is the `Subscription`).
///
///     var subscription = Subscription()
///     let greeting = wire.open(query: ["streams": "btcusdt@trade"], subscription: &subscription)
///     let outgoing = wire.encode(message, for: subscription)   // [] when nothing of it is subscribed
public protocol WebSocketWire: Sendable {
    /// Whether a WebSocket upgrade on this path (without its query) is served.
    func serves(path: String) -> Bool
    /// Checks the connect request (its query) and returns the greeting; a `closeReason` refuses it.
    func open(query: [String: String], subscription: inout Subscription) -> WireReply
    /// Answers a text message from the client (subscribe, auth, …), updating the subscription.
    func reply(to text: String, subscription: inout Subscription) -> WireReply
    /// Whether data may flow: the client has subscribed (and authenticated where the vendor asks).
    func isReady(_ subscription: Subscription) -> Bool
    /// The wire messages for one feed message, only what the subscription covers (maybe none).
    func encode(_ message: SimMessage, for subscription: Subscription) -> [WireMessage]
    /// What a connection over `--max-connections` is told before it is closed.
    func tooManyConnections() -> WireReply
}

/// Small helpers shared by the encoders.
enum WireText {
    /// A client message parsed as a JSON object (nil when it is not one).
    static func object(_ text: String) -> [String: Any]? {
        guard let data = text.data(using: .utf8),
              let value = try? JSONSerialization.jsonObject(with: data) else { return nil }
        return value as? [String: Any]
    }

    /// Milliseconds of a ns time (vendors' wire times are ms).
    static func milliseconds(_ nanos: Nanos) -> Int64 { nanos >= 0 ? nanos / 1_000_000 : (nanos - 999_999) / 1_000_000 }

    /// Shortest round-trip decimal; an absent value (NaN) prints as 0.
    static func number(_ value: Double) -> String { value.isNaN ? "0" : Numbers.format(value) }

    static func quoted(_ text: String) -> String { JSONValue.quote(text) }
}
