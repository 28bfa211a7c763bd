import TapeCore

/// One change of an order's state: a row of orders.csv.
public struct OrderRecord: Sendable, Equatable {
    /// When the change happened (stream time): submission, arrival, fill, cancel or expiry instant.
    public var time: Nanos
    /// The order's number among its symbol's orders (1, 2, 3 …; not the engine-wide `OrderID`).
    public var orderID: Int64
    public var symbol: SymbolID
    public var side: OrderSide
    public var type: OrderType
    public var timeInForce: TimeInForce
    public var quantity: Double
    public var limitPrice: Double
    public var stopPrice: Double
    public var status: OrderStatus
    /// Filled so far (after this change).
    public var filledQuantity: Double
    public var tag: String
    /// Why (rejections, cancels, expiries, replacements); empty otherwise.
    public var reason: String
    /// The change's number within its order: 1 `submitted`; 2 `accepted` or `rejected`; 2 + n for the
    /// `partially_filled`/`filled` of the order's n-th fill; 3 + its fills for `canceled`, `expired`,
    /// `replaced` (`OrderRecord.sequence(status:fills:)`). With the symbol, time and order number it is the
    /// row's key in the stores (docs/storage.md). Not a column of orders.csv, whose rows of one order are in
    /// this order already (so the digest covers it).
    public var sequence: Int64

    public init(time: Nanos, orderID: OrderID, symbol: SymbolID, side: OrderSide, type: OrderType,
                timeInForce: TimeInForce, quantity: Double, limitPrice: Double, stopPrice: Double,
                status: OrderStatus, filledQuantity: Double, tag: String, reason: String, sequence: Int64) {
        precondition(sequence >= 1, "an order's changes count from 1")
        self.time = time
        self.orderID = orderID
        self.symbol = symbol
        self.side = side
        self.type = type
        self.timeInForce = timeInForce
        self.quantity = quantity
        self.limitPrice = limitPrice
        self.stopPrice = stopPrice
        self.status = status
        self.filledQuantity = filledQuantity
        self.tag = tag
        self.reason = reason
        self.sequence = sequence
    }

    /// The sequence number of a change to `status` of an order that has filled `fills` times (its fills
    /// included when the change is a fill's).
    public static func sequence(status: OrderStatus, fills: Int64) -> Int64 {
        switch status {
        case .submitted: return 1
        case .accepted, .rejected: return 2
        case .partiallyFilled, .filled: return 2 + fills
        case .canceled, .expired, .replaced: return 3 + fills
        }
    }

    public static let csvHeader =
        "symbol,time_ns,order_id,side,type,tif,quantity,limit_price,stop_price,status,filled_quantity,tag,reason"

    public func csvRow(symbolName: String) -> String {
        let format = Numbers.format
        return "\(CSV.field(symbolName)),\(time),\(orderID),\(side.name),\(type.name),\(timeInForce.name),"
            + "\(format(quantity)),\(format(limitPrice)),\(format(stopPrice)),\(status.name),"
            + "\(format(filledQuantity)),\(CSV.field(tag)),\(CSV.field(reason))"
    }
}

/// One execution: a row of fills.csv.
public struct FillRecord: Sendable, Equatable {
    /// When it filled (stream time): the arrival instant for a fill on arrival, the receive time of the quote
    /// or trade that filled a resting order, or the start of the bar whose open or range it filled in.
    public var time: Nanos
    /// When the order reached the venue (submission + latency).
    public var arrivalTime: Nanos
    /// The order's number among its symbol's orders (1, 2, 3 …; not the engine-wide `OrderID`).
    public var orderID: Int64
    /// The fill's number within its order (1, 2, 3 …): with the symbol, time and order number, the fill's key
    /// in the stores (two fills of one order can share a time when two prints do).
    public var fillNumber: Int64
    public var symbol: SymbolID
    public var side: OrderSide
    /// Execution price, slippage included.
    public var price: Double
    public var quantity: Double
    public var fee: Double
    public var rule: FillRule
    public var tag: String

    public init(time: Nanos, arrivalTime: Nanos, orderID: OrderID, fillNumber: Int64, symbol: SymbolID,
                side: OrderSide, price: Double, quantity: Double, fee: Double, rule: FillRule, tag: String) {
        precondition(fillNumber >= 1, "an order's fills count from 1")
        self.time = time
        self.arrivalTime = arrivalTime
        self.orderID = orderID
        self.fillNumber = fillNumber
        self.symbol = symbol
        self.side = side
        self.price = price
        self.quantity = quantity
        self.fee = fee
        self.rule = rule
        self.tag = tag
    }

    public static let csvHeader = "symbol,time_ns,order_id,fill_number,side,price,quantity,fee,rule,arrival_ns,tag"

    public func csvRow(symbolName: String) -> String {
        let format = Numbers.format
        return "\(CSV.field(symbolName)),\(time),\(orderID),\(fillNumber),\(side.name),\(format(price)),\(format(quantity)),"
            + "\(format(fee)),\(rule.name),\(arrivalTime),\(CSV.field(tag))"
    }
}

/// A position after a fill or at a mark: a row of positions.csv.
public struct PositionRecord: Sendable, Equatable {
    public var time: Nanos
    public var symbol: SymbolID
    /// Signed: positive long, negative short.
    public var quantity: Double
    /// Average entry price of the open quantity (average cost); NaN when flat.
    public var averagePrice: Double
    /// Realised PnL of the symbol so far, before fees.
    public var realizedPnL: Double
    /// quantity × (mark − average price); 0 when flat.
    public var unrealizedPnL: Double
    /// Fees paid on the symbol so far.
    public var fees: Double
    /// The price the unrealised PnL uses (the last mark, or the fill price before the first mark).
    public var markPrice: Double
    /// The fill this row follows (its order number and fill number); 0 and 0 for a row at a mark. With the
    /// symbol and time, the row's key in the stores. Not columns of positions.csv, where the row comes right
    /// after its fill's (so the digest covers them).
    public var orderID: Int64
    public var fillNumber: Int64

    public init(time: Nanos, symbol: SymbolID, quantity: Double, averagePrice: Double, realizedPnL: Double,
                unrealizedPnL: Double, fees: Double, markPrice: Double, orderID: Int64 = 0, fillNumber: Int64 = 0) {
        precondition((orderID == 0) == (fillNumber == 0) && orderID >= 0 && fillNumber >= 0,
                     "a position row follows a fill (order and fill number) or a mark (0, 0)")
        self.time = time
        self.symbol = symbol
        self.quantity = quantity
        self.averagePrice = averagePrice
        self.realizedPnL = realizedPnL
        self.unrealizedPnL = unrealizedPnL
        self.fees = fees
        self.markPrice = markPrice
        self.orderID = orderID
        self.fillNumber = fillNumber
    }

    /// A row at a mark (not after a fill).
    public var isMark: Bool { orderID == 0 }

    /// Which of two rows of one symbol is the later, as the stores keep the latest position: the greater time;
    /// at one instant a mark's row (it values everything the instant's fills did), then the greater order and
    /// fill number (the order fills at one instant happen in).
    public func isLater(than other: PositionRecord) -> Bool {
        (time, isMark ? 1 : 0, orderID, fillNumber) > (other.time, other.isMark ? 1 : 0, other.orderID, other.fillNumber)
    }

    public static let csvHeader = "symbol,time_ns,quantity,average_price,realized_pnl,unrealized_pnl,fees,mark_price"

    public func csvRow(symbolName: String) -> String {
        let format = Numbers.format
        return "\(CSV.field(symbolName)),\(time),\(format(quantity)),\(format(averagePrice)),"
            + "\(format(realizedPnL)),\(format(unrealizedPnL)),\(format(fees)),\(format(markPrice))"
    }
}

/// Equity at a mark (a bar close of the marking timeframe): a row of equity.csv, per symbol and in total.
///
/// - `scope` total: `cash` is the account's cash, `equity` = cash + Σ quantity × mark over every symbol.
/// - `scope` symbol: `cash` is the symbol's net cash flow (sale proceeds − purchase costs − fees), `equity`
///   = that + quantity × mark: the symbol's contribution, so initial cash + Σ symbol equities = total equity.
public struct EquityRecord: Sendable, Equatable {
    public var time: Nanos
    /// nil for the account total.
    public var symbol: SymbolID?
    public var cash: Double
    public var equity: Double
    /// Σ |quantity × mark| over the scope's positions: 0 exactly when flat (the exposure metric counts the
    /// total rows where it is not).
    public var grossExposure: Double

    public init(time: Nanos, symbol: SymbolID?, cash: Double, equity: Double, grossExposure: Double) {
        self.time = time
        self.symbol = symbol
        self.cash = cash
        self.equity = equity
        self.grossExposure = grossExposure
    }

    public static let csvHeader = "symbol,time_ns,scope,cash,equity,gross_exposure"

    /// `symbolName` is ignored for the total row (its symbol column is empty).
    public func csvRow(symbolName: String) -> String {
        let format = Numbers.format
        let scope = symbol == nil ? "total" : "symbol"
        return "\(symbol == nil ? "" : CSV.field(symbolName)),\(time),\(scope),\(format(cash)),\(format(equity)),\(format(grossExposure))"
    }
}

/// Everything the trading layer emits, in emission order.
public enum TradingOutput: Sendable, Equatable {
    case order(OrderRecord)
    case fill(FillRecord)
    case position(PositionRecord)
    case equity(EquityRecord)

    /// The run folder's file stem: `orders`, `fills`, `positions`, `equity`.
    public var kindName: String {
        switch self {
        case .order: return "orders"
        case .fill: return "fills"
        case .position: return "positions"
        case .equity: return "equity"
        }
    }

    /// The symbol of the row; nil for a total equity row.
    public var symbol: SymbolID? {
        switch self {
        case .order(let record): return record.symbol
        case .fill(let record): return record.symbol
        case .position(let record): return record.symbol
        case .equity(let record): return record.symbol
        }
    }

    /// The CSV row (no newline), columns as in `csvHeaders[kindName]`.
    public func csvRow(symbols: SymbolTable) -> String {
        switch self {
        case .order(let record): return record.csvRow(symbolName: symbols.name(record.symbol))
        case .fill(let record): return record.csvRow(symbolName: symbols.name(record.symbol))
        case .position(let record): return record.csvRow(symbolName: symbols.name(record.symbol))
        case .equity(let record): return record.csvRow(symbolName: record.symbol.map(symbols.name) ?? "")
        }
    }

    /// One line of the digest's canonical stream: `<kind>,<row>` (as `GraphOutput.canonicalLine`).
    public func canonicalLine(symbols: SymbolTable) -> String { "\(kindName),\(csvRow(symbols: symbols))" }

    /// The header of each file, by `kindName`: the one place the columns are written down.
    public static let csvHeaders: [String: String] = [
        "orders": OrderRecord.csvHeader,
        "fills": FillRecord.csvHeader,
        "positions": PositionRecord.csvHeader,
        "equity": EquityRecord.csvHeader,
    ]
}
