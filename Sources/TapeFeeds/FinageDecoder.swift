import TapeCore

/// Decodes Finage real-time WebSocket messages (US stocks, ETFs, crypto, forex). Each message is ONE
/// JSON object; its kind is told by its keys (Finage sends no type field):
///
/// | keys | event |
/// |---|---|
/// | `s`, `p`, `q`, `t` | `.trade`: price `p`, size `q` (strings or numbers) |
/// | `s`, `a`/`ap`, `b`/`bp`, `t` | `.quote`: ask `a` (else `ap`), bid `b` (else `bp`), sizes `as`/`bs` (0: forex) |
/// | `status_code` or `message`/`Message`, no `s` | skipped `status` (connection, subscription, errors) |
///
/// Message shapes, verbatim examples from Finage's documentation (https://finage.co.uk/docs/websocket,
/// message-type models https://api.finage.co.uk/op/v1/wstype/list, as collected in the AsyncAPI of
/// https://github.com/api-evangelist/finage, asyncapi/finage-websocket-asyncapi.yml):
/// - connection status (https://finage.co.uk/docs/websocket, "After Connection"):
///   `{"status_code":200,"message":"authorizing","id":"e0fb1b68-…"}`, then
///   `{"status_code":200,"message":"connected to the adapter","id":"e0fb1b68-…"}`; errors are
///   `401 - invalid socket key` and alike. Finage's example client (https://github.com/FinageLTD/
///   python-websocket-connection, README "Output") also shows `{"Message":"Authorizing..."}`.
/// - Type2 forex quote with change: `{"s":"ZAR/EUR","a":0.05103271,"b":0.05100465,"dd":"0.0002",
///   "dc":"0.4016","ppms":false,"t":1680703141685}`
/// - Type3 crypto trade with change: `{"s":"DOGEUSD","p":"0.09649316","q":"22434.12483106","dc":"1.4147",
///   "dd":"0.0014","t":1680704192819}`
/// - Type4 US stock quote: `{"s":"TSLA","ap":189.3,"bp":189.27,"as":3,"bs":1,"t":1714403004431}`
/// - Type5 crypto trade: `{"s":"HBARUSD","p":"0.06648169","q":"340082.47302549","t":1680704234267}`
/// - Type6 forex quote: `{"s":"EUR/USD","a":1.09229,"b":1.09227,"t":1680705338000}`
/// - Type8 stock quote with change: `{"s":"GOOGL","a":167.989804,"as":13,"b":167.970446,"bs":4,
///   "dc":-1.9556,"dd":-3.2851,"t":1714403502895}`
/// - Type10 ETF quote with change: `{"s":"QQQ","a":458.610865,"as":1,"b":458.549806,"bs":1,"dc":-0.4196,
///   "dd":-1.924,"ppms":true,"t":1725449608827}`
///
/// `t` is Unix milliseconds (every documented example has 13 digits) → eventTime in ns, checked against
/// `TimeUtil`'s accepted range; a `t` outside it (a ns or µs value read as ms lands beyond 2200) is
/// `bad_timestamp`, never silently rescaled. `dc`/`dd`/`ppms` (daily change, price-per-ms flag) are not
/// used. Finage has no trade ids or sequence numbers: `sequence` is 0, side 0 (no aggressor), no
/// exchange or conditions.
///
/// Symbols are `venue:s` as sent (`finage:AAPL`, `finage:BTCUSD`, `finage:EUR/USD`), venue
/// `defaultVenue` unless the caller names another (nil: bare `s`). The market is not added: Finage's
/// symbols are already distinct across its stock, crypto and forex streams (forex pairs carry a `/`).
///
/// Outcomes: broken JSON, a missing/empty `s`, a missing `t` or trade size → `malformed_line`; a `t`
/// that is no positive integer or lies outside the accepted range → `bad_timestamp`; an unparsable
/// price or size → `bad_number`; valid JSON that is no object, or an object with `s` but neither a
/// trade nor a quote shape (or with no `s` and no status key) → `unknown_message`.
public struct FinageDecoder: WireDecoder {
    /// The venue prefix of Finage symbols unless the caller names another.
    public static let defaultVenue = "finage"
    public var namer: SymbolNamer

    public init(symbols: SymbolTable, venue: String? = FinageDecoder.defaultVenue) {
        namer = SymbolNamer(symbols: symbols, venue: venue)
    }

    /// The fields of one message that the decoder reads (byte ranges into the message).
    private struct Fields {
        typealias Value = JSONScanner.Value
        var symbol: Value? = nil
        var price: Value? = nil
        var quantity: Value? = nil
        var ask: Value? = nil
        var askPrice: Value? = nil
        var bid: Value? = nil
        var bidPrice: Value? = nil
        var askSize: Value? = nil
        var bidSize: Value? = nil
        var time: Value? = nil
        var hasStatus = false
    }

    public mutating func decode(_ message: UnsafeRawBufferPointer, receiveTime: Nanos,
                                into out: inout [MarketEvent]) -> DecodeOutcome {
        guard let base = message.baseAddress, message.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "empty message")
        }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var scanner = JSONScanner(bytes, message.count)
        guard let whole = scanner.value(), !scanner.failed else {
            return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(scanner.i)")
        }
        guard scanner.atEnd() else {
            return .malformed(reason: .malformedLine, detail: "trailing bytes at \(scanner.i)")
        }
        guard whole.kind == .object else { return .unknown(detail: "Finage message that is not a JSON object") }
        var object = JSONScanner(bytes, whole.start + whole.count, start: whole.start)
        guard object.beginObject() else { return .malformed(reason: .malformedLine, detail: "bad object") }
        var fields = Fields()
        while let key = object.nextKey() {
            guard let value = object.value() else { break }
            Self.assign(key, value, in: object, to: &fields)
        }
        if object.failed { return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(object.i)") }
        guard let symbolValue = fields.symbol else {
            if fields.hasStatus { return .skipped(.status) }
            return .unknown(detail: "Finage message without s, status_code or message")
        }
        return event(fields, symbolValue, object, receiveTime, &out)
    }

    private static func assign(_ key: (start: Int, count: Int), _ value: JSONScanner.Value, in object: JSONScanner,
                               to fields: inout Fields) {
        let start = key.start
        let count = key.count
        switch count {
        case 1:
            if object.equals(start, count, "s") { fields.symbol = value }
            else if object.equals(start, count, "p") { fields.price = value }
            else if object.equals(start, count, "q") { fields.quantity = value }
            else if object.equals(start, count, "a") { fields.ask = value }
            else if object.equals(start, count, "b") { fields.bid = value }
            else if object.equals(start, count, "t") { fields.time = value }
        case 2:
            if object.equals(start, count, "ap") { fields.askPrice = value }
            else if object.equals(start, count, "bp") { fields.bidPrice = value }
            else if object.equals(start, count, "as") { fields.askSize = value }
            else if object.equals(start, count, "bs") { fields.bidSize = value }
        default:
            if object.equals(start, count, "status_code") || object.equals(start, count, "message")
                || object.equals(start, count, "Message") {
                fields.hasStatus = true
            }
        }
    }

    private mutating func event(_ fields: Fields, _ symbolValue: JSONScanner.Value, _ object: JSONScanner,
                                _ receiveTime: Nanos, _ out: inout [MarketEvent]) -> DecodeOutcome {
        let isTrade = fields.price != nil
        let ask = fields.ask ?? fields.askPrice
        let bid = fields.bid ?? fields.bidPrice
        guard isTrade || (ask != nil && bid != nil) else {
            return .unknown(detail: "Finage message with s but neither p (trade) nor a/ap and b/bp (quote)")
        }
        guard symbolValue.kind == .string, symbolValue.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "s is not a non-empty string")
        }
        guard let timeValue = fields.time else { return .malformed(reason: .malformedLine, detail: "missing t") }
        guard timeValue.kind == .number, let milliseconds = object.int(timeValue), milliseconds > 0 else {
            let text = object.text(timeValue.start, timeValue.count)
            return .malformed(reason: .badTimestamp, detail: "t \(text) is not a positive integer (Unix ms)")
        }
        guard let eventTime = TimeUtil.acceptedNanos(milliseconds, unitNanos: 1_000_000) else {
            return .malformed(reason: .badTimestamp,
                              detail: "t \(milliseconds) ms is outside \(TimeUtil.acceptedRangeText)")
        }
        let symbol = namer.intern(object.p + symbolValue.start, symbolValue.count)
        if symbol == 0 {
            let text = SymbolTable.escaped(UnsafeRawBufferPointer(start: object.p + symbolValue.start,
                                                                  count: symbolValue.count))
            return .malformed(reason: .badSymbol, detail: "s \(text) is not UTF-8 text without control bytes")
        }
        if isTrade {
            guard let price = fields.price.flatMap(object.double) else {
                return .malformed(reason: .badNumber, detail: "bad p")
            }
            guard let quantity = fields.quantity else {
                return .malformed(reason: .malformedLine, detail: "trade without q (size)")
            }
            guard let size = object.double(quantity) else { return .malformed(reason: .badNumber, detail: "bad q") }
            out.append(MarketEvent(eventTime: eventTime, receiveTime: receiveTime, symbol: symbol, kind: .trade,
                                   price: price, size: size))
            return .decoded(count: 1)
        }
        guard let askPrice = ask.flatMap(object.double), let bidPrice = bid.flatMap(object.double) else {
            return .malformed(reason: .badNumber, detail: "bad a/ap or b/bp")
        }
        // Forex quotes carry no sizes: 0 (the validator accepts zero quote sizes). A size that is there
        // must parse.
        var askSize = 0.0
        var bidSize = 0.0
        if let value = fields.askSize {
            guard let parsed = object.double(value) else { return .malformed(reason: .badNumber, detail: "bad as") }
            askSize = parsed
        }
        if let value = fields.bidSize {
            guard let parsed = object.double(value) else { return .malformed(reason: .badNumber, detail: "bad bs") }
            bidSize = parsed
        }
        out.append(MarketEvent(eventTime: eventTime, receiveTime: receiveTime, symbol: symbol, kind: .quote,
                               bid: bidPrice, bidSize: bidSize, ask: askPrice, askSize: askSize))
        return .decoded(count: 1)
    }
}
