import XCTest
import TapeCore
import TapeRecordings
import TapeIO
import TapeSources

/// EventValidator rules on hand-made events (expected reasons and lines written out by hand).
final class ValidatorTests: XCTestCase {
    func testValidatorRules() {
        let c = RejectCollector()
        let v = EventValidator(file: "f.gz", rejects: c, backwardsTolerance: 1000)
        func t(_ p: Double, _ s: Double, seq: Int64, rt: Nanos = 10_000, sym: SymbolID = 1) -> Bool {
            var e = MarketEvent.trade(eventTime: rt, receiveTime: rt, symbol: sym, price: p, size: s, sequence: seq)
            return v.check(&e, line: Int(seq))
        }
        XCTAssertTrue(t(10, 1, seq: 1))
        XCTAssertFalse(t(.nan, 1, seq: 2)); XCTAssertFalse(t(.infinity, 1, seq: 3))
        XCTAssertFalse(t(-1, 1, seq: 4)); XCTAssertFalse(t(0, 1, seq: 5)); XCTAssertFalse(t(10, 0, seq: 6))
        XCTAssertFalse(t(10, 1, seq: 1))               // duplicate id
        XCTAssertTrue(t(10, 1, seq: 1, sym: 2))        // other symbol: own id space
        XCTAssertTrue(t(10, 1, seq: 7, rt: 9_000))     // 1000 back: within tolerance
        XCTAssertFalse(t(10, 1, seq: 8, rt: 8_999))    // 1001 back
        XCTAssertTrue(t(10, 1, seq: 9, rt: 20_000))
        var q = MarketEvent.quote(eventTime: 0, receiveTime: 20_000, symbol: 1, bid: 10, bidSize: 0, ask: 9.5, askSize: 1, sequence: 1)
        XCTAssertFalse(v.check(&q, line: 20))
        q.ask = 10; XCTAssertTrue(v.check(&q, line: 21))  // locked book accepted, zero size accepted
        q.sequence = 2; q.bid = 0; XCTAssertFalse(v.check(&q, line: 22))
        var b = MarketEvent.bar(endTime: 0, receiveTime: 20_000, symbol: 3, open: 10, high: 9, low: 8, close: 9, volume: .nan, sequence: 1)
        XCTAssertFalse(v.check(&b, line: 30))
        b.high = 10; XCTAssertTrue(v.check(&b, line: 31))
        XCTAssertEqual(c.rejects.map(\.reason), [.nanValue, .nanValue, .negativeValue, .zeroValue, .zeroValue,
                                                 .duplicate, .timeBackwards, .crossedQuote, .zeroValue, .outOfRange])
        XCTAssertEqual(c.rejects.map(\.line), [2, 3, 4, 5, 6, 1, 8, 20, 22, 30])
        XCTAssertEqual(c.rejects[7].message, "f.gz:20: crossed_quote: bid 10 > ask 9.5")
        XCTAssertEqual(v.rejected, 10)
    }
}
