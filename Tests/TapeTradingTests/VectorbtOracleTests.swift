import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeGraph
import TapeTrading

/// The issue's acceptance test: on both real bar files, signals from an SMA cross (computed by the reference
/// script from the closes), fills at the next bar's open, a fixed fee (and slippage): Tape's equity curve,
/// fills and round trips equal vectorbt's `Portfolio.from_signals`, and the summary metrics equal numpy's.
final class VectorbtOracleTests: XCTestCase {
    struct Case {
        var file: String
        var quantity: Double
        var initialCash: Double
        var fees: Double
        var slippage: Double
        var longOnly: Bool
        var fast = 10
        var slow = 30
    }

    func testBTCPerpLongShortAgainstVectorbt() throws {
        // Cash ample enough that vectorbt never shrinks a buy to the cash left (Tape's account has no cash
        // limit: docs/backtesting.md).
        try check(Case(file: "btc-perp-20211231-20220201_1m.csv.gz", quantity: 1, initialCash: 1_000_000, fees: 0.0002,
                       slippage: 0.0001, longOnly: false))
    }

    func testFXCMGBPUSDLongOnlyAgainstVectorbt() throws {
        try check(Case(file: "fxcm-gbpusd-m1-bid-2012.csv.gz", quantity: 100_000, initialCash: 1_000_000,
                       fees: 0.0001, slippage: 0.00005, longOnly: true, fast: 20, slow: 60))
    }

    func check(_ testCase: Case, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try sharedData().appendingPathComponent("bars/\(testCase.file)").path
        let reference = FileManager.default.temporaryDirectory.appendingPathComponent("tape-vbt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: reference) }
        try runPython("vectorbt_reference.py", [path, reference.path, "--fast", "\(testCase.fast)",
                                                "--slow", "\(testCase.slow)", "--size", "\(testCase.quantity)",
                                                "--fees", "\(testCase.fees)", "--slippage", "\(testCase.slippage)",
                                                "--init-cash", "\(testCase.initialCash)",
                                                "--mode", testCase.longOnly ? "longonly" : "both"],
                      needs: "vectorbt, numpy, pandas")
        try runPython("metrics_reference.py", [reference.path, "--init-cash", "\(testCase.initialCash)",
                                               "--periods-per-year", "525600"], needs: "numpy, pandas")
        let signals = try readCSV(reference.appendingPathComponent("signals.csv"))
        let expectedEquity = try readCSV(reference.appendingPathComponent("equity.csv"))
        let expectedOrders = try readCSV(reference.appendingPathComponent("orders.csv"))
        let expectedTrades = try readCSV(reference.appendingPathComponent("trades.csv"))
        let expectedMetrics = Dictionary(uniqueKeysWithValues: try readCSV(reference.appendingPathComponent("metrics.csv"))
            .map { ($0[0], number($0[1])) })

        let (events, symbols) = try readBars(path)
        XCTAssertEqual(events.count, signals.count, "bars read by Tape vs rows read by pandas", file: file, line: line)
        let strategy = SignalStrategy(longSignals: signals.map { $0[2] == "1" }, shortSignals: signals.map { $0[3] == "1" },
                                      quantity: testCase.quantity, longOnly: testCase.longOnly)
        let execution = ExecutionConfig(feeBps: testCase.fees * 10_000, slippage: .bps(testCase.slippage * 10_000))
        let config = TradingConfig(initialCash: testCase.initialCash, execution: execution)
        let backtest = BarBacktest(symbols: symbols, config: config, strategies: [strategy])
        backtest.feed(events[...])
        backtest.finish()

        // The same bars, in the same order.
        let bars = backtest.forwarder.bars
        XCTAssertEqual(bars.count, signals.count, file: file, line: line)
        for (index, bar) in bars.enumerated() where bar.close != number(signals[index][1]) {
            return XCTFail("bar \(index): close \(bar.close) vs \(signals[index][1])", file: file, line: line)
        }
        var rowOfStart: [Nanos: Int] = [:]
        for (index, bar) in bars.enumerated() { rowOfStart[bar.start] = index }

        // Equity: one total row per bar close.
        let equity = backtest.collector.totalEquity
        XCTAssertEqual(equity.count, expectedEquity.count, file: file, line: line)
        var worstEquity = 0.0
        var equityMismatches = 0
        for (index, (row, expected)) in zip(equity, expectedEquity).enumerated() {
            let value = number(expected[2])
            worstEquity = max(worstEquity, abs(row.equity - value) / max(1, abs(value)))
            if !nearlyEqual(row.equity, value) {
                equityMismatches += 1
                if equityMismatches < 4 { XCTFail("equity at bar \(index): \(row.equity) vs \(value)", file: file, line: line) }
            }
            XCTAssertEqual(row.grossExposure > 0, number(expected[3]) != 0, "exposure at bar \(index)", file: file, line: line)
        }
        XCTAssertEqual(equityMismatches, 0, file: file, line: line)

        // Fills = vectorbt's orders: bar, side, size, price, fee.
        let fills = backtest.collector.fills
        XCTAssertEqual(fills.count, expectedOrders.count, "fills", file: file, line: line)
        var fillMismatches = 0
        for (fill, expected) in zip(fills, expectedOrders) {
            let same = rowOfStart[fill.time] == Int(expected[0]) && fill.side.name == expected[1]
                && nearlyEqual(fill.quantity, number(expected[2])) && nearlyEqual(fill.price, number(expected[3]))
                && nearlyEqual(fill.fee, number(expected[4])) && fill.rule == .barOpen
            if !same {
                fillMismatches += 1
                if fillMismatches < 4 { XCTFail("fill \(fill) vs \(expected)", file: file, line: line) }
            }
        }
        XCTAssertEqual(fillMismatches, 0, file: file, line: line)

        // Round trips = vectorbt's trades.
        let trips = PerformanceMetrics.roundTrips(fills)
        XCTAssertEqual(trips.count, expectedTrades.count, "round trips", file: file, line: line)
        var tripMismatches = 0
        for (trip, expected) in zip(trips, expectedTrades) {
            let open = expected[3] == "open"
            var same = rowOfStart[trip.entryTime] == Int(expected[0]) && (trip.direction > 0) == (expected[2] == "long")
                && trip.isOpen == open && nearlyEqual(trip.quantity, number(expected[4]))
                && nearlyEqual(trip.entryPrice, number(expected[5])) && nearlyEqual(trip.entryFees, number(expected[7]))
            if !open {
                same = same && rowOfStart[trip.exitTime!] == Int(expected[1])
                    && nearlyEqual(trip.exitPrice, number(expected[6])) && nearlyEqual(trip.exitFees, number(expected[8]))
                    && nearlyEqual(trip.pnl, number(expected[9]))
            }
            if !same {
                tripMismatches += 1
                if tripMismatches < 4 { XCTFail("round trip \(trip) vs \(expected)", file: file, line: line) }
            }
        }
        XCTAssertEqual(tripMismatches, 0, file: file, line: line)

        // Summary metrics = numpy's.
        let metrics = PerformanceMetrics.compute(equity: backtest.collector.outputs.compactMap {
            if case .equity(let row) = $0 { return row } else { return nil }
        }, fills: fills, initialCash: testCase.initialCash,
           periodsPerYear: PerformanceMetrics.periodsPerYear(Timeframe(seconds: 60)))
        let mine: [String: Double] = [
            "periods": Double(metrics.periods), "total_return": metrics.totalReturn,
            "annualized_return": metrics.annualizedReturn, "volatility": metrics.volatility, "sharpe": metrics.sharpe,
            "sortino": metrics.sortino, "max_drawdown": metrics.maxDrawdown,
            "max_drawdown_duration_periods": Double(metrics.maxDrawdownDurationPeriods), "calmar": metrics.calmar,
            "turnover": metrics.turnover, "trade_count": Double(metrics.tradeCount), "hit_rate": metrics.hitRate,
            "average_win": metrics.averageWin, "average_loss": metrics.averageLoss,
            "profit_factor": metrics.profitFactor, "exposure": metrics.exposure, "fees_paid": metrics.feesPaid,
        ]
        XCTAssertEqual(Set(mine.keys), Set(expectedMetrics.keys), file: file, line: line)
        for (name, value) in mine.sorted(by: { $0.key < $1.key }) {
            XCTAssertTrue(nearlyEqual(value, expectedMetrics[name]!, relative: 1e-9),
                          "\(name): \(value) vs numpy \(expectedMetrics[name]!)", file: file, line: line)
        }
        print("""
            vectorbt oracle \(testCase.file): \(bars.count) bars, \(fills.count) fills, \(trips.count) round trips, \
            final equity \(equity.last?.equity ?? .nan) (vectorbt \(expectedEquity.last?[2] ?? "")), \
            worst relative equity difference \(worstEquity); total return \(metrics.totalReturn), \
            Sharpe \(metrics.sharpe), max drawdown \(metrics.maxDrawdown), trades \(metrics.tradeCount), \
            hit rate \(metrics.hitRate), fees \(metrics.feesPaid)
            """)
    }
}
