import Foundation
import TapeCore

/// Finage WebSocket (stocks, crypto, forex: one protocol, one server per market).
///
/// Connect: `wss://{subdomain}.finage.ws:{port}/?token={socket key}`; the simulator serves `/`.
/// After connecting the server sends `{"status_code":200,"message":"authorizing","id":"<uuid>"}` then
/// `{"status_code":200,"message":"connected to the adapter","id":"<uuid>"}`. Documented errors:
/// "401 - invalid socket key", "401 - use your socket key to connect"; the simulator sends them as
/// `{"status_code":401,"message":"invalid socket key"}` (wrong `--api-key`) or
/// `{"status_code":401,"message":"use your socket key to connect"}` (no token) and closes.
/// Subscribe: `{"action":"subscribe","symbols":"AAPL,TSLA"}`, unsubscribe `{"action":"unsubscribe",…}`
/// (no reply is documented, none is sent).
/// Docs: https://finage.co.uk/docs/websocket (connect, messages after connection, errors, subscribe)
///       https://api.finage.co.uk/op/v1/wstype/list (the message-type models quoted below)
///
/// Data, one JSON object per event, only for subscribed symbols:
/// trade → the crypto trade model (Type5) `{"s":"BTCUSDT","p":"61837.63","q":"0.02","t":ms}` (price and
/// quantity strings); quote → the US stock quote model (Type4) `{"s":…,"ap":num,"bp":num,"as":num,
/// "bs":num,"t":ms}`. Bars have no Finage WebSocket model and are not sent.
public struct FinageWire: WebSocketWire {
    /// The socket key clients must give as `token` (`--api-key`); nil accepts any (or none).
    public var apiKey: String?

    public init(apiKey: String?) { self.apiKey = apiKey }

    public func serves(path: String) -> Bool { path == "/" || path.isEmpty }

    public func open(query: [String: String], subscription: inout Subscription) -> WireReply {
        if let apiKey {
            guard let token = query["token"], !token.isEmpty else {
                return WireReply(messages: [Self.error("use your socket key to connect")],
                                 closeReason: "auth_failed", authFailed: true)
            }
            guard token == apiKey else {
                return WireReply(messages: [Self.error("invalid socket key")], closeReason: "auth_failed",
                                 authFailed: true)
            }
        }
        subscription.authenticated = true
        let identifier = WireText.quoted(UUID().uuidString.lowercased())
        return WireReply(messages: [#"{"status_code":200,"message":"authorizing","id":\#(identifier)}"#,
                                    #"{"status_code":200,"message":"connected to the adapter","id":\#(identifier)}"#])
    }

    public func reply(to text: String, subscription: inout Subscription) -> WireReply {
        guard let request = WireText.object(text), let action = request["action"] as? String else { return WireReply() }
        let symbols = (request["symbols"] as? String ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        if action == "subscribe" { subscription.keys.formUnion(symbols) }
        if action == "unsubscribe" { subscription.keys.subtract(symbols) }
        return WireReply()
    }

    public func isReady(_ subscription: Subscription) -> Bool {
        subscription.authenticated && !subscription.keys.isEmpty
    }

    public func encode(_ message: SimMessage, for subscription: Subscription) -> [WireMessage] {
        var out: [WireMessage] = []
        for event in message.events where subscription.keys.contains(event.symbol.uppercased()) {
            let symbol = WireText.quoted(event.symbol)
            let milliseconds = WireText.milliseconds(event.eventTime)
            let text: String
            switch event.kind {
            case .trade:
                text = #"{"s":\#(symbol),"p":"\#(WireText.number(event.price))","#
                    + #""q":"\#(WireText.number(event.size))","t":\#(milliseconds)}"#
            case .quote:
                text = #"{"s":\#(symbol),"ap":\#(WireText.number(event.ask)),"bp":\#(WireText.number(event.bid)),"#
                    + #""as":\#(WireText.number(event.askSize)),"bs":\#(WireText.number(event.bidSize)),"#
                    + #""t":\#(milliseconds)}"#
            case .bar, .clockTick:
                continue
            }
            out.append(WireMessage(bytes: Array(text.utf8), eventCount: 1))
        }
        return out
    }

    public func tooManyConnections() -> WireReply {
        WireReply(messages: [#"{"status_code":429,"message":"too many connections"}"#], closeReason: "max_connections")
    }

    static func error(_ message: String) -> String {
        #"{"status_code":401,"message":\#(WireText.quoted(message))}"#
    }
}
