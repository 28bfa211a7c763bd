import TapeCore
import TapeClock
import TapeGraph

/// The trading layer as a graph node (docs/backtesting.md): sees every input event before the graph does
/// (fills against the book first; a decision made on an output never acts on the event that caused it),
/// then every graph output in emission order, and the end of input. What the `TradingEngine` emits goes out
/// as `GraphOutput.trading`, to the sinks (run folder, digest, stores) like any other output. Added after the
/// model's inference node, so strategies see each bar's prediction.
public final class TradingNode: DownstreamNode {
    public let engine: TradingEngine
    private let outbox: Outbox
    private var clock: SimulatedClock? = nil

    final class Outbox {
        var items: [GraphOutput] = []
    }

    public init(config: TradingConfig, strategies: [Strategy]) {
        let outbox = Outbox()
        self.outbox = outbox
        engine = TradingEngine(config: config, strategies: strategies) { outbox.items.append(.trading($0)) }
    }

    public var wantsEvents: Bool { true }

    public func attach(clock: SimulatedClock, symbols: SymbolTable) {
        self.clock = clock
        engine.symbols = symbols
    }

    public func onEvent(_ event: MarketEvent, emit: (GraphOutput) -> Void) {
        engine.onEvent(event)
        drain(emit)
    }

    public func process(_ output: GraphOutput, emit: (GraphOutput) -> Void) {
        if case .trading = output { return }
        // Bars closed by a timer come with no event: the stream's time is the clock's.
        if let clock, clock.now > engine.now { engine.advance(to: clock.now) }
        engine.onOutput(output)
        drain(emit)
    }

    public func finish(emit: (GraphOutput) -> Void) {
        engine.finish()
        drain(emit)
    }

    public func snapshot(into writer: inout SnapshotWriter) { engine.snapshot(into: &writer) }
    public func restore(from reader: inout SnapshotReader) throws { try engine.restore(from: &reader) }

    private func drain(_ emit: (GraphOutput) -> Void) {
        guard !outbox.items.isEmpty else { return }
        let items = outbox.items
        outbox.items.removeAll(keepingCapacity: true)
        for item in items {
            // Kept for the run's metrics: the account's equity marks and every fill.
            switch item {
            case .trading(.equity(let row)) where row.symbol == nil: totalEquity.append(row)
            case .trading(.fill(let fill)): fills.append(fill)
            default: break
            }
            emit(item)
        }
    }

    private var totalEquity: [EquityRecord] = []
    private var fills: [FillRecord] = []

    /// The metrics of what this process traded (`PerformanceMetrics`), annualised by the mark timeframe.
    /// A run continued from a snapshot counts from the snapshot on.
    public var metrics: PerformanceMetrics {
        PerformanceMetrics.compute(equity: totalEquity, fills: fills, initialCash: engine.config.initialCash,
                                   periodsPerYear: PerformanceMetrics.periodsPerYear(engine.config.markTimeframe))
    }

    public var summarySection: (key: String, value: JSONValue)? {
        let m = metrics
        func number(_ value: Double) -> JSONValue { value.isFinite ? .number(value) : .null }
        let strategies = engine.strategies.map { JSONValue.string($0.name) }
        return ("trading", .object([
            ("strategies", .array(strategies)),
            ("mark_timeframe", .string(engine.config.markTimeframe.description)),
            ("initial_cash", number(engine.config.initialCash)),
            ("end_equity", number(m.endEquity)),
            ("periods", .number(Double(m.periods))),
            ("total_return", number(m.totalReturn)),
            ("annualized_return", number(m.annualizedReturn)),
            ("volatility", number(m.volatility)),
            ("sharpe", number(m.sharpe)),
            ("sortino", number(m.sortino)),
            ("max_drawdown", number(m.maxDrawdown)),
            ("max_drawdown_duration_periods", .number(Double(m.maxDrawdownDurationPeriods))),
            ("calmar", number(m.calmar)),
            ("turnover", number(m.turnover)),
            ("trade_count", .number(Double(m.tradeCount))),
            ("hit_rate", number(m.hitRate)),
            ("average_win", number(m.averageWin)),
            ("average_loss", number(m.averageLoss)),
            ("profit_factor", number(m.profitFactor)),
            ("exposure", number(m.exposure)),
            ("fees_paid", number(m.feesPaid)),
            ("fills", .number(Double(fills.count))),
        ]))
    }
}

/// A strategy limited to some symbols (a config entry's `symbols:`, names or patterns with `*`): it sees
/// only their events and outputs. Matching is by name, decided once per symbol id.
public final class SymbolScopedStrategy: Strategy {
    public let inner: Strategy
    public let patterns: [String]
    private var decided: [UInt8] = []   // by SymbolID: 0 unknown, 1 in, 2 out

    public init(_ inner: Strategy, patterns: [String]) {
        self.inner = inner
        self.patterns = patterns
    }

    public var name: String { inner.name }
    public var subscriptions: StrategySubscriptions { inner.subscriptions }

    public func onEvent(_ event: MarketEvent, context: StrategyContext) {
        if includes(event.symbol, context) { inner.onEvent(event, context: context) }
    }

    public func onOutput(_ output: GraphOutput, context: StrategyContext) {
        if let symbol = output.symbol, includes(symbol, context) { inner.onOutput(output, context: context) }
    }

    public func snapshot(into writer: inout SnapshotWriter) { inner.snapshot(into: &writer) }
    public func restore(from reader: inout SnapshotReader) throws { try inner.restore(from: &reader) }

    private func includes(_ symbol: SymbolID, _ context: StrategyContext) -> Bool {
        let index = Int(symbol)
        if index >= decided.count { decided.append(contentsOf: repeatElement(0, count: index + 1 - decided.count)) }
        if decided[index] == 0 {
            let name = context.symbolName(symbol)
            decided[index] = patterns.contains { Self.matches(name, $0) } ? 1 : 2
        }
        return decided[index] == 1
    }

    /// `*` matches any run of characters (also none); case-sensitive, like the config's symbol names.
    public static func matches(_ name: String, _ pattern: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 1 { return name == pattern }
        var rest = Substring(name)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.hasSuffix(parts.last!)
    }
}
