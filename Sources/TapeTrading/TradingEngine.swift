import TapeCore
import TapeGraph

/// The trading layer's settings.
public struct TradingConfig: Sendable, Equatable {
    public var initialCash: Double
    public var execution: ExecutionConfig
    /// Equity is marked (equity and position rows) on every bar close of this timeframe.
    public var markTimeframe: Timeframe

    public init(initialCash: Double = 100_000, execution: ExecutionConfig = ExecutionConfig(),
                markTimeframe: Timeframe = Timeframe(seconds: 60)) {
        precondition(initialCash.isFinite, "initial cash is finite")
        self.initialCash = initialCash
        self.execution = execution
        self.markTimeframe = markTimeframe
    }
}

/// Strategies, the simulated venue and the account, driven by the stream (docs/backtesting.md).
///
///     let trading = TradingEngine(config: config, strategies: [MACDCrossStrategy()]) { output in sink(output) }
///     for event in stream {
///         trading.onEvent(event)                        // before the graph sees it
///         graph.onEvent(event)                          // its outputs → trading.onOutput(_:)
///     }
///     graph.finish(); trading.finish()
///
/// Single-threaded, in stream order. Per event: orders due before its receive time arrive (against the book as
/// it was), the event updates the book and fills resting orders, then subscribed strategies see it. Per graph
/// output: a bar close of `markTimeframe` marks its symbol (equity and position rows), then subscribed
/// strategies see it. Everything goes out through `emit` in the order it happened.
public final class TradingEngine {
    /// Bumped when the snapshot layout changes (2: each open order's fill count).
    public static let snapshotVersion: UInt64 = 2
    static let magic = Array("TAPETRAD".utf8)

    public let config: TradingConfig
    public let simulator: ExecutionSimulator
    public let portfolio: Portfolio
    public private(set) var strategies: [Strategy] = []
    private var contexts: [StrategyContext] = []
    private let emit: (TradingOutput) -> Void
    /// The run's symbol names (set by `TradingNode` when the graph attaches it): for strategies that speak
    /// names (the external protocol, symbol filters).
    public var symbols: SymbolTable? = nil
    /// The latest receive time seen; `Nanos.min` before the first event.
    public private(set) var now: Nanos = Nanos.min
    private var finished = false

    public init(config: TradingConfig, strategies: [Strategy], emit: @escaping (TradingOutput) -> Void) {
        self.config = config
        self.simulator = ExecutionSimulator(config: config.execution)
        self.portfolio = Portfolio(initialCash: config.initialCash)
        self.emit = emit
        self.strategies = strategies
        self.contexts = strategies.map { StrategyContext(engine: self, strategyName: $0.name) }
        let names = strategies.map(\.name)
        precondition(Set(names).count == names.count, "strategy names are unique within one engine: \(names)")
    }

    // MARK: - Driving

    /// Every input event, in stream order, before the graph processes it.
    public func onEvent(_ event: MarketEvent) {
        precondition(!finished, "no event after finish()")
        now = max(now, event.receiveTime)
        simulator.onEvent(event)
        drainReports()
        let wanted: StrategySubscriptions
        switch event.kind {
        case .trade: wanted = .trades
        case .quote: wanted = .quotes
        case .bar, .clockTick: return
        }
        for index in strategies.indices where strategies[index].subscriptions.contains(wanted) {
            strategies[index].onEvent(event, context: contexts[index])
            drainReports()
        }
    }

    /// Stream time moved without an event for the simulator (a clock tick handled elsewhere): orders due
    /// before `time` arrive.
    public func advance(to time: Nanos) {
        now = max(now, time)
        simulator.advance(to: time)
        drainReports()
    }

    /// Every graph output, in emission order.
    public func onOutput(_ output: GraphOutput) {
        precondition(!finished, "no output after finish()")
        let wanted: StrategySubscriptions
        switch output {
        case .bar(let bar):
            if bar.timeframe == config.markTimeframe { mark(bar) }
            wanted = .bars
        case .indicators: wanted = .indicators
        case .anomaly: wanted = .anomalies
        case .prediction: wanted = .predictions
        case .lateTick, .trading: return
        }
        for index in strategies.indices where strategies[index].subscriptions.contains(wanted) {
            strategies[index].onOutput(output, context: contexts[index])
            drainReports()
        }
    }

    /// Outputs of the graph's own `finish()` go through `onOutput` first; then this: orders arriving at the last
    /// instant are applied; resting orders stay open.
    public func finish() {
        guard !finished else { return }
        simulator.finish()
        drainReports()
        finished = true
    }

    private func mark(_ bar: BarOutput) {
        portfolio.mark(symbol: bar.symbol, price: bar.close)
        if portfolio.position(bar.symbol) != 0 {
            emit(.position(portfolio.positionRecord(bar.symbol, time: bar.end)))
        }
        emit(.equity(portfolio.equityRecord(bar.symbol, time: bar.end)))
        emit(.equity(portfolio.totalEquityRecord(time: bar.end)))
    }

    // MARK: - Order entry (through StrategyContext)

    func submit(_ request: OrderRequest) -> OrderID {
        let id = simulator.submit(request, at: now)
        drainReports()
        return id
    }

    func cancel(_ id: OrderID) -> Bool { simulator.cancel(id, at: now) }

    func replace(_ id: OrderID, quantity: Double, limitPrice: Double?, stopPrice: Double?) -> OrderID? {
        let newID = simulator.replace(id, quantity: quantity, limitPrice: limitPrice, stopPrice: stopPrice, at: now)
        drainReports()
        return newID
    }

    private func drainReports() {
        simulator.takeReports { report in
            switch report {
            case .order(let record):
                emit(.order(record))
            case .fill(let fill):
                portfolio.apply(fill)
                emit(.fill(fill))
                var position = portfolio.positionRecord(fill.symbol, time: fill.time)
                position.orderID = fill.orderID
                position.fillNumber = fill.fillNumber
                emit(.position(position))
            }
        }
    }

    // MARK: - Snapshot

    /// The whole trading state between two events: clock, simulator (book, open orders, next id), portfolio,
    /// and each strategy's block (by name, in order). Layout in docs/backtesting.md.
    public func snapshot(into writer: inout SnapshotWriter) {
        precondition(!finished, "a snapshot is taken before finish()")
        var body = SnapshotWriter()
        body.append(now)
        simulator.snapshot(into: &body)
        portfolio.snapshot(into: &body)
        body.appendCount(strategies.count)
        for strategy in strategies {
            body.append(strategy.name)
            var block = SnapshotWriter()
            strategy.snapshot(into: &block)
            body.appendBlock(block.bytes)
        }
        for byte in Self.magic { writer.appendByte(byte) }
        writer.append(Self.snapshotVersion)
        writer.appendBlock(body.bytes)
        writer.append(FNV1a64.hash(body.bytes))
    }

    /// Reads what `snapshot(into:)` wrote, into an engine built with the same config and strategies (same names
    /// in the same order). Throws `SnapshotError` on another version, damage, or other strategies.
    public func restore(from reader: inout SnapshotReader) throws {
        let magic = try reader.readBytes(Self.magic.count)
        guard magic == Self.magic else { throw reader.error("not a trading snapshot") }
        let version = try reader.readUInt64()
        guard version == Self.snapshotVersion else {
            throw reader.error("trading snapshot version \(version), this build reads version \(Self.snapshotVersion)")
        }
        let body = try reader.readBlock()
        let checksum = try reader.readUInt64()
        guard checksum == FNV1a64.hash(body) else { throw reader.error("trading snapshot checksum mismatch") }
        var inner = SnapshotReader(bytes: body)
        let restoredNow = try inner.readInt64()
        try simulator.restore(from: &inner)
        try portfolio.restore(from: &inner)
        let count = try inner.readCount(minimumElementBytes: 16, limit: 1_000)
        guard count == strategies.count else {
            throw inner.error("snapshot has \(count) strategies, this engine \(strategies.count)")
        }
        for strategy in strategies {
            let name = try inner.readString()
            guard name == strategy.name else {
                throw inner.error("snapshot's strategy \(name) where this engine has \(strategy.name)")
            }
            var block = SnapshotReader(bytes: try inner.readBlock())
            try strategy.restore(from: &block)
            try block.expectEnd("strategy \(name)")
        }
        try inner.expectEnd("trading snapshot")
        now = restoredNow
    }
}
