import TapeCore

// The vocabulary of the trading outputs (orders, fills, positions, equity): in the graph module because
// `GraphOutput.trading` carries them to every sink; the trading layer itself is `TapeTrading`.

/// Buy or sell. Quantities are always positive; the side gives the sign of the position change.
public enum OrderSide: UInt8, Sendable, CaseIterable {
    case buy = 1
    case sell = 2

    public var name: String { self == .buy ? "buy" : "sell" }
    /// +1 for a buy, −1 for a sell.
    public var sign: Double { self == .buy ? 1 : -1 }
    public var opposite: OrderSide { self == .buy ? .sell : .buy }
}

/// What the order does on arrival and while it rests.
public enum OrderType: UInt8, Sendable, CaseIterable {
    /// Takes the market at once (the opposite quote, the next trade, or the next bar's open).
    case market = 1
    /// Fills at its limit price or better (docs/backtesting.md, "Fill rules").
    case limit = 2
    /// A stop-market order: rests until the market trades or quotes through `stopPrice`, then acts as a
    /// market order.
    case stop = 3

    public var name: String {
        switch self {
        case .market: return "market"
        case .limit: return "limit"
        case .stop: return "stop"
        }
    }
}

/// How long an order may rest.
public enum TimeInForce: UInt8, Sendable, CaseIterable {
    /// Good till canceled.
    case gtc = 1
    /// Immediate or cancel: whatever does not fill on arrival (against the book as it is then) is canceled.
    case ioc = 2
    /// Expires at the end of the UTC day (stream time) of its *submission*: at the next multiple of 86,400 s
    /// after the submission time. The expiry is applied before the first event received at or after that
    /// instant (and by `finish()`), with the record stamped at the expiry instant itself.
    case day = 3

    public var name: String {
        switch self {
        case .gtc: return "gtc"
        case .ioc: return "ioc"
        case .day: return "day"
        }
    }
}

/// Identifies an order: assigned 1, 2, 3 … in submission order by one `TradingEngine` (deterministic).
public typealias OrderID = Int64

/// The states an order passes through; one `OrderRecord` per change.
public enum OrderStatus: UInt8, Sendable, CaseIterable {
    /// Sent by the strategy (time = submission); travelling to the venue for `latency`.
    case submitted = 1
    /// Reached the venue (time = arrival); from here it can fill.
    case accepted = 2
    case partiallyFilled = 3
    case filled = 4
    case canceled = 5
    /// Replaced by a new order (cancel + new: docs/backtesting.md).
    case replaced = 6
    case expired = 7
    case rejected = 8

    public var name: String {
        switch self {
        case .submitted: return "submitted"
        case .accepted: return "accepted"
        case .partiallyFilled: return "partially_filled"
        case .filled: return "filled"
        case .canceled: return "canceled"
        case .replaced: return "replaced"
        case .expired: return "expired"
        case .rejected: return "rejected"
        }
    }

    /// No further change can follow.
    public var isTerminal: Bool {
        switch self {
        case .filled, .canceled, .replaced, .expired, .rejected: return true
        case .submitted, .accepted, .partiallyFilled: return false
        }
    }
}

/// Which rule produced a fill (the `rule` column of fills.csv).
public enum FillRule: UInt8, Sendable, CaseIterable {
    /// Against the top of book: a taker at the opposite quote, or a resting limit crossed by it.
    case quote = 1
    /// Against a trade print (the next trade for a market order, a trade through a resting limit, the
    /// trade that triggered a stop).
    case trade = 2
    /// At a bar's open (a market order on bar-only data, a limit or stop gapped through at the open).
    case barOpen = 3
    /// Inside a bar's range (a limit at its limit price, a stop at its stop price).
    case barRange = 4

    public var name: String {
        switch self {
        case .quote: return "quote"
        case .trade: return "trade"
        case .barOpen: return "bar_open"
        case .barRange: return "bar_range"
        }
    }
}
