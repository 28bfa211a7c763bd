import XCTest
import TapeCore
import TapeClock
import TapeGraph

/// Rules as nodes: config validation of their timeframes, and the dropped-event counter.
final class RuleNodeTests: XCTestCase {
    let s0: Nanos = 1_723_161_600_000_000_000   // 2024-08-09T00:00:00Z
    let minute: Nanos = 60_000_000_000

    func configError(_ yaml: String) -> String {
        do {
            _ = try PipelineConfig.load(yaml: yaml, source: "config/pipeline.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testSpikeRuleOnAnUnconfiguredTimeframeIsRefusedNamingTheKey() {
        XCTAssertEqual(configError("timeframes: [5m]\nanomalies: {volume_spike: {timeframe: 5m}}\n"),
                       "config/pipeline.yaml: anomalies.price_spike.timeframe: 1m is not one of the configured "
                       + "timeframes (5m); add it to timeframes or disable the rule")
        XCTAssertTrue(configError("anomalies:\n  volume_spike: {timeframe: 1h}\n")
            .hasPrefix("config/pipeline.yaml: anomalies.volume_spike.timeframe: 1h is not one of the configured"))
        // A disabled rule may name any timeframe; a configured one is accepted.
        XCTAssertEqual(configError("timeframes: [5m]\nanomalies:\n  price_spike: {enabled: false}\n"
                                   + "  volume_spike: {timeframe: 5m}\n"), "no error")
    }

    /// A repeated 1-minute bar is not late (the watermark trails its end by the lateness) but its 1m window
    /// already closed when the first copy arrived: it is left out of the 1m bars and counted.
    func testRepeatedBarIsCountedAsDropped() {
        var config = PipelineConfig()
        config.timeframes = [Timeframe(seconds: 60), Timeframe(seconds: 300)]
        let clock = SimulatedClock(), sink = CollectingSink(), symbols = SymbolTable()
        let graph = Graph(config: config, clock: clock, symbols: symbols, sink: sink)
        let symbol = symbols.intern("X")
        let bar = MarketEvent.bar(endTime: s0 + minute, receiveTime: s0 + minute, symbol: symbol, open: 1, high: 2,
                                  low: 0.5, close: 1.5, volume: 10)
        for event in [bar, bar] {
            clock.advance(to: event.receiveTime)
            graph.onEvent(event)
        }
        graph.finish()
        XCTAssertEqual(graph.counters.droppedEvents, 1)
        XCTAssertEqual(graph.counters.lateTicks, 0)
        let oneMinuteBars = sink.outputs.compactMap { output -> BarOutput? in
            if case .bar(let bar) = output, bar.timeframe.seconds == 60 { return bar }
            return nil
        }
        XCTAssertEqual(oneMinuteBars.count, 1)
    }

    func testTradesInOrderDropNothing() {
        var config = PipelineConfig()
        config.timeframes = [Timeframe(seconds: 60)]
        let clock = SimulatedClock(), sink = CollectingSink(), symbols = SymbolTable()
        let graph = Graph(config: config, clock: clock, symbols: symbols, sink: sink)
        let symbol = symbols.intern("X")
        for second in stride(from: Int64(0), to: 600, by: 7) {
            let time = s0 + second * 1_000_000_000
            clock.advance(to: time)
            graph.onEvent(.trade(eventTime: time, receiveTime: time, symbol: symbol, price: 100, size: 1))
        }
        graph.finish()
        XCTAssertEqual(graph.counters.droppedEvents, 0)
        XCTAssertEqual(graph.counters.trades, 86)
    }
}
