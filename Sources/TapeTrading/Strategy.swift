import TapeCore
import TapeGraph

/// What a strategy wants to receive.
public struct StrategySubscriptions: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Graph outputs: closed bars, indicator values, anomalies, model predictions.
    public static let bars = StrategySubscriptions(rawValue: 1 << 0)
    public static let indicators = StrategySubscriptions(rawValue: 1 << 1)
    public static let anomalies = StrategySubscriptions(rawValue: 1 << 2)
    public static let predictions = StrategySubscriptions(rawValue: 1 << 3)
    /// Input events: trades and top-of-book quotes, as received.
    public static let trades = StrategySubscriptions(rawValue: 1 << 4)
    public static let quotes = StrategySubscriptions(rawValue: 1 << 5)
}

/// A trading strategy: receives what it subscribed to, in stream order, and trades through its context.
///
///     final class Buyer: Strategy {
///         func onOutput(_ output: GraphOutput, context: StrategyContext) {
///             if case .bar(let bar) = output { context.targetPosition(bar.symbol, 1) }
///         }
///     }
///
/// Rules: no wall clock (time is `context.now`), no I/O, no randomness not seeded from the stream; everything
/// that influences a later decision is written by `snapshot(into:)` and read back by `restore(from:)`, so a
/// restored run continues exactly as the uninterrupted one. The same object runs in backtests and paper trading.
public protocol Strategy: AnyObject {
    /// Its registry name (`model_threshold`, `rsi_mean_reversion`, …): the default tag of its orders and the
    /// key of its block in a snapshot.
    var name: String { get }
    var subscriptions: StrategySubscriptions { get }
    /// Trades and quotes it subscribed to, after the simulator has seen them.
    func onEvent(_ event: MarketEvent, context: StrategyContext)
    /// Bars, indicators, anomalies and predictions it subscribed to, in the graph's emission order.
    func onOutput(_ output: GraphOutput, context: StrategyContext)
    func snapshot(into writer: inout SnapshotWriter)
    func restore(from reader: inout SnapshotReader) throws
}

extension Strategy {
    public func onEvent(_ event: MarketEvent, context: StrategyContext) {}
    public func onOutput(_ output: GraphOutput, context: StrategyContext) {}
}

/// A strategy's window on the engine: the stream's time, the account, and order entry. One per strategy (it
/// carries the strategy's name as the default tag). Valid only inside the strategy's callbacks.
public final class StrategyContext {
    unowned let engine: TradingEngine
    public let strategyName: String

    init(engine: TradingEngine, strategyName: String) {
        self.engine = engine
        self.strategyName = strategyName
    }

    /// The symbol's name (`spot:BTCUSDT`); `#<id>` when the engine has no symbol table.
    public func symbolName(_ symbol: SymbolID) -> String { engine.symbols?.name(symbol) ?? "#\(symbol)" }
    /// The id of a symbol the run has seen, by name; nil for another name.
    public func symbolID(named name: String) -> SymbolID? { engine.symbols?.lookup(name) }

    /// Stream time (the latest receive time), never wall time.
    public var now: Nanos { engine.now }
    /// Signed position of `symbol` (filled quantities only).
    public func position(_ symbol: SymbolID) -> Double { engine.portfolio.position(symbol) }
    public func averagePrice(_ symbol: SymbolID) -> Double { engine.portfolio.holding(symbol).averagePrice }
    /// Signed quantity still to fill over the open orders of `symbol` (buys positive).
    public func openQuantity(_ symbol: SymbolID) -> Double { engine.simulator.openQuantity(symbol: symbol) }
    public var cash: Double { engine.portfolio.cash }
    /// cash + Σ quantity × last mark.
    public var equity: Double { engine.portfolio.equity }

    /// Sends an order now; it reaches the venue after the latency. The tag defaults to the strategy's name.
    @discardableResult
    public func submit(_ request: OrderRequest) -> OrderID {
        var tagged = request
        if tagged.tag.isEmpty { tagged.tag = strategyName }
        return engine.submit(tagged)
    }

    /// Requests a cancel (effective after the latency if the order is still open then); false if not open.
    @discardableResult
    public func cancel(_ id: OrderID) -> Bool { engine.cancel(id) }

    /// Cancel + new order with the new quantity / prices (docs/backtesting.md); nil if the order is not open.
    @discardableResult
    public func replace(_ id: OrderID, quantity: Double, limitPrice: Double? = nil,
                        stopPrice: Double? = nil) -> OrderID? {
        engine.replace(id, quantity: quantity, limitPrice: limitPrice, stopPrice: stopPrice)
    }

    /// Sends the market order that takes position + open orders of `symbol` to `target`; nil when nothing is
    /// needed.
    @discardableResult
    public func targetPosition(_ symbol: SymbolID, _ target: Double) -> OrderID? {
        precondition(target.isFinite, "a target position is finite")
        let difference = target - (position(symbol) + openQuantity(symbol))
        guard difference != 0 else { return nil }
        return submit(.market(symbol, difference > 0 ? .buy : .sell, quantity: difference.magnitude))
    }
}
