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

    private func trade(_ receiveTime: Nanos, id: Int64, size: Double = 1, symbol: SymbolID = 1) -> MarketEvent {
        MarketEvent.trade(eventTime: receiveTime, receiveTime: receiveTime, symbol: symbol, price: 10, size: size,
                          sequence: id)
    }

    /// Issue 9, defect 6: ids 3735683260 then 3735683259, 1 ns apart (real BTCUSDT trades delivered out of
    /// order) are two trades; only an id actually seen again is a duplicate.
    func testOutOfOrderIdsAreNotDuplicates() {
        let collector = RejectCollector()
        let validator = EventValidator(file: "f.gz", rejects: collector)
        var first = trade(1_723_161_254_347_673_567, id: 3_735_683_260)
        var second = trade(1_723_161_254_347_673_568, id: 3_735_683_259)
        var again = trade(1_723_161_254_347_673_569, id: 3_735_683_259)
        var againFirst = trade(1_723_161_254_347_673_570, id: 3_735_683_260)
        XCTAssertTrue(validator.check(&first, line: 1))
        XCTAssertTrue(validator.check(&second, line: 2))
        XCTAssertFalse(validator.check(&again, line: 3))
        XCTAssertFalse(validator.check(&againFirst, line: 4))
        XCTAssertEqual(collector.rejects.map(\.reason), [.duplicate, .duplicate])
        XCTAssertEqual(collector.rejects.map(\.line), [3, 4])
    }

    /// The id window is bounded: an id that left the window (4096 ids later) is accepted again.
    func testDuplicateWindowIsBounded() {
        let validator = EventValidator(file: "f.gz", rejects: RejectCollector())
        for id in 1...Int64(5000) {
            var event = trade(1_000 + id, id: id)
            XCTAssertTrue(validator.check(&event, line: Int(id)))
        }
        var inWindow = trade(10_000, id: 5000 - 4095)
        XCTAssertFalse(validator.check(&inWindow, line: 5001))
        var leftWindow = trade(10_001, id: 5000 - 4096)
        XCTAssertTrue(validator.check(&leftWindow, line: 5002))
    }

    /// Issue 9, defect 5: one far-future receive time is rejected (`time_jump`) and does not become the
    /// reference: every later valid record is accepted.
    func testOneFarFutureReceiveTimeDoesNotRejectTheRest() {
        let collector = RejectCollector()
        let validator = EventValidator(file: "f.gz", rejects: collector)
        let start: Nanos = 1_723_161_600_000_000_000
        let year: Nanos = 365 * 86_400 * 1_000_000_000
        var accepted = 0
        for index in 0..<100 {
            let time = index == 10 ? start + year : start + Nanos(index) * 1_000_000
            var event = trade(time, id: Int64(index + 1))
            if validator.check(&event, line: index + 1) { accepted += 1 }
        }
        XCTAssertEqual(accepted, 99)
        XCTAssertEqual(collector.rejects.map(\.reason), [.timeJump])
        XCTAssertEqual(collector.rejects.map(\.line), [11])
    }

    /// A real gap longer than the limit (a feed down for 8 days) costs its first record; the next one
    /// confirms the jump and the stream goes on from there. Weekends (2 days) are under the limit.
    func testConfirmedForwardJumpIsAccepted() {
        let collector = RejectCollector()
        let validator = EventValidator(file: "bars.gz", rejects: collector, checkDuplicates: false)
        let day: Nanos = 86_400 * 1_000_000_000
        let minute: Nanos = 60_000_000_000
        let times: [Nanos] = [0, minute, 2 * day, 2 * day + minute, 10 * day, 10 * day + minute, 10 * day + 2 * minute]
        let results = times.enumerated().map { index, time in
            var bar = MarketEvent.bar(endTime: time, receiveTime: time, symbol: 1, open: 10, high: 10, low: 10,
                                      close: 10, volume: 1, sequence: Int64(index))
            return validator.check(&bar, line: index + 1)
        }
        XCTAssertEqual(results, [true, true, true, true, false, true, true])
        XCTAssertEqual(collector.rejects.map(\.reason), [.timeJump])
        XCTAssertEqual(validator.maxReceiveTime, 10 * day + 2 * minute)
    }

    /// Issue 9, defect 8: sizes and prices above the sanity bounds are `out_of_range`, naming value and bound.
    func testValuesAboveTheBoundsAreOutOfRange() {
        let collector = RejectCollector()
        let validator = EventValidator(file: "f.gz", rejects: collector)
        var hugeSize = trade(1_000, id: 1, size: 1e308)
        var hugePrice = MarketEvent.trade(eventTime: 1_001, receiveTime: 1_001, symbol: 1, price: 2e9, size: 1,
                                          sequence: 2)
        var hugeQuote = MarketEvent.quote(eventTime: 0, receiveTime: 1_002, symbol: 1, bid: 10, bidSize: 1e13,
                                          ask: 11, askSize: 1, sequence: 1)
        var hugeVolume = MarketEvent.bar(endTime: 0, receiveTime: 1_003, symbol: 2, open: 10, high: 10, low: 10,
                                         close: 10, volume: 1e300, sequence: 1)
        var fine = trade(1_004, id: 3, size: 1e12)
        XCTAssertFalse(validator.check(&hugeSize, line: 1))
        XCTAssertFalse(validator.check(&hugePrice, line: 2))
        XCTAssertFalse(validator.check(&hugeQuote, line: 3))
        XCTAssertFalse(validator.check(&hugeVolume, line: 4))
        XCTAssertTrue(validator.check(&fine, line: 5))
        XCTAssertEqual(collector.rejects.map(\.reason), [.outOfRange, .outOfRange, .outOfRange, .outOfRange])
        XCTAssertEqual(collector.rejects[0].message, "f.gz:1: out_of_range: size 1e+308 above the bound 1000000000000")
    }
}
