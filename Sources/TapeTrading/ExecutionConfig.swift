import TapeCore
import TapeGraph

/// How fill prices are worsened for orders that take liquidity (market orders, triggered stops, limit orders
/// marketable on arrival). Resting limit orders fill at their limit price and get none.
public enum SlippageModel: Sendable, Equatable {
    case none
    /// The price moves against the order by this many basis points: buy × (1 + bps/10,000), sell × (1 − bps/10,000).
    case bps(Double)
    /// The price moves against the order by a fixed amount (price units): buy + amount, sell − amount.
    case fixed(Double)

    /// `price` worsened for `side`.
    @inline(__always)
    public func apply(_ price: Double, side: OrderSide) -> Double {
        switch self {
        case .none: return price
        case .bps(let points): return price * (1 + side.sign * (points / 10_000))
        case .fixed(let amount): return price + side.sign * amount
        }
    }
}

/// The simulated venue's settings (docs/backtesting.md, "Execution model").
public struct ExecutionConfig: Sendable, Equatable {
    /// From submission (or cancel) to arrival at the venue, in receive-time nanoseconds.
    public var latencyNanos: Nanos = 0
    /// Fee in basis points of the notional (price × quantity) of each fill.
    public var feeBps: Double = 0
    /// Fee per unit of quantity of each fill (added to the bps fee).
    public var feePerUnit: Double = 0
    public var slippage: SlippageModel = .none
    /// When true a resting limit order also fills when a trade prints exactly at its limit (or a bar's low /
    /// high touches it). The default, false, needs the market to trade *through* the limit: at the limit the
    /// order's place in the queue is unknown (hftbacktest's risk-averse queue model).
    public var fillOnTouch = false
    /// The length of one `.bar` event (bar files: 1 minute). A bar event's start is `eventTime − barDurationNanos`.
    public var barDurationNanos: Nanos = TimeUtil.nsPerMinute
    /// Open (pending or resting) orders at once; a submission beyond it is rejected.
    public var openOrdersMax = 10_000

    public init(latencyNanos: Nanos = 0, feeBps: Double = 0, feePerUnit: Double = 0, slippage: SlippageModel = .none,
                fillOnTouch: Bool = false, barDurationNanos: Nanos = TimeUtil.nsPerMinute) {
        precondition(latencyNanos >= 0, "latency is never negative")
        precondition(barDurationNanos > 0, "a bar has a positive duration")
        self.latencyNanos = latencyNanos
        self.feeBps = feeBps
        self.feePerUnit = feePerUnit
        self.slippage = slippage
        self.fillOnTouch = fillOnTouch
        self.barDurationNanos = barDurationNanos
    }

    /// The fee of one fill.
    @inline(__always)
    public func fee(price: Double, quantity: Double) -> Double {
        var fee = 0.0
        if feeBps != 0 { fee += price * quantity * (feeBps / 10_000) }
        if feePerUnit != 0 { fee += quantity * feePerUnit }
        return fee
    }
}
