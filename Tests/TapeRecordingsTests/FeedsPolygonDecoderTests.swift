import XCTest
import TapeCore
import TapeFeeds

/// PolygonDecoder on the example messages of Polygon's (Massive's) stocks WebSocket documentation.
final class FeedsPolygonDecoderTests: XCTestCase {
    let trade = #"[{"ev":"T","sym":"MSFT","x":4,"i":"12345","z":3,"p":114.125,"s":100,"c":[0,12],"t":1536036818784,"q":3681328}]"#
    let quote = #"[{"ev":"Q","sym":"MSFT","bx":4,"bp":114.125,"bs":100,"ax":7,"ap":114.128,"as":160,"c":0,"i":[604],"t":1536036818784,"q":50385480,"z":3}]"#

    func testTradeAndQuote() {
        let syms = SymbolTable()
        var d = PolygonDecoder(symbols: syms, venue: "polygon")
        var out: [MarketEvent] = []
        XCTAssertEqual(d.decode(trade, receiveTime: 42, into: &out), .decoded(count: 1))
        XCTAssertEqual(d.decode(quote, receiveTime: 43, into: &out), .decoded(count: 1))
        let t = out[0], q = out[1]
        XCTAssertEqual(t.kind, .trade); XCTAssertEqual(syms.name(t.symbol), "polygon:MSFT")
        XCTAssertEqual(t.price, 114.125); XCTAssertEqual(t.size, 100)
        XCTAssertEqual(t.eventTime, 1_536_036_818_784_000_000); XCTAssertEqual(t.receiveTime, 42)
        XCTAssertEqual(t.sequence, 3_681_328); XCTAssertEqual(t.side, 0)
        XCTAssertEqual(syms.name(t.exchange), "4"); XCTAssertEqual(syms.name(t.conditions), "0,12")
        XCTAssertEqual(q.kind, .quote)
        XCTAssertEqual(q.bid, 114.125); XCTAssertEqual(q.bidSize, 100); XCTAssertEqual(q.ask, 114.128); XCTAssertEqual(q.askSize, 160)
        XCTAssertEqual(q.sequence, 50_385_480); XCTAssertEqual(syms.name(q.exchange), "4")
    }

    func testBatchStatusAndErrors() {
        var d = PolygonDecoder(symbols: SymbolTable(), venue: nil)
        var out: [MarketEvent] = []
        let both = "[" + trade.dropFirst().dropLast() + "," + quote.dropFirst().dropLast() + #",{"ev":"AM","sym":"MSFT"}]"#
        XCTAssertEqual(d.decode(both, receiveTime: 1, into: &out), .decoded(count: 2))
        XCTAssertEqual(out.map(\.kind), [.trade, .quote])
        XCTAssertEqual(d.decode(#"[{"ev":"status","status":"auth_success","message":"authenticated"}]"#, receiveTime: 1, into: &out), .skipped(.status))
        XCTAssertEqual(d.decode(#"[{"ev":"A","sym":"AAPL","v":5400}]"#, receiveTime: 1, into: &out), .skipped(.other))
        let n = out.count
        guard case .malformed = d.decode("[" + trade.dropFirst().dropLast() + #",{"ev":"T","sym":"X""#, receiveTime: 1, into: &out)
        else { return XCTFail() }
        XCTAssertEqual(out.count, n)  // nothing from a broken message
        guard case .malformed(.badNumber, _) = d.decode(trade.replacingOccurrences(of: "114.125", with: "\"x\""), receiveTime: 1, into: &out)
        else { return XCTFail() }
    }
}
