import TapeCore

/// The points of the graph a rule listens to. The graph calls a rule only at the points it names.
public struct RuleHooks: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Every event of a symbol, before the graph processes it (`onEvent`).
    public static let events = RuleHooks(rawValue: 1 << 0)
    /// Every trade that is not late, before it enters the bars (`acceptTrade`); a rule may keep it out.
    public static let trades = RuleHooks(rawValue: 1 << 1)
    /// Every bar close of the rule's `timeframe`, after the bar and its indicators (`onBarClose`).
    public static let barCloses = RuleHooks(rawValue: 1 << 2)
    /// The rule's own timers, scheduled with `RuleContext.scheduleTimer` (`onTimer`).
    public static let timers = RuleHooks(rawValue: 1 << 3)
}

/// An anomaly rule: a graph node that watches one symbol's stream and emits `AnomalyOutput`s.
/// It owns its per-symbol state (arrays indexed by `SymbolID`), emits and schedules timers through
/// the `RuleContext` it is given, and never reads the wall clock. A new rule is one file in
/// `Sources/TapeGraph/Rules/` plus one line in `RuleRegistry.rules(for:)`:
///
///     final class WideSpreadRule: AnomalyRule { let name = "wide_spread"; let hooks: RuleHooks = [.events] ... }
///     // Rules/RuleRegistry.swift:
///     if config.wideSpread.enabled { rules.append(WideSpreadRule(config.wideSpread)) }
///
/// Contract: at one instant, rules run in registration order (so their anomalies are emitted in that
/// order); a hook the rule did not name in `hooks` is never called; `snapshot`/`restore` write and read
/// all of the rule's state (docs/snapshot.md), so that snapshot → restore → continue equals an
/// uninterrupted run. Per-symbol state must not allocate per event.
public protocol AnomalyRule: AnyObject {
    /// The rule's name, as in `AnomalyOutput.rule` and in snapshots.
    var name: String { get }
    /// Which hooks the graph calls.
    var hooks: RuleHooks { get }
    /// For `.barCloses`: the timeframe whose closes the rule sees (config validation refuses a
    /// timeframe that is not configured).
    var timeframe: Timeframe? { get }

    /// `.events`: an event of `event.symbol` arrives at clock time `now`.
    func onEvent(_ event: MarketEvent, now: Nanos, context: RuleContext)
    /// `.trades`: a trade that is not late. Returns false to keep it out of the bars (and out of the
    /// later rules); the graph counts it in `GraphCounters.badTicks`.
    func acceptTrade(_ event: MarketEvent, context: RuleContext) -> Bool
    /// `.barCloses`: a bar of `timeframe` closed (already emitted with its indicators).
    /// `volumeKnown` is false when the input had no volume (then `bar.volume` is NaN).
    func onBarClose(_ bar: BarOutput, volumeKnown: Bool, context: RuleContext)
    /// `.timers`: a timer scheduled with `context.scheduleTimer(at:symbol:)` is due; `now` is its due time.
    func onTimer(symbol: SymbolID, now: Nanos, context: RuleContext)

    /// Writes all of the rule's state.
    func snapshot(into writer: inout SnapshotWriter)
    /// Replaces the rule's state with what `snapshot` wrote; throws `SnapshotError` on bad bytes.
    func restore(from reader: inout SnapshotReader) throws
}

extension AnomalyRule {
    public var timeframe: Timeframe? { nil }
    public func onEvent(_ event: MarketEvent, now: Nanos, context: RuleContext) {
        preconditionFailure("\(name) does not listen to events")
    }
    public func acceptTrade(_ event: MarketEvent, context: RuleContext) -> Bool {
        preconditionFailure("\(name) does not listen to trades")
    }
    public func onBarClose(_ bar: BarOutput, volumeKnown: Bool, context: RuleContext) {
        preconditionFailure("\(name) does not listen to bar closes")
    }
    public func onTimer(symbol: SymbolID, now: Nanos, context: RuleContext) {
        preconditionFailure("\(name) schedules no timers")
    }
}

/// What a rule may do to the graph: emit an anomaly, schedule one of its timers. Made by the graph
/// for each call (it carries the rule's index, which goes into the timer token); valid only during
/// that call (it does not retain the graph: no reference counting per event).
public struct RuleContext {
    unowned(unsafe) let graph: Graph
    let ruleIndex: Int

    @inline(__always)
    init(graph: Graph, ruleIndex: Int) {
        assert(ruleIndex >= 0 && ruleIndex < Graph.ruleCountMax)
        self.graph = graph
        self.ruleIndex = ruleIndex
    }

    /// Emits an anomaly: to the sink, then to the downstream nodes.
    @inline(__always)
    public func emit(_ anomaly: AnomalyOutput) { graph.emit(.anomaly(anomaly)) }

    /// The name of a symbol (`spot:BTCUSDT`); cold paths only (it returns a `String`).
    public func symbolName(_ symbol: SymbolID) -> String { graph.symbols.name(symbol) }

    /// Calls the rule's `onTimer(symbol:now:context:)` once the clock reaches `due`.
    public func scheduleTimer(at due: Nanos, symbol: SymbolID) {
        graph.scheduleRuleTimer(at: due, symbol: symbol, rule: ruleIndex)
    }
}

/// Grows a per-symbol state array so that `symbol` indexes it (cold: once per new symbol).
@inline(never)
func growSlots<State>(_ states: inout [State], to symbol: SymbolID, _ make: () -> State) {
    let index = Int(symbol)
    states.reserveCapacity(index + 1)
    while states.count <= index { states.append(make()) }
    assert(states.count > index)
}

/// The most symbols a snapshot may hold (a guard against garbage counts).
let snapshotSymbolsMax = 1 << 24
