import Foundation
import TapeCore

/// Polygon.io / Massive stocks WebSocket.
///
/// Connect: `GET /stocks` (real-time `wss://socket.massive.com/stocks`, delayed
/// `wss://delayed.massive.com/stocks`; formerly `wss://socket.polygon.io/stocks`). The server greets
/// with `[{"ev":"status","status":"connected","message":"Connected Successfully"}]`.
/// Auth: `{"action":"auth","params":"KEY"}` → `[{"ev":"status","status":"auth_success","message":"authenticated"}]`,
/// or, with a wrong key (`--api-key`), `[{"ev":"status","status":"auth_failed","message":"authentication failed"}]`
/// and the server closes the connection.
/// Subscribe: `{"action":"subscribe","params":"T.AAPL,Q.AAPL,AM.*"}` → one
/// `{"ev":"status","status":"success","message":"subscribed to: T.AAPL"}` per channel, in one array;
/// `unsubscribe` likewise (`unsubscribed to: …`). Subscribing before auth → status `error`, "not authorized".
/// Docs: https://massive.com/docs/websocket/stocks/trades (connection, auth, subscription, `T` fields)
///       https://massive.com/docs/websocket/stocks/quotes (`Q` fields)
///       https://massive.com/docs/websocket/stocks/aggregates-per-minute (`AM` fields)
///
/// Data: a JSON array of events of one receive time, each only if its channel is subscribed:
/// trade → `{"ev":"T","sym":…,"x":int,"p":…,"s":…,"c":[int…],"t":ms,"q":seq}` (`x`/`c` only when the
/// recording has numeric ones); quote → `{"ev":"Q","sym":…,"bx":int,"bp":…,"bs":…,"ax":int,"ap":…,"as":…,
/// "t":ms,"q":seq}`; bar → `{"ev":"AM","sym":…,"v":…,"o":…,"c":…,"h":…,"l":…,"s":startMs,"e":endMs}`.
public struct PolygonWire: WebSocketWire {
    /// The key clients must send (`--api-key`); nil accepts any key.
    public var apiKey: String?

    public init(apiKey: String?) { self.apiKey = apiKey }

    public func serves(path: String) -> Bool { path == "/stocks" || path == "/stocks/" }

    public func open(query: [String: String], subscription: inout Subscription) -> WireReply {
        WireReply(messages: [Self.status("connected", "Connected Successfully")])
    }

    public func reply(to text: String, subscription: inout Subscription) -> WireReply {
        guard let request = WireText.object(text), let action = request["action"] as? String else {
            return WireReply(messages: [Self.status("error", "invalid message")])
        }
        let params = request["params"] as? String ?? ""
        switch action {
        case "auth":
            if let apiKey, params != apiKey {
                return WireReply(messages: [Self.status("auth_failed", "authentication failed")],
                                 closeReason: "auth_failed", authFailed: true)
            }
            subscription.authenticated = true
            return WireReply(messages: [Self.status("auth_success", "authenticated")])
        case "subscribe", "unsubscribe":
            guard subscription.authenticated else {
                return WireReply(messages: [Self.status("error", "not authorized")])
            }
            let channels = params.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            let verb = action == "subscribe" ? "subscribed to" : "unsubscribed to"
            for channel in channels {
                if action == "subscribe" {
                    subscription.keys.insert(channel)
                } else {
                    subscription.keys.remove(channel)
                }
            }
            let statuses = channels.map { Self.statusObject("success", "\(verb): \($0)") }
            return WireReply(messages: ["[" + statuses.joined(separator: ",") + "]"])
        default:
            return WireReply(messages: [Self.status("error", "unknown action \(action)")])
        }
    }

    public func isReady(_ subscription: Subscription) -> Bool {
        subscription.authenticated && !subscription.keys.isEmpty
    }

    public func encode(_ message: SimMessage, for subscription: Subscription) -> [WireMessage] {
        var objects: [String] = []
        for event in message.events {
            let channel: String
            switch event.kind {
            case .trade: channel = "T"
            case .quote: channel = "Q"
            case .bar: channel = "AM"
            case .clockTick: continue
            }
            guard subscription.keys.contains(channel + ".*") || subscription.keys.contains(channel + "." + event.symbol)
            else { continue }
            objects.append(Self.object(event))
        }
        if objects.isEmpty { return [] }
        let text = "[" + objects.joined(separator: ",") + "]"
        return [WireMessage(bytes: Array(text.utf8), eventCount: objects.count)]
    }

    public func tooManyConnections() -> WireReply {
        WireReply(messages: [Self.status("max_connections", "Maximum number of websocket connections exceeded.")],
                  closeReason: "max_connections")
    }

    /// One event as a Polygon object.
    static func object(_ event: SimEvent) -> String {
        let symbol = WireText.quoted(event.symbol)
        let milliseconds = WireText.milliseconds(event.eventTime)
        switch event.kind {
        case .trade:
            var text = #"{"ev":"T","sym":\#(symbol)"#
            if let exchange = Int(event.exchange) { text += #","x":\#(exchange)"# }
            text += #","p":\#(WireText.number(event.price)),"s":\#(WireText.number(event.size))"#
            let codes = event.conditions.split(separator: ",").compactMap { Int($0) }
            if !codes.isEmpty { text += #","c":[\#(codes.map(String.init).joined(separator: ","))]"# }
            return text + #","t":\#(milliseconds),"q":\#(event.sequence)}"#
        case .quote:
            var text = #"{"ev":"Q","sym":\#(symbol)"#
            if let exchange = Int(event.exchange) { text += #","bx":\#(exchange),"ax":\#(exchange)"# }
            return text + #","bp":\#(WireText.number(event.bid)),"bs":\#(WireText.number(event.bidSize)),"#
                + #""ap":\#(WireText.number(event.ask)),"as":\#(WireText.number(event.askSize)),"#
                + #""t":\#(milliseconds),"q":\#(event.sequence)}"#
        case .bar, .clockTick:
            return #"{"ev":"AM","sym":\#(symbol),"v":\#(WireText.number(event.size)),"#
                + #""o":\#(WireText.number(event.open)),"c":\#(WireText.number(event.price)),"#
                + #""h":\#(WireText.number(event.high)),"l":\#(WireText.number(event.low)),"#
                + #""s":\#(milliseconds - 60_000),"e":\#(milliseconds)}"#
        }
    }

    static func statusObject(_ status: String, _ message: String) -> String {
        #"{"ev":"status","status":\#(WireText.quoted(status)),"message":\#(WireText.quoted(message))}"#
    }

    static func status(_ status: String, _ message: String) -> String { "[" + statusObject(status, message) + "]" }
}
