import XCTest
import TapeCore
import TapeGraph
import TapeTrading

final class StrategyTests: XCTestCase {
    func testRegistryBuildsEachStrategyAndNamesBadKeys() throws {
        XCTAssertEqual(StrategyRegistry.names, ["bollinger_breakout", "macd_cross", "model_threshold", "rsi_mean_reversion"])
        for name in StrategyRegistry.names { XCTAssertEqual(try StrategyRegistry.make(name).name, name) }
        XCTAssertThrowsError(try StrategyRegistry.make("rsi_mean_reversion", parameters: ["lowr": "20"])) { error in
            XCTAssertEqual((error as? StrategyConfigError)?.key, "lowr")
        }
        XCTAssertThrowsError(try StrategyRegistry.make("model_threshold", parameters: ["threshold": "x"])) { error in
            XCTAssertEqual("\(error)", "strategy model_threshold: threshold: expected a number, got \"x\"")
        }
        XCTAssertThrowsError(try StrategyRegistry.make("macd_cross", parameters: ["timeframe": "7q"]))
        XCTAssertThrowsError(try StrategyRegistry.make("macd_cross", parameters: ["quantity": "-1"]))
        XCTAssertThrowsError(try StrategyRegistry.make("rsi_mean_reversion", parameters: ["lower": "80"]))
        XCTAssertThrowsError(try StrategyRegistry.make("nope")) { error in
            XCTAssertEqual((error as? StrategyConfigError)?.key, "name")
        }
    }

    /// The model strategy on scripted predictions: long above the threshold, short below −threshold, flat between.
    func testModelThresholdTargets() throws {
        let strategy = try ModelThresholdStrategy(parameters: ["threshold": "0.001", "quantity": "2"])
        var fills: [FillRecord] = []
        let engine = TradingEngine(config: TradingConfig(), strategies: [strategy]) { output in
            if case .fill(let fill) = output { fills.append(fill) }
        }
        let symbol: SymbolID = 3
        let minute = Timeframe(seconds: 60)
        var time: Nanos = 60_000_000_000
        for (prediction, price) in [(0.002, 100.0), (0.0005, 101), (-0.003, 102), (-0.0001, 103), (0.0, 104)] {
            engine.onEvent(.quote(eventTime: time, receiveTime: time, symbol: symbol, bid: price - 0.5, bidSize: 100,
                                  ask: price + 0.5, askSize: 100))
            engine.onOutput(.prediction(PredictionOutput(symbol: symbol, timeframe: minute, end: time, prediction: prediction)))
            time += 60_000_000_000
        }
        engine.onEvent(.clockTick(at: time))
        engine.finish()
        // +2 at 100.5; flat (sell 2) at 100.5; −2 (sell 2) at 101.5; flat (buy 2) at 103.5 — each filled at
        // the quote seen when the order arrived (the next event).
        XCTAssertEqual(fills.map(\.side), [.buy, .sell, .sell, .buy])
        XCTAssertEqual(fills.map(\.quantity), [2, 2, 2, 2])
        XCTAssertEqual(fills.map(\.price), [100.5, 100.5, 101.5, 103.5])
        XCTAssertEqual(engine.portfolio.position(symbol), 0)
    }

    func testPortfolioAverageCostAndReversal() {
        let portfolio = Portfolio(initialCash: 1_000)
        func fill(_ side: OrderSide, _ quantity: Double, _ price: Double, fee: Double = 0) {
            portfolio.apply(FillRecord(time: 0, arrivalTime: 0, orderID: 1, fillNumber: 1, symbol: 1, side: side, price: price,
                                       quantity: quantity, fee: fee, rule: .quote, tag: ""))
        }
        fill(.buy, 2, 10)
        fill(.buy, 2, 12, fee: 1)
        XCTAssertEqual(portfolio.holding(1).averagePrice, 11)
        fill(.sell, 1, 15)                 // realises 4
        XCTAssertEqual(portfolio.holding(1).realizedPnL, 4)
        XCTAssertEqual(portfolio.holding(1).averagePrice, 11)
        fill(.sell, 5, 9)                  // closes 3 (realises −6), opens 2 short at 9
        XCTAssertEqual(portfolio.holding(1).realizedPnL, -2)
        XCTAssertEqual(portfolio.position(1), -2)
        XCTAssertEqual(portfolio.holding(1).averagePrice, 9)
        portfolio.mark(symbol: 1, price: 8)
        XCTAssertEqual(portfolio.holding(1).unrealizedPnL, 2)
        // cash: 1000 − 20 − 24 − 1 + 15 + 45 = 1015; equity = 1015 − 2 × 8 = 999 = 1000 − 2 + 2 − 1.
        XCTAssertEqual(portfolio.cash, 1_015)
        XCTAssertEqual(portfolio.equity, 999)
        XCTAssertEqual(portfolio.feesPaid, 1)
    }

    func testRoundTripsSplitAReversalFeeProRata() {
        func fill(_ time: Nanos, _ side: OrderSide, _ quantity: Double, _ price: Double, _ fee: Double) -> FillRecord {
            FillRecord(time: time, arrivalTime: time, orderID: time, fillNumber: 1, symbol: 1, side: side, price: price,
                       quantity: quantity, fee: fee, rule: .barOpen, tag: "")
        }
        let trips = PerformanceMetrics.roundTrips([fill(1, .buy, 1, 100, 1), fill(2, .sell, 2, 110, 2),
                                                   fill(3, .buy, 1, 105, 0.5)])
        XCTAssertEqual(trips.count, 2)
        XCTAssertEqual(trips[0].pnl, 10 - 1 - 1)
        XCTAssertEqual(trips[0].exitTime, 2)
        XCTAssertEqual(trips[1].direction, -1)
        XCTAssertEqual(trips[1].entryFees, 1)
        XCTAssertEqual(trips[1].pnl, 5 - 1 - 0.5)
        XCTAssertEqual(trips[1].exitTime, 3)
    }
}
