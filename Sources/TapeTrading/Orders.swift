import TapeCore
import TapeGraph

/// What a strategy asks for. `limitPrice` is required by (and only used for) limit orders, `stopPrice` by
/// stop orders; `tag` travels into every record of the order (the strategy's name when left empty).
public struct OrderRequest: Sendable, Equatable {
    public var symbol: SymbolID
    public var side: OrderSide
    public var quantity: Double
    public var type: OrderType
    public var limitPrice: Double
    public var stopPrice: Double
    public var timeInForce: TimeInForce
    public var tag: String

    public init(symbol: SymbolID, side: OrderSide, quantity: Double, type: OrderType = .market,
                limitPrice: Double = .nan, stopPrice: Double = .nan, timeInForce: TimeInForce = .gtc,
                tag: String = "") {
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.type = type
        self.limitPrice = limitPrice
        self.stopPrice = stopPrice
        self.timeInForce = timeInForce
        self.tag = tag
    }

    public static func market(_ symbol: SymbolID, _ side: OrderSide, quantity: Double,
                              timeInForce: TimeInForce = .gtc, tag: String = "") -> OrderRequest {
        OrderRequest(symbol: symbol, side: side, quantity: quantity, type: .market, timeInForce: timeInForce,
                     tag: tag)
    }

    public static func limit(_ symbol: SymbolID, _ side: OrderSide, quantity: Double, price: Double,
                             timeInForce: TimeInForce = .gtc, tag: String = "") -> OrderRequest {
        OrderRequest(symbol: symbol, side: side, quantity: quantity, type: .limit, limitPrice: price,
                     timeInForce: timeInForce, tag: tag)
    }

    public static func stop(_ symbol: SymbolID, _ side: OrderSide, quantity: Double, stopPrice: Double,
                            timeInForce: TimeInForce = .gtc, tag: String = "") -> OrderRequest {
        OrderRequest(symbol: symbol, side: side, quantity: quantity, type: .stop, stopPrice: stopPrice,
                     timeInForce: timeInForce, tag: tag)
    }

    /// Why the request cannot be accepted, or nil when it is well formed.
    public var problem: String? {
        guard quantity.isFinite && quantity > 0 else { return "quantity must be a positive number" }
        switch type {
        case .market:
            return nil
        case .limit:
            return limitPrice.isFinite && limitPrice > 0 ? nil : "a limit order needs a positive limit price"
        case .stop:
            return stopPrice.isFinite && stopPrice > 0 ? nil : "a stop order needs a positive stop price"
        }
    }
}
