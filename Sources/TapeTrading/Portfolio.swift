import TapeCore
import TapeGraph

/// One symbol's holding in the account.
public struct Holding: Sendable, Equatable {
    /// Signed: positive long, negative short.
    public var quantity = 0.0
    /// Average entry price of the open quantity (average cost); NaN when flat.
    public var averagePrice = Double.nan
    /// Realised PnL (average cost), before fees.
    public var realizedPnL = 0.0
    public var fees = 0.0
    /// Sale proceeds − purchase costs − fees.
    public var cashFlow = 0.0
    /// The last mark (a bar close), or the last fill price before the first mark; NaN before either.
    public var markPrice = Double.nan

    public init() {}

    /// quantity × (mark − average price); 0 when flat.
    public var unrealizedPnL: Double { quantity == 0 ? 0 : quantity * (markPrice - averagePrice) }
    /// quantity × mark; 0 when flat.
    public var marketValue: Double { quantity == 0 ? 0 : quantity * markPrice }
}

/// The account: cash and multi-symbol positions, average-cost PnL, marked to market by the engine.
///
///     let portfolio = Portfolio(initialCash: 100_000)
///     portfolio.apply(fill)                         // cash −= signed quantity × price + fee
///     portfolio.mark(symbol: btc, price: 46_377)    // at a bar close
///     portfolio.equity                              // cash + Σ quantity × mark
///
/// Average cost: adding to a position moves the average price to the quantity-weighted mean; reducing it
/// realises (price − average) × closed quantity × direction and keeps the average; going through zero closes
/// the old position and opens the rest at the fill price. Fees are kept apart from realised PnL.
public final class Portfolio {
    public let initialCash: Double
    public private(set) var cash: Double
    public private(set) var feesPaid = 0.0
    /// Indexed by `SymbolID`; grown on demand.
    public private(set) var holdings: [Holding] = []

    public init(initialCash: Double) {
        precondition(initialCash.isFinite, "initial cash is a finite amount")
        self.initialCash = initialCash
        self.cash = initialCash
    }

    public func holding(_ symbol: SymbolID) -> Holding {
        Int(symbol) < holdings.count ? holdings[Int(symbol)] : Holding()
    }

    public func position(_ symbol: SymbolID) -> Double { holding(symbol).quantity }

    /// cash + Σ quantity × mark over every symbol.
    public var equity: Double {
        var total = cash
        for holding in holdings where holding.quantity != 0 { total += holding.marketValue }
        return total
    }

    /// True when any symbol has a non-zero position.
    public var isExposed: Bool { holdings.contains(where: { $0.quantity != 0 }) }

    public func apply(_ fill: FillRecord) {
        precondition(fill.quantity > 0 && fill.price.isFinite && fill.fee.isFinite, "a fill is positive and finite")
        let index = Int(fill.symbol)
        if index >= holdings.count {
            holdings.append(contentsOf: repeatElement(Holding(), count: index + 1 - holdings.count))
        }
        var holding = holdings[index]
        let signed = fill.side.sign * fill.quantity
        let old = holding.quantity
        if old == 0 || (old > 0) == (signed > 0) {
            let total = old + signed
            holding.averagePrice = old == 0 ? fill.price
                : (old.magnitude * holding.averagePrice + fill.quantity * fill.price) / total.magnitude
            holding.quantity = total
        } else {
            let closing = min(fill.quantity, old.magnitude)
            holding.realizedPnL += closing * (fill.price - holding.averagePrice) * (old > 0 ? 1 : -1)
            holding.quantity = old + signed
            if fill.quantity == old.magnitude {
                holding.quantity = 0
                holding.averagePrice = .nan
            } else if fill.quantity > old.magnitude {
                holding.averagePrice = fill.price
            }
        }
        let flow = -signed * fill.price
        cash += flow
        cash -= fill.fee
        holding.cashFlow += flow
        holding.cashFlow -= fill.fee
        holding.fees += fill.fee
        feesPaid += fill.fee
        if holding.markPrice.isNaN { holding.markPrice = fill.price }
        holdings[index] = holding
    }

    /// Marks `symbol` at `price` (a bar close): its unrealised PnL and market value use it from now on.
    public func mark(symbol: SymbolID, price: Double) {
        guard price.isFinite else { return }
        let index = Int(symbol)
        if index >= holdings.count {
            holdings.append(contentsOf: repeatElement(Holding(), count: index + 1 - holdings.count))
        }
        holdings[index].markPrice = price
    }

    public func positionRecord(_ symbol: SymbolID, time: Nanos) -> PositionRecord {
        let holding = holding(symbol)
        return PositionRecord(time: time, symbol: symbol, quantity: holding.quantity,
                              averagePrice: holding.averagePrice, realizedPnL: holding.realizedPnL,
                              unrealizedPnL: holding.unrealizedPnL, fees: holding.fees, markPrice: holding.markPrice)
    }

    /// The symbol's row: its cash flow and its contribution (cash flow + market value).
    public func equityRecord(_ symbol: SymbolID, time: Nanos) -> EquityRecord {
        let holding = holding(symbol)
        return EquityRecord(time: time, symbol: symbol, cash: holding.cashFlow,
                            equity: holding.cashFlow + holding.marketValue, grossExposure: holding.marketValue.magnitude)
    }

    public func totalEquityRecord(time: Nanos) -> EquityRecord {
        var gross = 0.0
        for holding in holdings where holding.quantity != 0 { gross += holding.marketValue.magnitude }
        return EquityRecord(time: time, symbol: nil, cash: cash, equity: equity, grossExposure: gross)
    }

    // MARK: - Snapshot

    public func snapshot(into writer: inout SnapshotWriter) {
        writer.append(initialCash)
        writer.append(cash)
        writer.append(feesPaid)
        writer.appendCount(holdings.count)
        for holding in holdings {
            for value in [holding.quantity, holding.averagePrice, holding.realizedPnL, holding.fees, holding.cashFlow,
                          holding.markPrice] {
                writer.append(value)
            }
        }
    }

    public func restore(from reader: inout SnapshotReader) throws {
        let savedInitialCash = try reader.readDouble()
        guard savedInitialCash.bitPattern == initialCash.bitPattern else {
            throw reader.error("snapshot's initial cash \(savedInitialCash) differs from this portfolio's \(initialCash)")
        }
        let restoredCash = try reader.readDouble()
        let restoredFees = try reader.readDouble()
        let count = try reader.readCount(minimumElementBytes: 48, limit: Int(UInt32.max))
        var restored: [Holding] = []
        restored.reserveCapacity(count)
        for _ in 0..<count {
            var holding = Holding()
            holding.quantity = try reader.readDouble()
            holding.averagePrice = try reader.readDouble()
            holding.realizedPnL = try reader.readDouble()
            holding.fees = try reader.readDouble()
            holding.cashFlow = try reader.readDouble()
            holding.markPrice = try reader.readDouble()
            restored.append(holding)
        }
        cash = restoredCash
        feesPaid = restoredFees
        holdings = restored
    }
}
