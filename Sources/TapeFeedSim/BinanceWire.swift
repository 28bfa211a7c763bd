import TapeCore

/// Binance combined streams.
///
/// Connect: `GET /stream?streams=<stream>/<stream>…` (spot `wss://stream.binance.com:9443/stream`,
/// USDⓈ-M `wss://fstream.binance.com/stream`, COIN-M `wss://dstream.binance.com/stream`; the simulator
/// serves all three on `/stream`). Stream names are lower-case `<symbol>@<kind>`.
/// Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
///       https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
///
/// Live subscription (same pages, "Live Subscribing/Unsubscribing to streams"):
/// `{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}` → `{"result":null,"id":1}`;
/// `UNSUBSCRIBE` likewise; `{"method":"LIST_SUBSCRIPTIONS","id":3}` → `{"result":["btcusdt@trade"],"id":3}`;
/// a request it cannot read → `{"code":2,"msg":"Invalid request: …","id":…}` (the documented error shape).
///
/// Data: every message is `{"stream":"<name>","data":<payload>}`. A raw Binance capture is served
/// verbatim (only `E`/`T` rewritten by the shift); other inputs are encoded per event:
/// trade → `<sym>@trade` `{"e":"trade","E":ms,"s":…,"t":id,"p":"…","q":"…","T":ms,"m":bool,"M":true}`;
/// quote → `<sym>@bookTicker` in the futures shape `{"e":"bookTicker","u":id,"s":…,"b":"…","B":"…",
/// "a":"…","A":"…","T":ms,"E":ms}`; bar → `<sym>@kline_1m` `{"e":"kline","E":ms,"s":…,"k":{…,"x":true}}`.
public struct BinanceWire: WebSocketWire {
    public init() {}

    public func serves(path: String) -> Bool { path == "/stream" || path == "/stream/" }

    public func open(query: [String: String], subscription: inout Subscription) -> WireReply {
        for stream in (query["streams"] ?? "").split(separator: "/") where !stream.isEmpty {
            subscription.keys.insert(stream.lowercased())
        }
        subscription.authenticated = true
        return WireReply()
    }

    public func reply(to text: String, subscription: inout Subscription) -> WireReply {
        guard let request = WireText.object(text) else {
            return WireReply(messages: [#"{"code":2,"msg":"Invalid request: not a JSON object","id":null}"#])
        }
        let identifier = Self.identifierText(request["id"])
        let method = request["method"] as? String ?? ""
        let params = (request["params"] as? [Any] ?? []).compactMap { $0 as? String }.map { $0.lowercased() }
        switch method {
        case "SUBSCRIBE":
            subscription.keys.formUnion(params)
        case "UNSUBSCRIBE":
            subscription.keys.subtract(params)
        case "LIST_SUBSCRIPTIONS":
            let list = subscription.keys.sorted().map(WireText.quoted).joined(separator: ",")
            return WireReply(messages: [#"{"result":[\#(list)],"id":\#(identifier)}"#])
        default:
            let detail = WireText.quoted("Invalid request: unknown method \(method)")
            return WireReply(messages: [#"{"code":2,"msg":\#(detail),"id":\#(identifier)}"#])
        }
        return WireReply(messages: [#"{"result":null,"id":\#(identifier)}"#])
    }

    public func isReady(_ subscription: Subscription) -> Bool { !subscription.keys.isEmpty }

    public func encode(_ message: SimMessage, for subscription: Subscription) -> [WireMessage] {
        if let raw = message.raw {
            guard let stream = message.stream, subscription.keys.contains(stream) else { return [] }
            return [WireMessage(bytes: raw, eventCount: message.eventCount)]
        }
        var out: [WireMessage] = []
        for event in message.events {
            let symbol = event.symbol.lowercased()
            let stream: String
            let payload: String
            let eventMilliseconds = WireText.milliseconds(event.eventTime)
            let receiveMilliseconds = WireText.milliseconds(message.receiveTime)
            switch event.kind {
            case .trade:
                stream = symbol + "@trade"
                payload = #"{"e":"trade","E":\#(receiveMilliseconds),"s":\#(WireText.quoted(event.symbol)),"#
                    + #""t":\#(event.sequence),"p":"\#(WireText.number(event.price))","#
                    + #""q":"\#(WireText.number(event.size))","T":\#(eventMilliseconds),"#
                    + #""m":\#(event.side == 2),"M":true}"#
            case .quote:
                stream = symbol + "@bookticker"
                payload = #"{"e":"bookTicker","u":\#(event.sequence),"s":\#(WireText.quoted(event.symbol)),"#
                    + #""b":"\#(WireText.number(event.bid))","B":"\#(WireText.number(event.bidSize))","#
                    + #""a":"\#(WireText.number(event.ask))","A":"\#(WireText.number(event.askSize))","#
                    + #""T":\#(eventMilliseconds),"E":\#(receiveMilliseconds)}"#
            case .bar:
                stream = symbol + "@kline_1m"
                let start = eventMilliseconds - 60_000
                payload = #"{"e":"kline","E":\#(receiveMilliseconds),"s":\#(WireText.quoted(event.symbol)),"#
                    + #""k":{"t":\#(start),"T":\#(eventMilliseconds - 1),"s":\#(WireText.quoted(event.symbol)),"#
                    + #""i":"1m","f":-1,"L":-1,"o":"\#(WireText.number(event.open))","#
                    + #""c":"\#(WireText.number(event.price))","h":"\#(WireText.number(event.high))","#
                    + #""l":"\#(WireText.number(event.low))","v":"\#(WireText.number(event.size))","#
                    + #""n":0,"x":true,"q":"0","V":"0","Q":"0","B":"0"}}"#
            case .clockTick:
                continue
            }
            guard subscription.keys.contains(stream) else { continue }
            let streamName = event.kind == .quote ? symbol + "@bookTicker" : stream
            let text = #"{"stream":"\#(streamName)","data":\#(payload)}"#
            out.append(WireMessage(bytes: Array(text.utf8), eventCount: 1))
        }
        return out
    }

    public func tooManyConnections() -> WireReply {
        WireReply(messages: [#"{"code":-1,"msg":"Too many connections"}"#], closeReason: "max_connections")
    }

    /// The request's `id` as JSON text (a number or a string, echoed as given; null when absent).
    static func identifierText(_ value: Any?) -> String {
        if let number = value as? Int { return String(number) }
        if let text = value as? String { return WireText.quoted(text) }
        return "null"
    }

    /// The `stream` of a combined-stream message, lower-cased; nil when the message is not one
    /// (`{"stream":"<name>",…` at its start, as Binance writes it).
    public static func streamName(_ message: [UInt8]) -> String? {
        let prefix = Array(#"{"stream":""#.utf8)
        guard message.count > prefix.count, message.starts(with: prefix) else { return nil }
        let start = prefix.count
        guard let end = message[start...].firstIndex(of: UInt8(ascii: "\"")), end > start else { return nil }
        return String(decoding: message[start..<end], as: UTF8.self).lowercased()
    }

    /// Market events in a message of this stream: 1 for trades and best bid/ask, 0 for depth and others.
    public static func eventCount(stream: String) -> Int {
        guard let at = stream.firstIndex(of: "@") else { return 0 }
        let kind = stream[stream.index(after: at)...]
        return kind == "trade" || kind == "aggtrade" || kind == "bookticker" ? 1 : 0
    }

    /// `message` with every `"E":<digits>` and `"T":<digits>` (Binance's event and trade/transaction
    /// times, ms) moved by `milliseconds`. Other bytes are untouched; prices are strings, so no price
    /// can match.
    public static func shiftTimes(_ message: [UInt8], byMilliseconds milliseconds: Int64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 8)
        var index = 0
        let quote = UInt8(ascii: "\""), colon = UInt8(ascii: ":")
        while index < message.count {
            let byte = message[index]
            if byte == quote, index + 4 < message.count,
               message[index + 1] == UInt8(ascii: "E") || message[index + 1] == UInt8(ascii: "T"),
               message[index + 2] == quote, message[index + 3] == colon {
                var digitEnd = index + 4
                var value: Int64 = 0
                while digitEnd < message.count, message[digitEnd] >= 0x30, message[digitEnd] <= 0x39,
                      digitEnd - index - 4 < 18 {
                    value = value * 10 + Int64(message[digitEnd] - 0x30)
                    digitEnd += 1
                }
                if digitEnd > index + 4 {
                    out.append(contentsOf: message[index..<(index + 4)])
                    out.append(contentsOf: Array(String(value + milliseconds).utf8))
                    index = digitEnd
                    continue
                }
            }
            out.append(byte)
            index += 1
        }
        return out
    }
}
