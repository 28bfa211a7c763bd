import XCTest
import TapeCore
import TapeClock
import TapeGraph

final class GraphTests: XCTestCase {
    let s0: Nanos = 1_723_161_600_000_000_000   // 2024-08-09T00:00:00Z, a minute boundary

    func make(_ edit: (inout PipelineConfig) -> Void = { _ in }) -> (Graph, SimulatedClock, CollectingSink, SymbolID) {
        var c = PipelineConfig()
        c.timeframes = [Timeframe("1m")!]
        edit(&c)
        let clock = SimulatedClock(), sink = CollectingSink(), symbols = SymbolTable()
        let id = symbols.intern("X")
        return (Graph(config: c, clock: clock, symbols: symbols, sink: sink), clock, sink, id)
    }

    func deliver(_ g: Graph, _ clock: SimulatedClock, _ e: MarketEvent) { clock.advance(to: e.receiveTime); g.onEvent(e) }

    func bars(_ s: CollectingSink) -> [BarOutput] { s.outputs.compactMap { if case .bar(let b) = $0 { return b }; return nil } }
    func anomalies(_ s: CollectingSink) -> [AnomalyOutput] { s.outputs.compactMap { if case .anomaly(let a) = $0 { return a }; return nil } }

    func testBarClosesByTimerWithoutAFollowingTick() {
        let (g, clock, sink, x) = make()
        deliver(g, clock, .trade(eventTime: s0 + 10_000_000_000, receiveTime: s0 + 10_100_000_000, symbol: x, price: 100, size: 2))
        deliver(g, clock, .trade(eventTime: s0 + 20_000_000_000, receiveTime: s0 + 20_100_000_000, symbol: x, price: 102, size: 1))
        XCTAssertEqual(bars(sink).count, 0)
        clock.advance(to: s0 + 60_000_000_000 + 1_999_999_999)   // just before end + lateness (2 s)
        XCTAssertEqual(bars(sink).count, 0)
        clock.advance(to: s0 + 62_000_000_000)                   // the timer fires, no tick needed
        let b = bars(sink)
        XCTAssertEqual(b.count, 1)
        XCTAssertEqual(b[0].start, s0); XCTAssertEqual(b[0].end, s0 + 60_000_000_000)
        XCTAssertEqual([b[0].open, b[0].high, b[0].low, b[0].close, b[0].volume], [100, 102, 100, 102, 3])
        XCTAssertEqual(b[0].vwap, (100 * 2 + 102) / 3.0)
        XCTAssertEqual(b[0].trades, 2)
        // bar, then its indicators, in that order
        if case .indicators(let i) = sink.outputs[1] { XCTAssertEqual(i.end, b[0].end) } else { XCTFail("indicators after bar") }
    }

    func testLateTradeGoesToTheSideOutputAndNotIntoABar() {
        let (g, clock, sink, x) = make()
        deliver(g, clock, .trade(eventTime: s0 + 30_000_000_000, receiveTime: s0 + 30_000_000_000, symbol: x, price: 100, size: 1))
        deliver(g, clock, .trade(eventTime: s0 + 65_000_000_000, receiveTime: s0 + 65_000_000_000, symbol: x, price: 101, size: 1))
        // Event time 59 s arrives at receive time 66 s: watermark = max(65 s, clock 66 s) - 2 s = 64 s: late.
        deliver(g, clock, .trade(eventTime: s0 + 59_000_000_000, receiveTime: s0 + 66_000_000_000, symbol: x, price: 999, size: 5))
        g.finish()
        let late = sink.outputs.compactMap { o -> LateTickOutput? in if case .lateTick(let l) = o { return l }; return nil }
        XCTAssertEqual(late.count, 1)
        XCTAssertEqual(late[0].price, 999); XCTAssertEqual(late[0].watermark, s0 + 64_000_000_000)
        XCTAssertEqual(g.counters.lateTicks, 1)
        XCTAssertFalse(bars(sink).contains { $0.high == 999 })
        XCTAssertEqual(bars(sink).map(\.close), [100, 101])
    }

    func testTradeWithinLatenessStillCounts() {
        let (g, clock, sink, x) = make()
        deliver(g, clock, .trade(eventTime: s0 + 59_000_000_000, receiveTime: s0 + 59_000_000_000, symbol: x, price: 100, size: 1))
        deliver(g, clock, .trade(eventTime: s0 + 60_500_000_000, receiveTime: s0 + 60_500_000_000, symbol: x, price: 101, size: 1))
        deliver(g, clock, .trade(eventTime: s0 + 59_900_000_000, receiveTime: s0 + 61_000_000_000, symbol: x, price: 99, size: 1))
        g.finish()
        XCTAssertEqual(bars(sink).first?.low, 99)
        XCTAssertEqual(g.counters.lateTicks, 0)
    }

    func testStaleFeedFiresFromATimerWithNoFurtherInput() {
        let (g, clock, sink, x) = make { $0.staleFeed.after = 30_000_000_000 }
        deliver(g, clock, .quote(eventTime: s0, receiveTime: s0, symbol: x, bid: 1, bidSize: 1, ask: 2, askSize: 1))
        deliver(g, clock, .quote(eventTime: s0 + 10_000_000_000, receiveTime: s0 + 10_000_000_000, symbol: x, bid: 1, bidSize: 1, ask: 2, askSize: 1))
        clock.advance(to: s0 + 39_000_000_000)
        XCTAssertEqual(anomalies(sink).count, 0, "only 29 s of silence")
        clock.advance(to: s0 + 200_000_000_000)
        let a = anomalies(sink)
        XCTAssertEqual(a.count, 1, "once per gap")
        XCTAssertEqual(a[0].rule, "stale_feed"); XCTAssertEqual(a[0].time, s0 + 40_000_000_000)
        XCTAssertEqual(a[0].value, 30); XCTAssertEqual(a[0].threshold, 30)
        // a new event re-arms it
        deliver(g, clock, .quote(eventTime: s0 + 300_000_000_000, receiveTime: s0 + 300_000_000_000, symbol: x, bid: 1, bidSize: 1, ask: 2, askSize: 1))
        clock.advance(to: s0 + 331_000_000_000)
        XCTAssertEqual(anomalies(sink).count, 2)
    }

    func testBadTickIsFlaggedAndKeptOutOfBars() {
        let (g, clock, sink, x) = make()
        for (i, p) in [100.0, 100.5, 112.0, 100.2].enumerated() {
            let t = s0 + Int64(i + 1) * 1_000_000_000
            deliver(g, clock, .trade(eventTime: t, receiveTime: t, symbol: x, price: p, size: 1))
        }
        g.finish()
        let a = anomalies(sink)
        XCTAssertEqual(a.map(\.rule), ["bad_tick"])
        XCTAssertEqual(a[0].value, (112.0 / 100.5 - 1) * 100, accuracy: 1e-12)
        XCTAssertEqual(bars(sink)[0].high, 100.5)
        XCTAssertEqual(bars(sink)[0].trades, 3)
    }

    func testDownstreamNodeOutputsFollowTheirCause() {
        final class Echo: DownstreamNode {
            func process(_ o: GraphOutput, emit: (GraphOutput) -> Void) {
                if case .indicators(let i) = o { emit(.prediction(PredictionOutput(symbol: i.symbol, timeframe: i.timeframe, end: i.end, prediction: 0.5))) }
            }
            func snapshot(into writer: inout SnapshotWriter) {}
            func restore(from reader: inout SnapshotReader) throws {}
        }
        let (g, clock, sink, x) = make()
        g.addNode(Echo())
        deliver(g, clock, .trade(eventTime: s0 + 1, receiveTime: s0 + 1, symbol: x, price: 100, size: 1))
        g.finish()
        XCTAssertEqual(sink.outputs.map(\.kindName), ["bars", "indicators", "predictions"])
    }

    func testConfigErrorsNameTheKey() {
        func err(_ y: String) -> String {
            do { _ = try PipelineConfig.load(yaml: y, source: "config/pipeline.yaml"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(err("indicators:\n  rsi: x\n"), "config/pipeline.yaml: indicators.rsi: expected a positive integer, got \"x\"")
        XCTAssertTrue(err("indicatorz: {}\n").hasPrefix("config/pipeline.yaml: indicatorz: unknown key"))
        XCTAssertTrue(err("anomalies:\n  stale_feed:\n    after: soon\n").contains("anomalies.stale_feed.after: expected a duration"))
        XCTAssertTrue(err("timeframes: [1m, 7x]\n").contains("timeframes[1]"))
        let c = try! PipelineConfig.load(yaml: "timeframes: [15m, 1m]\nindicators: {macd: {fast: 5, slow: 10, signal: 3}}\n", source: "t")
        XCTAssertEqual(c.timeframes.map(\.description), ["1m", "15m"])
        XCTAssertEqual([c.macdFast, c.macdSlow, c.macdSignal], [5, 10, 3])
        XCTAssertEqual(c.smaPeriod, 20)
        let m = try! c.merged(overrides: "indicators: {sma: 7}\n", source: "s")
        XCTAssertEqual(m.smaPeriod, 7); XCTAssertEqual(m.macdFast, 5)
    }

    func testShippedConfigIsTheDefaults() throws {
        var u = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) { u = u.deletingLastPathComponent() }
        let text = try String(contentsOf: u.appendingPathComponent("config/pipeline.yaml"), encoding: .utf8)
        XCTAssertEqual(try PipelineConfig.load(yaml: text, source: "config/pipeline.yaml"), PipelineConfig())
    }
}
