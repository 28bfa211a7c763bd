import TapeCore
import TapeClock
import TapeSources
import TapeGraph
import TapeSinks

/// What the engine needs to know, whoever drives it (replay, `tape live`, a Kafka worker).
public struct EngineSettings {
    /// The graph's configuration (timeframes, indicators, rules).
    public var config: PipelineConfig = PipelineConfig()
    /// Only these symbols (full `venue:SYMBOL` or bare `SYMBOL`, case-insensitive); nil = all.
    public var symbols: [String]? = nil
    /// Event-time filter, [from, to). Clock ticks are stream time and pass the same filter.
    public var from: Nanos? = nil
    public var to: Nanos? = nil
    /// Extra graph nodes (e.g. the model's inference node), added in order after the built-in ones.
    public var extraNodes: [DownstreamNode] = []
    /// How many delivered items between two looks at the sinks' health and the driver's checkpoint.
    public var checkInterval: Int = 4096
    /// Stop before the first item whose receive time is at or after this (stream time); the item stays
    /// unconsumed, so a run continuing from this run's checkpoint starts with it. nil = run to the end.
    public var stopAtReceive: Nanos? = nil

    public init(config: PipelineConfig = PipelineConfig()) { self.config = config }
}

/// What drives the engine besides its source: replay's pacing and pause, a live driver's waits.
/// Every method runs on the engine's thread, between two items.
///
///     final class FlatOut: EngineDriver { let paces = false }
///     let stop = engine.run(source, driver: FlatOut())
public protocol EngineDriver: AnyObject {
    /// True if `willDeliver` must be called before every item (pacing at N×); false to skip the call.
    var paces: Bool { get }
    /// Called before each delivered item (event or clock tick) with its receive time.
    func willDeliver(receiveTime: Nanos)
    /// Called every `EngineSettings.checkInterval` items: progress, pause. Return false to stop the run.
    func checkpoint(delivered: Int, streamTime: Nanos) -> Bool
    /// The source has nothing yet. Wait as the driver sees fit, then return true to pull again, or
    /// false to stop the run.
    func idle() -> Bool
    /// As `idle()`, with the earliest time a sink wants to be polled (`EngineSink.pollDue`, CLOCK_MONOTONIC
    /// ns; nil: none): a driver that waits for input should wake by then. Default: `idle()`.
    func idle(pollDue: Int64?) -> Bool
}

extension EngineDriver {
    public func willDeliver(receiveTime: Nanos) {}
    public func checkpoint(delivered: Int, streamTime: Nanos) -> Bool { true }
    public func idle() -> Bool { false }
    public func idle(pollDue: Int64?) -> Bool { idle() }
}

/// Why `Engine.run` returned.
public enum EngineStop: Equatable, Sendable {
    /// The source said `.end`.
    case endOfStream
    /// The driver asked to stop (`checkpoint` or `idle` returned false).
    case stoppedByDriver
    /// A sink failed (its name); nothing more was delivered. `Engine.sinkFailures` has the errors.
    case sinkFailed(String)
    /// The next item's receive time reached `EngineSettings.stopAtReceive`.
    case reachedStopTime
}

/// What the engine counted. Stream times are receive times; event times are exchange times.
public struct EngineCounters: Sendable, Equatable {
    /// Market events delivered to the graph (clock ticks not included).
    public var delivered = 0
    /// Items dropped by the symbol or event-time filter.
    public var filtered = 0
    /// Clock ticks that advanced the clock.
    public var clockTicks = 0
    public var firstReceive: Nanos? = nil
    public var lastReceive: Nanos? = nil
    public var firstEvent: Nanos? = nil
    public var lastEvent: Nanos? = nil
}

/// The run loop shared by every driver: **source → clock → graph → sinks**.
///
/// One engine is one deterministic computation: its outputs are a pure function of the items it is
/// given, in order, and its settings. Time comes from the stream only: before an item is delivered the
/// clock advances to its receive time, firing every due timer in (due time, registration order); a
/// clock tick advances the clock and is not delivered. The engine never reads wall time; drivers pace,
/// pause and wait through `EngineDriver`.
///
///     let engine = Engine(settings: settings, symbols: symbols, sinks: [folder])
///     _ = engine.run(source, driver: replayPacer)
///     engine.finish()
public final class Engine {
    public let settings: EngineSettings
    public let symbols: SymbolTable
    public let clock: SimulatedClock
    public let graph: Graph
    /// Global and per-symbol digests of every output (every run has them: they are its identity).
    public let digest: DigestSink
    /// Sinks that may fail, checked every `checkInterval` items and at the end.
    public let engineSinks: [EngineSink]
    /// The sinks that also record every delivered market event (stores of ticks).
    public let eventSinks: [EventSink]
    public var counters: EngineCounters {
        var current = counted
        if eventTimeMinimum != .max { current.firstEvent = eventTimeMinimum }
        if eventTimeMaximum != .min { current.lastEvent = eventTimeMaximum }
        return current
    }
    /// The counters, but for the event-time range, kept apart on the hot path (no optionals per event).
    var counted = EngineCounters()
    var eventTimeMinimum: Nanos = .max
    var eventTimeMaximum: Nanos = .min
    /// Items pulled so far per source index (`MarketEvent.source`), delivered or filtered: the input
    /// position a checkpoint records and a continuing run skips.
    public internal(set) var positions: [UInt64] = []
    /// Errors of failed sinks, by sink name, in the order they were found.
    public private(set) var sinkFailures: [(sink: String, error: any Error)] = []

    private let filter: SymbolFilter
    private let from: Nanos
    private let to: Nanos
    private var finished = false

    /// `sinks` see every output, in order. Those that are `EngineSink`s are checked for failure and
    /// closed by `close()`. `digest`: nil, and the engine feeds a digest of its own first; or a digest
    /// that one of `sinks` feeds (a `RunOutputSink` formats each output once for it and the run folder).
    public init(settings: EngineSettings, symbols: SymbolTable, sinks: [GraphSink], digest: DigestSink? = nil) {
        self.settings = settings
        self.symbols = symbols
        clock = SimulatedClock(start: 0)
        self.digest = digest ?? DigestSink(symbols: symbols)
        engineSinks = sinks.compactMap { $0 as? EngineSink }
        eventSinks = sinks.compactMap { $0 as? EventSink }
        graph = Graph(config: settings.config, clock: clock, symbols: symbols,
                      sink: SinkFanout(digest == nil ? [self.digest] + sinks : sinks))
        for node in settings.extraNodes { graph.addNode(node) }
        filter = SymbolFilter(settings.symbols)
        from = settings.from ?? .min
        to = settings.to ?? .max
        precondition(settings.checkInterval > 0, "checkInterval must be positive")
    }

    /// True if the filters let this item through (counted as filtered otherwise).
    @inline(__always)
    public func accepts(_ event: MarketEvent) -> Bool {
        if event.eventTime < from || event.eventTime >= to { return false }
        return event.kind == .clockTick || filter.accepts(event.symbol, symbols)
    }

    /// Delivers one item that passed `accepts`: advances the clock to its receive time (due timers
    /// fire first), then gives a market event to the graph; a clock tick only advances the clock.
    @inline(__always)
    public func deliver(_ event: MarketEvent) {
        precondition(!finished, "deliver after finish")
        clock.advance(to: event.receiveTime)
        if counted.firstReceive == nil { counted.firstReceive = event.receiveTime }
        counted.lastReceive = event.receiveTime
        if event.kind == .clockTick {
            counted.clockTicks += 1
            for sink in eventSinks { sink.recordClockTick(at: event.receiveTime) }
            return
        }
        for sink in eventSinks { sink.record(event) }
        graph.onEvent(event)
        counted.delivered += 1
        if event.eventTime < eventTimeMinimum { eventTimeMinimum = event.eventTime }
        if event.eventTime > eventTimeMaximum { eventTimeMaximum = event.eventTime }
    }

    /// Filters and delivers one item (the whole per-item path, for drivers that push).
    @inline(__always)
    public func process(_ event: MarketEvent) {
        advancePosition(event.source)
        if accepts(event) { deliver(event) } else { counted.filtered += 1 }
    }

    @inline(__always)
    private func advancePosition(_ source: UInt32) {
        let index = Int(source)
        if index >= positions.count { positions.append(contentsOf: repeatElement(0, count: index + 1 - positions.count)) }
        positions[index] &+= 1
    }

    /// Pulls items from `source` until it ends, the driver stops the run, or a sink fails.
    public func run(_ source: EventSource, driver: EngineDriver) -> EngineStop {
        var event = MarketEvent()
        let paces = driver.paces
        let interval = settings.checkInterval
        let stopAt = settings.stopAtReceive ?? .max
        var sinceCheck = 0
        while true {
            switch source.next(&event) {
            case .event:
                if event.receiveTime >= stopAt { return .reachedStopTime }
                advancePosition(event.source)
                if accepts(event) {
                    if paces { driver.willDeliver(receiveTime: event.receiveTime) }
                    deliver(event)
                } else {
                    counted.filtered += 1
                }
                // Filtered items count too: a run that filters everything still checks (interrupts).
                sinceCheck += 1
                if sinceCheck >= interval {
                    sinceCheck = 0
                    if let failed = checkSinks() { return .sinkFailed(failed) }
                    if !driver.checkpoint(delivered: counters.delivered, streamTime: event.receiveTime) {
                        return .stoppedByDriver
                    }
                }
            case .idle:
                if let failed = checkSinks() { return .sinkFailed(failed) }
                if !driver.idle(pollDue: pollDue) { return .stoppedByDriver }
            case .end:
                return .endOfStream
            }
        }
    }

    /// The earliest `pollDue` of the sinks (nil: none wants a poll by a time).
    public var pollDue: Int64? {
        var earliest: Int64? = nil
        for sink in engineSinks { if let due = sink.pollDue, due < (earliest ?? .max) { earliest = due } }
        return earliest
    }

    /// Records newly failed sinks; returns the name of the first failed one, if any.
    @discardableResult
    public func checkSinks() -> String? {
        for sink in engineSinks { sink.poll() }
        return collectFailures()
    }

    @discardableResult
    private func collectFailures() -> String? {
        for sink in engineSinks {
            if let error = sink.failure, !sinkFailures.contains(where: { $0.sink == sink.name }) {
                sinkFailures.append((sink.name, error))
            }
        }
        return sinkFailures.first?.sink
    }

    /// End of input: every open window closes (as if the watermark went to +infinity). Not called when
    /// the run ends in a snapshot, which keeps the open windows for the run that continues from it.
    public func finish() {
        precondition(!finished, "finish twice")
        graph.finish()
        finished = true
    }

    /// Flushes and closes every `EngineSink` (each once, all of them even if one fails), then reports
    /// the failures found so far and now. Returns them (empty = every output is where it belongs).
    @discardableResult
    public func close() -> [(sink: String, error: any Error)] {
        for sink in engineSinks {
            do { try sink.close() } catch {
                if !sinkFailures.contains(where: { $0.sink == sink.name }) { sinkFailures.append((sink.name, error)) }
            }
        }
        collectFailures()
        return sinkFailures
    }
}

/// `--symbols` filter: full `venue:SYMBOL` or bare `SYMBOL`, case-insensitive. Decided once per symbol id.
public final class SymbolFilter {
    private let wanted: Set<String>?
    private var decided: [UInt8] = []   // 0 unknown, 1 yes, 2 no

    public init(_ list: [String]?) { wanted = list.map { Set($0.map { $0.uppercased() }) } }

    @inline(__always)
    public func accepts(_ id: SymbolID, _ table: SymbolTable) -> Bool {
        guard let wanted else { return true }
        let index = Int(id)
        if index < decided.count, decided[index] != 0 { return decided[index] == 1 }
        if index >= decided.count { decided.append(contentsOf: repeatElement(0, count: index + 1 - decided.count)) }
        let name = table.name(id).uppercased()
        let bare = name.split(separator: ":").last.map(String.init) ?? name
        let accepted = wanted.contains(name) || wanted.contains(bare)
        decided[index] = accepted ? 1 : 2
        return accepted
    }
}
