import Foundation
import XCTest
import TapeCore
import TapeClock
import TapeGraph
import TapeTrading

/// Snapshot mid-run → restore into a new engine (and graph) → continue equals the uninterrupted run, byte for
/// byte in the canonical rows.
final class TradingSnapshotTests: XCTestCase {
    func builtInStrategies() throws -> [Strategy] {
        [
            try StrategyRegistry.make("macd_cross", parameters: ["quantity": "0.5"]),
            try StrategyRegistry.make("bollinger_breakout", parameters: ["timeframe": "5m", "allow_short": "false"]),
            try StrategyRegistry.make("rsi_mean_reversion", parameters: ["lower": "25", "upper": "75"]),
        ]
    }

    func testBarFileSplitAtHalfEqualsUninterrupted() throws {
        let path = try sharedData().appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path
        let (events, _) = try readBars(path)
        var pipeline = PipelineConfig()
        pipeline.timeframes = [Timeframe(seconds: 60), Timeframe(seconds: 300)]
        let execution = ExecutionConfig(latencyNanos: 250_000_000, feeBps: 2, slippage: .bps(1))
        let config = TradingConfig(initialCash: 100_000, execution: execution)

        let (whole, _) = try readBars(path)
        let wholeRun = BarBacktest(symbols: try readBars(path).symbols, config: config, strategies: try builtInStrategies(),
                                   graphConfig: pipeline)
        wholeRun.feed(whole[...])
        wholeRun.finish()
        let expected = wholeRun.collector.lines(wholeRun.symbols)
        XCTAssertGreaterThan(wholeRun.collector.fills.count, 100)

        for fraction in [0.37, 0.5] {
            let split = Int(Double(events.count) * fraction)
            let (firstEvents, firstSymbols) = try readBars(path)
            let first = BarBacktest(symbols: firstSymbols, config: config, strategies: try builtInStrategies(),
                                    graphConfig: pipeline)
            first.feed(firstEvents[..<split])
            let graphBytes = first.graph.snapshot()
            var writer = SnapshotWriter()
            first.engine.snapshot(into: &writer)
            let tradingBytes = writer.bytes

            let second = BarBacktest(symbols: SymbolTable(), config: config, strategies: try builtInStrategies(),
                                     graphConfig: pipeline)
            try second.graph.restore(from: graphBytes)
            var reader = SnapshotReader(bytes: tradingBytes)
            try second.engine.restore(from: &reader)
            try reader.expectEnd("trading snapshot")
            second.clock.advance(to: firstEvents[split - 1].receiveTime)
            second.feed(firstEvents[split...])
            second.finish()
            let joined = first.collector.lines(first.symbols) + second.collector.lines(second.symbols)
            XCTAssertEqual(joined.count, expected.count, "split at \(fraction)")
            XCTAssertEqual(joined, expected, "split at \(fraction)")
            XCTAssertGreaterThan(second.collector.fills.count, 10)
        }
    }

    /// Places, cancels and replaces orders of every kind on a real capture's quotes and trades.
    final class ScriptedTicks: Strategy {
        let name = "scripted"
        var subscriptions: StrategySubscriptions { [.trades, .quotes] }
        var quotes = 0
        var resting: OrderID = 0
        var lastBid = Double.nan
        var lastAsk = Double.nan

        func onEvent(_ event: MarketEvent, context: StrategyContext) {
            if event.kind == .trade { return }
            quotes += 1
            lastBid = event.bid
            lastAsk = event.ask
            switch quotes % 500 {
            case 0: context.submit(.market(event.symbol, .buy, quantity: 0.3))
            case 100: context.submit(.market(event.symbol, .sell, quantity: 0.2, timeInForce: .ioc))
            case 200: resting = context.submit(.limit(event.symbol, .buy, quantity: 0.4, price: event.bid - 2))
            case 300: if let replaced = context.replace(resting, quantity: 0.25, limitPrice: event.bid) { resting = replaced }
            case 400:
                context.cancel(resting)
                context.submit(.stop(event.symbol, .sell, quantity: 0.1, stopPrice: event.bid - 1))
            default: return
            }
        }

        func snapshot(into writer: inout SnapshotWriter) {
            writer.append(Int64(quotes))
            writer.append(resting)
            writer.append(lastBid)
            writer.append(lastAsk)
        }

        func restore(from reader: inout SnapshotReader) throws {
            quotes = Int(try reader.readInt64())
            resting = try reader.readInt64()
            lastBid = try reader.readDouble()
            lastAsk = try reader.readDouble()
        }
    }

    func testTickCaptureSplitEqualsUninterrupted() throws {
        let path = try sharedData().appendingPathComponent("binance-feed/spot-btcusdt_20240808.gz").path
        let (events, symbols) = try readBars(path, symbol: "BTCUSDT")
        XCTAssertGreaterThan(events.filter { $0.kind == .quote }.count, 10_000)
        let config = TradingConfig(initialCash: 100_000, execution: ExecutionConfig(latencyNanos: 2_000_000, feeBps: 1))

        func run(_ slice: ArraySlice<MarketEvent>, _ engine: TradingEngine) { for event in slice { engine.onEvent(event) } }
        let whole = TradingCollector()
        let wholeEngine = TradingEngine(config: config, strategies: [ScriptedTicks()]) { whole.outputs.append($0) }
        run(events[...], wholeEngine)
        wholeEngine.finish()
        checkFillsAgainstTheCapture(whole, events, latency: config.execution.latencyNanos)
        XCTAssertTrue(whole.orders.contains { $0.status == .replaced })
        XCTAssertTrue(whole.orders.contains { $0.status == .partiallyFilled || $0.status == .filled })

        let split = events.count / 2
        let first = TradingCollector()
        let firstEngine = TradingEngine(config: config, strategies: [ScriptedTicks()]) { first.outputs.append($0) }
        run(events[..<split], firstEngine)
        var writer = SnapshotWriter()
        firstEngine.snapshot(into: &writer)
        let second = TradingCollector()
        let secondEngine = TradingEngine(config: config, strategies: [ScriptedTicks()]) { second.outputs.append($0) }
        var reader = SnapshotReader(bytes: writer.bytes)
        try secondEngine.restore(from: &reader)
        run(events[split...], secondEngine)
        secondEngine.finish()
        XCTAssertEqual(first.lines(symbols) + second.lines(symbols), whole.lines(symbols))
    }

    /// Every fill against the capture itself: a market order's fill is at the ask (buy) or bid (sell) of the last
    /// quote received at or before its arrival (submission + latency), at most that quote's size; a trade-rule
    /// fill is a resting limit at its limit price, below (buy) or above (sell) a print received at the fill time.
    func checkFillsAgainstTheCapture(_ run: TradingCollector, _ events: [MarketEvent], latency: Nanos) {
        let quotes = events.filter { $0.kind == .quote }
        let submissions = Dictionary(run.orders.filter { $0.status == .submitted }.map { ($0.orderID, $0) },
                                     uniquingKeysWith: { first, _ in first })
        func lastQuote(atOrBefore time: Nanos) -> MarketEvent? {
            var low = 0
            var high = quotes.count
            while low < high {
                let middle = (low + high) / 2
                if quotes[middle].receiveTime <= time { low = middle + 1 } else { high = middle }
            }
            return low == 0 ? nil : quotes[low - 1]
        }
        var checked = 0
        for fill in run.fills {
            guard let order = submissions[fill.orderID] else { return XCTFail("fill of an unknown order \(fill)") }
            XCTAssertEqual(fill.arrivalTime - order.time, latency, "arrival = submission + latency")
            switch order.type {
            case .market where fill.time == fill.arrivalTime:
                guard let quote = lastQuote(atOrBefore: fill.time) else { return XCTFail("no quote before \(fill)") }
                XCTAssertEqual(fill.price, fill.side == .buy ? quote.ask : quote.bid, "\(fill)")
                XCTAssertLessThanOrEqual(fill.quantity, fill.side == .buy ? quote.askSize : quote.bidSize, "\(fill)")
                XCTAssertEqual(fill.rule, .quote)
                checked += 1
            case .limit where fill.rule == .trade:
                XCTAssertEqual(fill.price, order.limitPrice)
                let prints = events.filter { $0.kind == .trade && $0.receiveTime == fill.time }
                XCTAssertTrue(prints.contains { fill.side == .buy ? $0.price < order.limitPrice : $0.price > order.limitPrice },
                              "a print through the limit at \(fill.time)")
                checked += 1
            default:
                XCTAssertEqual(fill.rule, .quote)
            }
        }
        XCTAssertGreaterThan(checked, 20)
        print("tick capture: \(run.fills.count) fills, \(checked) checked against the capture's quotes and prints; "
              + "partial fills \(run.orders.filter { $0.status == .partiallyFilled }.count)")
    }

    func testDamagedOrForeignSnapshotsAreRefused() throws {
        let engine = TradingEngine(config: TradingConfig(), strategies: [ScriptedTicks()]) { _ in }
        var writer = SnapshotWriter()
        engine.snapshot(into: &writer)
        var damaged = writer.bytes
        damaged[damaged.count - 12] ^= 0xff
        var reader = SnapshotReader(bytes: damaged)
        XCTAssertThrowsError(try TradingEngine(config: TradingConfig(), strategies: [ScriptedTicks()]) { _ in }
            .restore(from: &reader))
        var other = SnapshotReader(bytes: writer.bytes)
        XCTAssertThrowsError(try TradingEngine(config: TradingConfig(), strategies: [try StrategyRegistry.make("macd_cross")])
            { _ in }.restore(from: &other)) { error in
            XCTAssertTrue("\(error)".contains("strategy"), "\(error)")
        }
    }
}
