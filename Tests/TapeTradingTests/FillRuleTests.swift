import XCTest
import TapeCore
import TapeGraph
import TapeTrading

/// The fill rules on small scripted books. Every expected price, size and time is worked out by hand from the
/// script (docs/backtesting.md, "Fill rules").
final class FillRuleTests: XCTestCase {
    let symbol: SymbolID = 1
    let ms: Nanos = 1_000_000

    final class Venue {
        let simulator: ExecutionSimulator
        var fills: [FillRecord] = []
        var orders: [OrderRecord] = []
        init(_ config: ExecutionConfig = ExecutionConfig()) { simulator = ExecutionSimulator(config: config) }
        func drain() {
            simulator.takeReports { report in
                switch report {
                case .fill(let fill): self.fills.append(fill)
                case .order(let record): self.orders.append(record)
                }
            }
        }
        func event(_ event: MarketEvent) {
            simulator.onEvent(event)
            drain()
        }
        func submit(_ request: OrderRequest, at time: Nanos) -> OrderID {
            let id = simulator.submit(request, at: time)
            drain()
            return id
        }
        func statuses(_ id: OrderID) -> [String] { orders.filter { $0.orderID == id }.map(\.status.name) }
    }

    func quote(_ time: Nanos, bid: Double, bidSize: Double = 10, ask: Double, askSize: Double = 10) -> MarketEvent {
        .quote(eventTime: time, receiveTime: time, symbol: symbol, bid: bid, bidSize: bidSize, ask: ask, askSize: askSize)
    }

    func trade(_ time: Nanos, _ price: Double, _ size: Double = 1) -> MarketEvent {
        .trade(eventTime: time, receiveTime: time, symbol: symbol, price: price, size: size)
    }

    func bar(end: Nanos, open: Double, high: Double, low: Double, close: Double) -> MarketEvent {
        .bar(endTime: end, receiveTime: end, symbol: symbol, open: open, high: high, low: low, close: close, volume: 1)
    }

    func testMarketBuyTakesTheAskLimitedByDisplayedSizeAndWaitsForTheNextQuotes() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, bidSize: 2, ask: 100, askSize: 1.5))
        let id = venue.submit(.market(symbol, .buy, quantity: 4), at: 20)
        venue.event(quote(30, bid: 100, ask: 101, askSize: 1))
        venue.event(quote(40, bid: 101, ask: 102, askSize: 5))
        venue.event(quote(50, bid: 101, ask: 103, askSize: 5))
        XCTAssertEqual(venue.fills.map(\.price), [100, 101, 102])
        XCTAssertEqual(venue.fills.map(\.quantity), [1.5, 1, 1.5])
        XCTAssertEqual(venue.fills.map(\.time), [20, 30, 40])
        XCTAssertEqual(venue.fills.map(\.rule), [.quote, .quote, .quote])
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted", "partially_filled", "partially_filled", "filled"])
        XCTAssertEqual(venue.orders.last?.filledQuantity, 4)
    }

    func testDisplayedSizeIsConsumedByEarlierOrdersAtTheSameQuote() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100, askSize: 3))
        _ = venue.submit(.market(symbol, .buy, quantity: 2), at: 20)
        _ = venue.submit(.market(symbol, .buy, quantity: 2), at: 20)
        venue.event(quote(30, bid: 99, ask: 100.5, askSize: 3))
        XCTAssertEqual(venue.fills.map(\.quantity), [2, 1, 1])
        XCTAssertEqual(venue.fills.map(\.price), [100, 100, 100.5])
    }

    func testLimitBelowTheMarketNeverFills() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100))
        let id = venue.submit(.limit(symbol, .buy, quantity: 1, price: 90), at: 11)
        for (step, ask) in [99.0, 97, 95, 91].enumerated() {
            venue.event(quote(20 + Nanos(step), bid: ask - 1, ask: ask))
        }
        venue.event(trade(30, 91))
        venue.event(trade(31, 90))  // at the limit: not through it
        XCTAssertEqual(venue.fills, [])
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted"])
        XCTAssertEqual(venue.simulator.openQuantity(symbol: symbol), 1)
    }

    func testFillOnTouchFillsAtTheLimitWhenATradePrintsThere() {
        var config = ExecutionConfig()
        config.fillOnTouch = true
        let venue = Venue(config)
        venue.event(trade(10, 95, 3))
        _ = venue.submit(.limit(symbol, .buy, quantity: 5, price: 90), at: 11)
        venue.event(trade(20, 90, 2))
        XCTAssertEqual(venue.fills.map(\.price), [90])
        XCTAssertEqual(venue.fills.map(\.quantity), [2])  // the print's size
        XCTAssertEqual(venue.fills.map(\.rule), [.trade])
    }

    func testRestingLimitFillsAtItsPriceWhenTheQuoteCrossesAndATradeThroughIt() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100))
        _ = venue.submit(.limit(symbol, .buy, quantity: 3, price: 99.5), at: 11)
        venue.event(quote(20, bid: 98, ask: 99.25, askSize: 1))
        venue.event(trade(30, 99.4, 0.5))
        venue.event(trade(31, 99.5, 5))   // at the limit: no fill
        venue.event(trade(32, 99.0, 5))
        XCTAssertEqual(venue.fills.map(\.price), [99.5, 99.5, 99.5])
        XCTAssertEqual(venue.fills.map(\.quantity), [1, 0.5, 1.5])
        XCTAssertEqual(venue.fills.map(\.rule), [.quote, .trade, .trade])
        XCTAssertEqual(venue.fills.map(\.time), [20, 30, 32])
    }

    func testMarketableLimitOnArrivalTakesTheBetterAsk() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100, askSize: 2))
        _ = venue.submit(.limit(symbol, .buy, quantity: 1, price: 101), at: 11)
        venue.event(quote(20, bid: 99, ask: 100))
        XCTAssertEqual(venue.fills.map(\.price), [100])
        XCTAssertEqual(venue.fills.map(\.time), [11])
    }

    func testStopTriggersOnTradeThroughAndFillsLikeAMarketOrder() {
        let venue = Venue()
        venue.event(trade(10, 100))
        let id = venue.submit(.stop(symbol, .buy, quantity: 2, stopPrice: 105), at: 11)
        venue.event(trade(20, 101, 5))
        venue.event(trade(21, 104.9, 5))
        XCTAssertEqual(venue.fills, [])
        venue.event(trade(22, 106, 1.5))   // triggers: fills at the print, limited by its size
        venue.event(trade(23, 107, 5))     // now a market order: the next print
        XCTAssertEqual(venue.fills.map(\.price), [106, 107])
        XCTAssertEqual(venue.fills.map(\.quantity), [1.5, 0.5])
        XCTAssertEqual(venue.fills.map(\.rule), [.trade, .trade])
        XCTAssertEqual(venue.statuses(id).last, "filled")
    }

    func testSellStopTriggersOnTheBidWithQuotes() {
        let venue = Venue()
        venue.event(quote(10, bid: 100, ask: 100.5))
        _ = venue.submit(.stop(symbol, .sell, quantity: 1, stopPrice: 95), at: 11)
        venue.event(quote(20, bid: 96, ask: 96.5))
        XCTAssertEqual(venue.fills, [])
        venue.event(quote(30, bid: 94.5, ask: 95))
        XCTAssertEqual(venue.fills.map(\.price), [94.5])
        XCTAssertEqual(venue.fills.map(\.side), [.sell])
        XCTAssertEqual(venue.fills.map(\.time), [30])
    }

    func testIOCRemainderIsCanceledOnArrival() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100, askSize: 1))
        let id = venue.submit(.market(symbol, .buy, quantity: 3, timeInForce: .ioc), at: 11)
        venue.event(quote(20, bid: 99, ask: 100, askSize: 10))
        XCTAssertEqual(venue.fills.map(\.quantity), [1])
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted", "partially_filled", "canceled"])
        XCTAssertEqual(venue.orders.last?.time, 11)
        XCTAssertEqual(venue.simulator.openOrderCount, 0)
    }

    func testIOCLimitThatDoesNotCrossIsCanceledWithoutFill() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100))
        let id = venue.submit(.limit(symbol, .buy, quantity: 1, price: 99.5, timeInForce: .ioc), at: 11)
        venue.event(quote(20, bid: 98, ask: 99))
        XCTAssertEqual(venue.fills, [])
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted", "canceled"])
    }

    func testDayOrderExpiresAtTheEndOfItsUTCDay() {
        let venue = Venue()
        let day: Nanos = 86_400 * 1_000_000_000
        let morning = 19_723 * day + 10 * 3_600 * 1_000_000_000   // 2024-01-01T10:00Z
        venue.event(quote(morning, bid: 99, ask: 100))
        let id = venue.submit(.limit(symbol, .buy, quantity: 1, price: 90, timeInForce: .day), at: morning + 1)
        let midnight = 19_724 * day                                  // 2024-01-02T00:00Z
        venue.event(quote(midnight - 1, bid: 99, ask: 100))          // 23:59:59.999999999: still open
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted"])
        venue.event(quote(midnight + 5, bid: 89, ask: 89.5))         // next day: expired before this quote
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted", "expired"])
        XCTAssertEqual(venue.orders.last?.time, midnight)
        XCTAssertEqual(venue.fills, [])
    }

    func testLatencyFillsAgainstTheBookAsItIsAfterTheLatency() {
        let venue = Venue(ExecutionConfig(latencyNanos: 5 * ms))
        venue.event(quote(0, bid: 99, ask: 100))
        let id = venue.submit(.market(symbol, .buy, quantity: 1), at: 1 * ms)   // arrives at 6 ms
        venue.event(quote(3 * ms, bid: 100, ask: 101))
        venue.event(quote(6 * ms, bid: 101, ask: 102))   // received at the arrival instant: seen by the order
        XCTAssertEqual(venue.fills, [])
        venue.event(quote(8 * ms, bid: 102, ask: 103))
        XCTAssertEqual(venue.fills.map(\.price), [102])
        XCTAssertEqual(venue.fills.map(\.time), [6 * ms])
        XCTAssertEqual(venue.fills.map(\.arrivalTime), [6 * ms])
        XCTAssertEqual(venue.orders.filter { $0.orderID == id }.map(\.time), [1 * ms, 6 * ms, 6 * ms])
    }

    func testCancelTravelsWithLatencyAndLosesToAFillBeforeItArrives() {
        let venue = Venue(ExecutionConfig(latencyNanos: 5 * ms))
        venue.event(quote(0, bid: 99, ask: 100))
        let id = venue.submit(.limit(symbol, .buy, quantity: 1, price: 99), at: 0)   // rests from 5 ms
        venue.event(quote(6 * ms, bid: 98, ask: 99.5))
        XCTAssertTrue(venue.simulator.cancel(id, at: 7 * ms))                           // arrives at 12 ms
        venue.event(quote(9 * ms, bid: 97, ask: 98.5))                                  // fills first at 99
        venue.event(quote(13 * ms, bid: 97, ask: 98.5))
        venue.drain()
        XCTAssertEqual(venue.fills.map(\.price), [99])
        XCTAssertEqual(venue.statuses(id), ["submitted", "accepted", "filled"])

        let second = venue.submit(.limit(symbol, .buy, quantity: 1, price: 90), at: 14 * ms)
        XCTAssertTrue(venue.simulator.cancel(second, at: 15 * ms))
        venue.event(quote(30 * ms, bid: 97, ask: 98.5))
        XCTAssertEqual(venue.statuses(second), ["submitted", "accepted", "canceled"])
        XCTAssertEqual(venue.orders.last?.time, 20 * ms)
    }

    func testReplaceIsCancelPlusNewOrderKeepingTheTag() {
        let venue = Venue()
        venue.event(quote(10, bid: 99, ask: 100))
        let old = venue.submit(.limit(symbol, .buy, quantity: 1, price: 95, tag: "grid"), at: 11)
        let new = venue.simulator.replace(old, quantity: 2, limitPrice: 99.5, at: 12)!
        venue.drain()
        venue.event(quote(20, bid: 99, ask: 99.25, askSize: 5))
        XCTAssertEqual(venue.statuses(old), ["submitted", "accepted", "replaced"])
        XCTAssertEqual(venue.statuses(new), ["submitted", "accepted", "filled"])
        XCTAssertEqual(venue.fills.map(\.price), [99.5])
        XCTAssertEqual(venue.fills.map(\.quantity), [2])
        XCTAssertEqual(venue.fills.map(\.tag), ["grid"])
        XCTAssertNil(venue.simulator.replace(old, quantity: 1, at: 30))
    }

    func testFeesAndSlippage() {
        let venue = Venue(ExecutionConfig(feeBps: 10, feePerUnit: 0.01, slippage: .bps(5)))
        venue.event(quote(10, bid: 99, ask: 100))
        _ = venue.submit(.market(symbol, .buy, quantity: 2), at: 11)
        _ = venue.submit(.market(symbol, .sell, quantity: 1), at: 11)
        venue.event(quote(20, bid: 99, ask: 100))
        XCTAssertEqual(venue.fills.count, 2)
        XCTAssertEqual(venue.fills[0].price, 100.05, accuracy: 1e-12)
        XCTAssertEqual(venue.fills[0].fee, 2 * 100.05 * 0.001 + 2 * 0.01, accuracy: 1e-12)
        XCTAssertEqual(venue.fills[1].price, 98.9505, accuracy: 1e-12)
        XCTAssertEqual(venue.fills[1].fee, 98.9505 * 0.001 + 0.01, accuracy: 1e-12)

        let fixed = Venue(ExecutionConfig(slippage: .fixed(0.25)))
        fixed.event(trade(10, 50))
        _ = fixed.submit(.market(symbol, .sell, quantity: 1), at: 11)
        fixed.event(trade(20, 51))
        XCTAssertEqual(fixed.fills.map(\.price), [50.75])
    }

    func testTradesOnlyMarketOrderFillsAtTheNextTradesLimitedBySize() {
        let venue = Venue()
        venue.event(trade(10, 100, 5))
        _ = venue.submit(.market(symbol, .sell, quantity: 3), at: 11)
        venue.event(trade(20, 99, 2))
        venue.event(trade(30, 98, 4))
        XCTAssertEqual(venue.fills.map(\.price), [99, 98])
        XCTAssertEqual(venue.fills.map(\.quantity), [2, 1])
        XCTAssertEqual(venue.fills.map(\.rule), [.trade, .trade])
    }

    func testBarRules() {
        let minute = 60 * 1_000_000_000 as Nanos
        let venue = Venue()
        venue.event(bar(end: minute, open: 100, high: 101, low: 99, close: 100.5))
        _ = venue.submit(.market(symbol, .buy, quantity: 1), at: minute)
        _ = venue.submit(.limit(symbol, .buy, quantity: 1, price: 99.5), at: minute)
        _ = venue.submit(.limit(symbol, .sell, quantity: 1, price: 100), at: minute)   // open above: fills at open
        _ = venue.submit(.stop(symbol, .buy, quantity: 1, stopPrice: 102), at: minute)
        _ = venue.submit(.limit(symbol, .buy, quantity: 1, price: 98), at: minute)
        venue.event(bar(end: 2 * minute, open: 100.25, high: 102.5, low: 99.25, close: 102))
        XCTAssertEqual(venue.fills.map(\.price), [100.25, 99.5, 100.25, 102])
        XCTAssertEqual(venue.fills.map(\.rule), [.barOpen, .barRange, .barOpen, .barRange])
        XCTAssertEqual(venue.fills.map(\.time), [minute, minute, minute, minute])
        XCTAssertEqual(venue.simulator.openQuantity(symbol: symbol), 1)   // the limit at 98: low 99.25
        venue.event(bar(end: 3 * minute, open: 97, high: 97.5, low: 96, close: 97))   // gaps below: at the open
        XCTAssertEqual(venue.fills.last?.price, 97)
        XCTAssertEqual(venue.fills.last?.rule, .barOpen)
    }

    func testBarOrderArrivingInsideABarWaitsForTheNextOne() {
        let minute = 60 * 1_000_000_000 as Nanos
        let venue = Venue(ExecutionConfig(latencyNanos: 1_000))
        venue.event(bar(end: minute, open: 100, high: 101, low: 99, close: 100.5))
        _ = venue.submit(.market(symbol, .buy, quantity: 1), at: minute)   // arrives 1 µs into the next bar
        venue.event(bar(end: 2 * minute, open: 101, high: 102, low: 100, close: 101))
        XCTAssertEqual(venue.fills, [])
        venue.event(bar(end: 3 * minute, open: 103, high: 104, low: 102, close: 103))
        XCTAssertEqual(venue.fills.map(\.price), [103])
        XCTAssertEqual(venue.fills.map(\.time), [2 * minute])
    }

    func testRejectedRequests() {
        let venue = Venue()
        let id = venue.submit(.limit(symbol, .buy, quantity: 1, price: .nan), at: 1)
        XCTAssertEqual(venue.statuses(id), ["submitted", "rejected"])
        XCTAssertEqual(venue.orders.last?.reason, "a limit order needs a positive limit price")
        let zero = venue.submit(.market(symbol, .buy, quantity: 0), at: 1)
        XCTAssertEqual(venue.statuses(zero), ["submitted", "rejected"])
        XCTAssertEqual(zero, id + 1)
    }
}
