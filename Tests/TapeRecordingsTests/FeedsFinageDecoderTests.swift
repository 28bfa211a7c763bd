import TapeCore
import TapeFeeds
import XCTest

/// FinageDecoder on the example messages of Finage's WebSocket documentation (message-type models of
/// https://api.finage.co.uk/op/v1/wstype/list and https://finage.co.uk/docs/websocket, as collected in
/// api-evangelist/finage asyncapi/finage-websocket-asyncapi.yml; the BTCUSD lines from Finage's own
/// example client, FinageLTD/python-websocket-connection). Expected values are read off the samples.
final class FeedsFinageDecoderTests: XCTestCase {
    // Trades.
    let cryptoTrade = #"{"s":"HBARUSD","p":"0.06648169","q":"340082.47302549","t":1680704234267}"#
    let cryptoTradeWithChange =
        #"{"s":"DOGEUSD","p":"0.09649316","q":"22434.12483106","dc":"1.4147","dd":"0.0014","t":1680704192819}"#
    let clientExampleTrade = #"{"s":"BTCUSD","p":"31538.52000000","q":"0.00527200","t":1626875142626}"#
    // Quotes.
    let stockQuote = #"{"s":"TSLA","ap":189.3,"bp":189.27,"as":3,"bs":1,"t":1714403004431}"#
    let stockQuoteWithChange =
        #"{"s":"GOOGL","a":167.989804,"as":13,"b":167.970446,"bs":4,"dc":-1.9556,"dd":-3.2851,"t":1714403502895}"#
    let etfQuoteWithChange = #"{"s":"QQQ","a":458.610865,"as":1,"b":458.549806,"bs":1,"dc":-0.4196,"dd":-1.924,"#
        + #""ppms":true,"t":1725449608827}"#
    let forexQuote = #"{"s":"EUR/USD","a":1.09229,"b":1.09227,"t":1680705338000}"#
    let forexQuoteWithChange =
        #"{"s":"ZAR/EUR","a":0.05103271,"b":0.05100465,"dd":"0.0002","dc":"0.4016","ppms":false,"t":1680703141685}"#
    // Connection status.
    let authorizing = #"{"status_code":200,"message":"authorizing","id":"e0fb1b68-1905-48e3-9fd2-d482bf5e1f0a"}"#
    let connected =
        #"{"status_code":200,"message":"connected to the adapter","id":"e0fb1b68-1905-48e3-9fd2-d482bf5e1f0a"}"#
    let clientAuthorizing = #"{"Message":"Authorizing..."}"#
    let clientConnected = #"{"status_code":200,"message":"Connected to the Cryptocurrency Market source."}"#
    /// The documented error text ("401 - invalid socket key") in the status shape.
    let invalidKey = #"{"status_code":401,"message":"invalid socket key"}"#

    static let receiveTime: Nanos = 1_714_403_004_500_000_123

    func decode(_ message: String, venue: String? = FinageDecoder.defaultVenue,
                symbols: SymbolTable = SymbolTable()) -> (DecodeOutcome, [MarketEvent]) {
        var decoder = FinageDecoder(symbols: symbols, venue: venue)
        var events: [MarketEvent] = []
        let outcome = decoder.decode(message, receiveTime: Self.receiveTime, into: &events)
        return (outcome, events)
    }

    func testCryptoTrades() throws {
        let symbols = SymbolTable()
        for (message, name, price, size, eventTime) in [
            (cryptoTrade, "finage:HBARUSD", 0.06648169, 340082.47302549, Int64(1_680_704_234_267_000_000)),
            (cryptoTradeWithChange, "finage:DOGEUSD", 0.09649316, 22434.12483106, 1_680_704_192_819_000_000),
            (clientExampleTrade, "finage:BTCUSD", 31538.52, 0.005272, 1_626_875_142_626_000_000),
        ] {
            let (outcome, events) = decode(message, symbols: symbols)
            XCTAssertEqual(outcome, .decoded(count: 1), message)
            let trade = try XCTUnwrap(events.first)
            XCTAssertEqual(trade.kind, .trade)
            XCTAssertEqual(symbols.name(trade.symbol), name)
            XCTAssertEqual(trade.price, price)
            XCTAssertEqual(trade.size, size)
            XCTAssertEqual(trade.eventTime, eventTime)
            XCTAssertEqual(trade.receiveTime, Self.receiveTime)
            XCTAssertEqual(trade.sequence, 0)
            XCTAssertEqual(trade.side, 0)
            XCTAssertEqual(trade.source, 0)
            XCTAssertEqual(trade.exchange, 0)
        }
    }

    func testStockAndEtfQuotes() throws {
        let symbols = SymbolTable()
        for (message, name, bid, bidSize, ask, askSize, eventTime) in [
            (stockQuote, "finage:TSLA", 189.27, 1.0, 189.3, 3.0, Int64(1_714_403_004_431_000_000)),
            (stockQuoteWithChange, "finage:GOOGL", 167.970446, 4, 167.989804, 13, 1_714_403_502_895_000_000),
            (etfQuoteWithChange, "finage:QQQ", 458.549806, 1, 458.610865, 1, 1_725_449_608_827_000_000),
        ] {
            let (outcome, events) = decode(message, symbols: symbols)
            XCTAssertEqual(outcome, .decoded(count: 1), message)
            let quote = try XCTUnwrap(events.first)
            XCTAssertEqual(quote.kind, .quote)
            XCTAssertEqual(symbols.name(quote.symbol), name)
            XCTAssertEqual(quote.bid, bid)
            XCTAssertEqual(quote.bidSize, bidSize)
            XCTAssertEqual(quote.ask, ask)
            XCTAssertEqual(quote.askSize, askSize)
            XCTAssertEqual(quote.eventTime, eventTime)
            XCTAssertEqual(quote.receiveTime, Self.receiveTime)
            XCTAssertEqual(quote.sequence, 0)
        }
    }

    func testForexQuotesHaveNoSizes() throws {
        let symbols = SymbolTable()
        for (message, name, bid, ask, eventTime) in [
            (forexQuote, "finage:EUR/USD", 1.09227, 1.09229, Int64(1_680_705_338_000_000_000)),
            (forexQuoteWithChange, "finage:ZAR/EUR", 0.05100465, 0.05103271, 1_680_703_141_685_000_000),
        ] {
            let (outcome, events) = decode(message, symbols: symbols)
            XCTAssertEqual(outcome, .decoded(count: 1), message)
            let quote = try XCTUnwrap(events.first)
            XCTAssertEqual(quote.kind, .quote)
            XCTAssertEqual(symbols.name(quote.symbol), name)
            XCTAssertEqual(quote.bid, bid)
            XCTAssertEqual(quote.ask, ask)
            XCTAssertEqual(quote.bidSize, 0)
            XCTAssertEqual(quote.askSize, 0)
            XCTAssertEqual(quote.eventTime, eventTime)
        }
    }

    func testStatusMessagesAreSkipped() {
        for message in [authorizing, connected, clientAuthorizing, clientConnected, invalidKey] {
            let (outcome, events) = decode(message)
            XCTAssertEqual(outcome, .skipped(.status), message)
            XCTAssertTrue(events.isEmpty)
        }
    }

    func testSymbolNamingWithAndWithoutVenue() {
        let symbols = SymbolTable()
        var events: [MarketEvent] = []
        var bare = FinageDecoder(symbols: symbols, venue: nil)
        var named = FinageDecoder(symbols: symbols, venue: "crypto")
        var standard = FinageDecoder(symbols: symbols)
        XCTAssertEqual(bare.decode(cryptoTrade, receiveTime: 1, into: &events), .decoded(count: 1))
        XCTAssertEqual(named.decode(cryptoTrade, receiveTime: 2, into: &events), .decoded(count: 1))
        XCTAssertEqual(standard.decode(forexQuote, receiveTime: 3, into: &events), .decoded(count: 1))
        XCTAssertEqual(events.map { symbols.name($0.symbol) }, ["HBARUSD", "crypto:HBARUSD", "finage:EUR/USD"])
    }

    func testUnknownMessages() {
        for message in [
            #"[{"s":"AAPL","p":1,"q":1,"t":1680704234267}]"#,      // valid JSON, not an object
            #"{"id":"e0fb1b68","event":"heartbeat_like"}"#,        // no s, no status key
            #"{"s":"AAPL","o":170.1,"h":171,"t":1680704234267}"#,  // s, but neither trade nor quote keys
            #"{"s":"AAPL","a":170.1,"t":1680704234267}"#,          // ask without bid
        ] {
            let (outcome, events) = decode(message)
            guard case .unknown = outcome else { return XCTFail("\(message): \(outcome)") }
            XCTAssertTrue(events.isEmpty)
        }
    }

    func testMalformedMessages() {
        let oneSecondMs = "1680704234267"
        let cases: [(String, RejectReason)] = [
            ("", .malformedLine),
            (#"{"s":"HBARUSD","p":"0.06648169","q":"#, .malformedLine),                  // cut
            (cryptoTrade + "x", .malformedLine),                                           // trailing bytes
            (#"{"s":"HBARUSD","p":"0.06648169","t":"# + oneSecondMs + "}", .malformedLine),  // trade without q
            (#"{"s":"","p":"1","q":"1","t":"# + oneSecondMs + "}", .malformedLine),          // empty s
            (#"{"s":"HBARUSD","p":"1","q":"1"}"#, .malformedLine),                         // no t
            (#"{"s":"HBARUSD","p":"abc","q":"1","t":"# + oneSecondMs + "}", .badNumber),
            (#"{"s":"HBARUSD","p":"1","q":"x1","t":"# + oneSecondMs + "}", .badNumber),
            (#"{"s":"TSLA","ap":"?","bp":189.27,"as":3,"bs":1,"t":1714403004431}"#, .badNumber),
            (#"{"s":"TSLA","ap":189.3,"bp":189.27,"as":"three","bs":1,"t":1714403004431}"#, .badNumber),
            // The ns value of the same instant read as ms lands after 2200: rejected, never rescaled.
            (#"{"s":"HBARUSD","p":"1","q":"1","t":1680704234267000000}"#, .badTimestamp),
            (#"{"s":"HBARUSD","p":"1","q":"1","t":"1680704234267"}"#, .badTimestamp),   // t as a string
            (#"{"s":"HBARUSD","p":"1","q":"1","t":-5}"#, .badTimestamp),
            // A raw control byte inside a JSON string is broken JSON (RFC 8259 requires it escaped).
            ("{\"s\":\"HB\u{01}AR\",\"p\":\"1\",\"q\":\"1\",\"t\":1680704234267}", .malformedLine),
        ]
        for (message, reason) in cases {
            let (outcome, events) = decode(message)
            guard case .malformed(let got, _) = outcome else { return XCTFail("\(message): \(outcome)") }
            XCTAssertEqual(got, reason, message)
            XCTAssertTrue(events.isEmpty, message)
        }
    }

    /// A symbol that is not UTF-8 text is never interned: `bad_symbol`, with the bytes escaped.
    func testSymbolThatIsNotUTF8IsABadSymbol() {
        var message = Array(#"{"s":"HB"#.utf8)
        message.append(0xFF)
        message += Array(#"AR","p":"1","q":"1","t":1680704234267}"#.utf8)
        var decoder = FinageDecoder(symbols: SymbolTable())
        var events: [MarketEvent] = []
        let outcome = message.withUnsafeBytes { decoder.decode($0, receiveTime: 1, into: &events) }
        guard case .malformed(.badSymbol, let detail) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertTrue(detail.contains(#"\xFF"#), detail)
        XCTAssertTrue(events.isEmpty)
    }

    /// Values are not validated here: NaN decodes as NaN for the validator to name (`nan_value`).
    func testNonFiniteValuesAreLeftToTheValidator() throws {
        let (outcome, events) = decode(#"{"s":"HBARUSD","p":"NaN","q":"1","t":1680704234267}"#)
        XCTAssertEqual(outcome, .decoded(count: 1))
        XCTAssertTrue(try XCTUnwrap(events.first).price.isNaN)
    }
}
