import XCTest
import TapeCore
import TapeClock
import TapeSources
import TapeGraph
import TapeSinks
import TapeEngine

/// A source that plays a script: events, clock ticks and idle answers, then the end.
final class ScriptedSource: EventSource {
    enum Item { case item(MarketEvent), idle }
    let name: String
    var formatName: String { "script" }
    private(set) var stats = SourceStats()
    private var items: [Item]
    private var position = 0

    init(_ items: [Item], name: String = "script") { self.name = name; self.items = items }

    func next(_ event: inout MarketEvent) -> SourceStep {
        guard position < items.count else { return .end }
        defer { position += 1 }
        switch items[position] {
        case .item(let next):
            event = next
            stats.events += 1
            return .event
        case .idle:
            return .idle
        }
    }
}

/// A driver that records what the engine asked of it; `idle()` lets the run go on up to a limit.
final class RecordingDriver: EngineDriver {
    let paces: Bool
    private(set) var idleCalls = 0
    private(set) var delivered: [Nanos] = []
    let maximumIdleCalls: Int
    init(paces: Bool = false, maximumIdleCalls: Int = 1_000) {
        self.paces = paces; self.maximumIdleCalls = maximumIdleCalls
    }
    func willDeliver(receiveTime: Nanos) { delivered.append(receiveTime) }
    func idle() -> Bool { idleCalls += 1; return idleCalls <= maximumIdleCalls }
}

private let second: Nanos = 1_000_000_000
private let minute: Nanos = 60 * second
/// 2024-08-08T00:00:00Z, a minute boundary.
private let origin: Nanos = 1_723_075_200 * second

/// Outputs as canonical lines (NaN-safe comparison: a NaN indicator is an empty field).
private func lines(_ sink: CollectingSink, _ symbols: SymbolTable) -> [String] {
    sink.outputs.map { $0.canonicalLine(symbols: symbols) }
}

final class EngineTests: XCTestCase {
    private func trade(_ symbol: SymbolID, at offset: Nanos, price: Double, size: Double) -> MarketEvent {
        .trade(eventTime: origin + offset, receiveTime: origin + offset, symbol: symbol, price: price, size: size)
    }

    private func config(timeframes: [Int64] = [60], staleAfter: Nanos = 120 * second) -> PipelineConfig {
        var config = PipelineConfig()
        config.timeframes = timeframes.map { Timeframe(seconds: $0) }
        config.staleFeed.after = staleAfter
        config.priceSpike.enabled = false
        config.volumeSpike.enabled = false
        return config
    }

    private func run(_ items: [ScriptedSource.Item], config: PipelineConfig, finish: Bool = true,
                     symbols: SymbolTable = SymbolTable()) -> (Engine, CollectingSink, EngineStop) {
        let sink = CollectingSink()
        let engine = Engine(settings: EngineSettings(config: config), symbols: symbols, sinks: [sink])
        let stop = engine.run(ScriptedSource(items), driver: RecordingDriver())
        if finish { engine.finish() }
        return (engine, sink, stop)
    }

    /// An idle source holds the run without changing it: the outputs equal those of the same items
    /// with no idle answers in between, and the driver was asked to wait once per idle answer.
    func testIdleAnswersDoNotChangeOutputs() {
        let symbols = SymbolTable()
        let btc = symbols.intern("BTC")
        let trades = (0..<200).map { trade(btc, at: Nanos($0) * 2 * second, price: 100 + Double($0 % 7), size: 1) }
        let plain = run(trades.map { .item($0) }, config: config(), symbols: symbols)
        var withIdle: [ScriptedSource.Item] = []
        for (index, event) in trades.enumerated() {
            withIdle.append(.item(event))
            if index % 3 == 0 { withIdle.append(.idle); withIdle.append(.idle) }
        }
        let symbolsIdle = SymbolTable()
        _ = symbolsIdle.intern("BTC")
        let sink = CollectingSink()
        let engine = Engine(settings: EngineSettings(config: config()), symbols: symbolsIdle, sinks: [sink])
        let driver = RecordingDriver()
        XCTAssertEqual(engine.run(ScriptedSource(withIdle), driver: driver), .endOfStream)
        engine.finish()
        XCTAssertEqual(driver.idleCalls, 2 * 67)
        XCTAssertEqual(lines(sink, symbols), lines(plain.1, symbols))
        XCTAssertEqual(engine.digest.hexDigest, plain.0.digest.hexDigest)
        XCTAssertGreaterThan(sink.outputs.count, 0)
    }

    /// A driver that says no while the source is idle stops the run, and nothing is lost: the items
    /// before the idle answer were delivered, and a new run continues with the rest.
    func testDriverStopsOnIdle() {
        let symbols = SymbolTable()
        let btc = symbols.intern("BTC")
        let items: [ScriptedSource.Item] = [.item(trade(btc, at: 0, price: 1, size: 1)), .idle,
                                            .item(trade(btc, at: second, price: 2, size: 1))]
        let engine = Engine(settings: EngineSettings(config: config()), symbols: symbols, sinks: [])
        let source = ScriptedSource(items)
        XCTAssertEqual(engine.run(source, driver: RecordingDriver(maximumIdleCalls: 0)), .stoppedByDriver)
        XCTAssertEqual(engine.counters.delivered, 1)
        XCTAssertEqual(engine.run(source, driver: RecordingDriver()), .endOfStream)
        XCTAssertEqual(engine.counters.delivered, 2)
    }

    /// A sink's `pollDue` reaches the driver's idle wait (the earliest of the sinks'), after the sinks were
    /// polled: a live driver waiting for input wakes by the time a batching sink wants its poll.
    func testIdleDriverGetsTheEarliestPollDueOfTheSinks() {
        final class DueSink: EngineSink {
            let name: String
            var due: Int64?
            var polls = 0
            init(_ name: String, due: Int64?) { self.name = name; self.due = due }
            var failure: (any Error)? { nil }
            func emit(_ output: GraphOutput) {}
            func flush() throws {}
            func close() throws {}
            func poll() { polls += 1 }
            var pollDue: Int64? { due }
        }
        final class DueDriver: EngineDriver {
            let paces = false
            var seen: [Int64?] = []
            func idle() -> Bool { XCTFail("the engine calls idle(pollDue:)"); return false }
            func idle(pollDue: Int64?) -> Bool { seen.append(pollDue); return true }
        }
        let symbols = SymbolTable()
        let btc = symbols.intern("BTC")
        let later = DueSink("later", due: 9_000), sooner = DueSink("sooner", due: 4_000), none = DueSink("none", due: nil)
        let engine = Engine(settings: EngineSettings(config: config()), symbols: symbols, sinks: [later, none, sooner])
        let driver = DueDriver()
        let items: [ScriptedSource.Item] = [.item(trade(btc, at: 0, price: 1, size: 1)), .idle]
        XCTAssertEqual(engine.run(ScriptedSource(items), driver: driver), .endOfStream)
        XCTAssertEqual(driver.seen, [4_000])
        XCTAssertEqual(sooner.polls, 1, "polled before the wait")
        XCTAssertEqual(engine.pollDue, 4_000)
        sooner.due = nil; later.due = nil
        XCTAssertNil(engine.pollDue)
        // A driver that only has idle() (the protocol's default for idle(pollDue:)) still works.
        let plain = RecordingDriver()
        XCTAssertEqual(engine.run(ScriptedSource([.idle]), driver: plain), .endOfStream)
        XCTAssertEqual(plain.idleCalls, 1)
    }

    /// Clock ticks carried in the stream close a quiet symbol's bar and fire its stale-feed rule at the
    /// tick's stream position — before the next event — with the values computed by hand below.
    func testClockTicksFireTimersOnAQuietSymbol() {
        let symbols = SymbolTable()
        let btc = symbols.intern("BTC")
        let eth = symbols.intern("ETH")
        // BTC trades in the first minute only; ETH trades once, much later.
        var items: [ScriptedSource.Item] = [
            .item(trade(btc, at: 5 * second, price: 100, size: 2)),
            .item(trade(btc, at: 20 * second, price: 104, size: 1)),
            .item(trade(btc, at: 40 * second, price: 98, size: 1)),
            .item(trade(btc, at: 50 * second, price: 101, size: 4)),
        ]
        // A tick every 10 s of stream time from 60 s to 200 s.
        for tick in stride(from: 60, through: 200, by: 10) {
            items.append(.item(.clockTick(at: origin + Nanos(tick) * second)))
        }
        items.append(.item(trade(eth, at: 300 * second, price: 10, size: 1)))
        let (engine, sink, stop) = run(items, config: config(), finish: false, symbols: symbols)
        XCTAssertEqual(stop, .endOfStream)
        XCTAssertEqual(engine.counters.clockTicks, 15)
        XCTAssertEqual(engine.counters.delivered, 5)

        // Expected, by hand: the 1m bar [0 s, 60 s) of BTC: open 100, high 104, low 98, close 101,
        // volume 8, VWAP (200 + 104 + 98 + 404) / 8 = 100.75, 4 trades. It closes at the first clock
        // time >= end + lateness (62 s): the tick at 70 s. Stale feed: last BTC event at 50 s, fires at
        // 50 s + 120 s = 170 s (a timer's `now` is its due time), gap 120 s.
        let bars = sink.outputs.compactMap { output -> BarOutput? in if case .bar(let bar) = output { bar } else { nil } }
        XCTAssertEqual(bars.count, 1)
        let bar = bars[0]
        XCTAssertEqual([bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap], [100, 104, 98, 101, 8, 100.75])
        XCTAssertEqual(bar.trades, 4)
        XCTAssertEqual(bar.start, origin)
        let stale = sink.outputs.compactMap { output -> AnomalyOutput? in
            if case .anomaly(let anomaly) = output, anomaly.rule == "stale_feed" { anomaly } else { nil }
        }
        XCTAssertEqual(stale.map(\.symbol), [btc])
        XCTAssertEqual(stale.first?.time, origin + 170 * second)
        XCTAssertEqual(stale.first?.value, 120)
        // Both came out before ETH's event: nothing of ETH's is in the outputs yet (its bar is open).
        XCTAssertFalse(sink.outputs.contains { $0.symbol == eth })

        // Without the ticks, the same events close the bar only when ETH's event moves the clock, and
        // the stale-feed timer fires at that point too (its due time is still 170 s).
        let noTicks = items.filter { if case .item(let event) = $0 { event.kind != .clockTick } else { true } }
        let plain = run(noTicks, config: config(), finish: false, symbols: symbols)
        XCTAssertEqual(lines(plain.1, symbols), lines(sink, symbols), "ticks move timers earlier in wall terms, never in outputs")
    }

    /// A consumer that lags behind wall time computes exactly what a prompt one does: pacing and
    /// waiting happen in the driver, the engine never reads wall time.
    func testLaggingDriverGivesTheSameDigests() {
        let symbols = SymbolTable()
        let btc = symbols.intern("BTC")
        let items: [ScriptedSource.Item] = (0..<300).map {
            .item(trade(btc, at: Nanos($0) * 700_000_000, price: 50 + Double($0 % 11), size: 0.5))
        }
        final class SlowDriver: EngineDriver {
            let paces = true
            func willDeliver(receiveTime: Nanos) { usleep(200) }
        }
        let prompt = run(items, config: config(timeframes: [15, 60]), symbols: symbols)
        let slowSymbols = SymbolTable()
        _ = slowSymbols.intern("BTC")
        let engine = Engine(settings: EngineSettings(config: config(timeframes: [15, 60])), symbols: slowSymbols,
                            sinks: [])
        _ = engine.run(ScriptedSource(items), driver: SlowDriver())
        engine.finish()
        XCTAssertEqual(engine.digest.hexDigest, prompt.0.digest.hexDigest)
        XCTAssertEqual(engine.digest.digestsBySymbol, prompt.0.digest.digestsBySymbol)
    }

    /// Filters: the symbol filter never drops a clock tick; the event-time filter applies to ticks too.
    func testFiltersAndTicks() {
        let symbols = SymbolTable()
        let btc = symbols.intern("spot:BTC")
        let eth = symbols.intern("spot:ETH")
        var settings = EngineSettings(config: config())
        settings.symbols = ["eth"]
        settings.from = origin + 10 * second
        let engine = Engine(settings: settings, symbols: symbols, sinks: [])
        let items: [ScriptedSource.Item] = [
            .item(trade(btc, at: 11 * second, price: 1, size: 1)),
            .item(trade(eth, at: 12 * second, price: 1, size: 1)),
            .item(.clockTick(at: origin + 5 * second)),
            .item(.clockTick(at: origin + 15 * second)),
        ]
        _ = engine.run(ScriptedSource(items), driver: RecordingDriver())
        XCTAssertEqual(engine.counters.delivered, 1)
        XCTAssertEqual(engine.counters.clockTicks, 1)
        XCTAssertEqual(engine.counters.filtered, 2)
    }
}

final class MergeIdleTests: XCTestCase {
    /// While one source is idle the merge answers idle (it cannot know whether that source will still
    /// deliver an earlier item); once it delivers, the order is the same as with no idle answers.
    func testMergeWaitsForAnIdleSource() {
        func event(_ time: Nanos, _ sequence: Int64) -> MarketEvent {
            .trade(eventTime: time, receiveTime: time, symbol: 1, price: 1, size: 1, sequence: sequence)
        }
        let first = ScriptedSource([.item(event(10, 1)), .item(event(30, 2))], name: "a")
        let second = ScriptedSource([.idle, .item(event(20, 3)), .idle, .idle, .item(event(40, 4))], name: "b")
        let merged = MergedSource([first, second])
        var steps: [String] = []
        var item = MarketEvent()
        loop: while true {
            switch merged.next(&item) {
            case .event: steps.append("\(item.sequence)")
            case .idle: steps.append("idle")
            case .end: break loop
            }
        }
        XCTAssertEqual(steps, ["idle", "1", "3", "idle", "idle", "2", "4"])
    }
}
