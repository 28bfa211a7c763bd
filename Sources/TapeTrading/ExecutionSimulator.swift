import TapeCore
import TapeGraph

/// What the simulator reports, in the order it happened. The engine applies fills to the portfolio and
/// forwards everything as `TradingOutput`.
public enum ExecutionReport: Sendable, Equatable {
    case order(OrderRecord)
    case fill(FillRecord)
}

/// One order inside the simulator, from submission until it reaches a terminal state.
struct SimulatedOrder: Equatable {
    var id: OrderID
    /// Its number among its symbol's orders (1, 2, 3 …): what the records print as `order_id`, so that a
    /// symbol's rows do not depend on the other symbols traded in the same process (one worker or many).
    var number: Int64
    var request: OrderRequest
    var submitTime: Nanos
    /// submitTime + latency.
    var arrivalTime: Nanos
    /// Day orders: the end of the UTC day of submission; `Nanos.max` for none.
    var expiryTime: Nanos
    /// A requested cancel's arrival; `Nanos.max` for none.
    var cancelTime: Nanos
    /// The order this one replaces (0 = none).
    var replacesID: OrderID
    var filled: Double
    /// Fills so far: the last one's number within the order (`FillRecord.fillNumber`).
    var fills: Int64 = 0
    var accepted: Bool
    /// A stop order whose stop was reached: it now acts as a market order.
    var triggered: Bool

    var remaining: Double { request.quantity - filled }
    /// Takes liquidity as a market order would (a market order, or a triggered stop).
    var actsAsMarket: Bool { request.type == .market || (request.type == .stop && triggered) }
}

/// Top of book and last prints of one symbol, as the stream has shown them so far.
struct SymbolBook: Equatable {
    var bid = Double.nan
    var bidSize = Double.nan
    var ask = Double.nan
    var askSize = Double.nan
    /// Displayed size at the current quote not yet taken by our fills (reset by every quote).
    var bidAvailable = Double.nan
    var askAvailable = Double.nan
    var hasQuote = false
    /// The last trade price (or bar close): what a stop arriving already through its price compares with.
    var lastPrice = Double.nan

    /// A two-sided quote is there: market orders use quotes, not trades.
    var quoted: Bool { hasQuote && bid.isFinite && ask.isFinite }
}

/// The simulated venue: order lifecycle, latency, and the fill rules (docs/backtesting.md, "Fill rules").
///
/// Driven only by the stream: `onEvent` (receive time is the clock) and `advance(to:)` (clock ticks, end of
/// input). Single-threaded; no wall clock. What happens is appended to `reports`, which the owner drains with
/// `takeReports(into:)` after each call.
///
/// Time rule: an order submitted at `t` arrives at `t + latency`. Events received at or before the arrival
/// instant are applied to the book before it arrives; the order is matched against that book, and after that
/// against every later event of its symbol. Transitions due at one instant run in order id order.
public final class ExecutionSimulator {
    public let config: ExecutionConfig
    /// Orders not yet in a terminal state, in id order.
    private(set) var orders: [SimulatedOrder] = []
    /// Indexed by `SymbolID`; grown on demand.
    private(set) var books: [SymbolBook] = []
    public private(set) var nextOrderID: OrderID = 1
    /// The next order number per symbol, indexed by `SymbolID` (1 when absent).
    private var nextNumbers: [Int64] = []
    /// The latest receive time seen (events and `advance(to:)`).
    public private(set) var now: Nanos = Nanos.min
    private var reports: [ExecutionReport] = []

    public init(config: ExecutionConfig) {
        self.config = config
        reports.reserveCapacity(64)
    }

    /// Orders not in a terminal state (pending arrival or resting).
    public var openOrderCount: Int { orders.count }

    /// The open orders' ids, in id order.
    public var openOrderIDs: [OrderID] { orders.map(\.id) }

    /// Signed quantity still to fill over the open orders of `symbol` (buys positive).
    public func openQuantity(symbol: SymbolID) -> Double {
        var total = 0.0
        for order in orders where order.request.symbol == symbol { total += order.request.side.sign * order.remaining }
        return total
    }

    /// The request of an open order, or nil when it is not open.
    public func openOrder(_ id: OrderID) -> OrderRequest? {
        orders.first(where: { $0.id == id })?.request
    }

    /// Moves the reports out (in the order they happened) and empties the buffer, keeping its capacity.
    public func takeReports(into handler: (ExecutionReport) -> Void) {
        for report in reports { handler(report) }
        reports.removeAll(keepingCapacity: true)
    }

    // MARK: - Strategy-facing operations

    /// Submits at `time` (stream time); the id is assigned even when the request is rejected.
    @discardableResult
    public func submit(_ request: OrderRequest, at time: Nanos) -> OrderID {
        submit(request, at: time, replacing: 0)
    }

    /// Requests a cancel at `time`; it takes effect at `time + latency` if the order is still open then.
    /// False when the order is not open (already terminal, or unknown).
    @discardableResult
    public func cancel(_ id: OrderID, at time: Nanos) -> Bool {
        guard let index = orders.firstIndex(where: { $0.id == id }) else { return false }
        let cancelTime = time + config.latencyNanos
        orders[index].cancelTime = min(orders[index].cancelTime, cancelTime)
        return true
    }

    /// Replace = cancel + new order (docs/backtesting.md): a new order (new id, same symbol, side, type, time in
    /// force and tag) with the given quantity and prices is submitted at `time`. When it arrives, the old order,
    /// if still open, is closed as `replaced` and the new one takes its place; if the old one is no longer open
    /// (filled or canceled meanwhile) the new one is rejected, so a replace never adds to what was filled.
    /// Nil when the old order is not open at submission.
    @discardableResult
    public func replace(_ id: OrderID, quantity: Double, limitPrice: Double? = nil, stopPrice: Double? = nil,
                        at time: Nanos) -> OrderID? {
        guard let old = orders.first(where: { $0.id == id }) else { return nil }
        var request = old.request
        request.quantity = quantity
        if let limitPrice { request.limitPrice = limitPrice }
        if let stopPrice { request.stopPrice = stopPrice }
        return submit(request, at: time, replacing: id)
    }

    private func submit(_ request: OrderRequest, at time: Nanos, replacing: OrderID) -> OrderID {
        let id = nextOrderID
        nextOrderID += 1
        let symbolIndex = Int(request.symbol)
        if symbolIndex >= nextNumbers.count {
            nextNumbers.append(contentsOf: repeatElement(1, count: symbolIndex + 1 - nextNumbers.count))
        }
        let number = nextNumbers[symbolIndex]
        nextNumbers[symbolIndex] += 1
        now = max(now, time)
        let expiry: Nanos = request.timeInForce == .day ? endOfUTCDay(time) : Nanos.max
        let order = SimulatedOrder(id: id, number: number, request: request, submitTime: time,
                                   arrivalTime: time + config.latencyNanos, expiryTime: expiry,
                                   cancelTime: Nanos.max, replacesID: replacing, filled: 0, accepted: false,
                                   triggered: false)
        let replaced = orders.first(where: { $0.id == replacing })?.number ?? 0
        let reason = replacing == 0 ? "" : "replaces order \(replaced)"
        record(order, .submitted, at: time, reason: reason)
        if let problem = request.problem {
            record(order, .rejected, at: time, reason: problem)
            return id
        }
        guard orders.count < config.openOrdersMax else {
            record(order, .rejected, at: time, reason: "more than \(config.openOrdersMax) open orders")
            return id
        }
        orders.append(order)
        return id
    }

    // MARK: - Stream

    /// Applies the transitions due before `time` (arrivals, cancels, day expiries) against the current book.
    public func advance(to time: Nanos) {
        processDueTransitions(before: time)
        now = max(now, time)
    }

    /// One stream event (trades, quotes, bars; clock ticks only advance time): transitions due before its
    /// receive time first, then the event updates the book and matches the resting orders of its symbol.
    public func onEvent(_ event: MarketEvent) {
        processDueTransitions(before: event.receiveTime)
        now = max(now, event.receiveTime)
        switch event.kind {
        case .quote: onQuote(event)
        case .trade: onTrade(event)
        case .bar: onBar(event)
        case .clockTick: return
        }
    }

    /// End of input: orders arriving (or cancels taking effect) at the last instant seen are applied; resting
    /// orders stay open (no record).
    public func finish() {
        guard now != Nanos.min else { return }
        processDueTransitions(before: now == Nanos.max ? now : now + 1)
    }

    // MARK: - Transitions

    private enum Transition { case arrival, cancel, expiry }

    /// Runs every transition due before `time` (expiries: at or before), earliest first, ties by order id.
    private func processDueTransitions(before time: Nanos) {
        while let (index, kind, instant) = nextTransition(before: time) {
            switch kind {
            case .arrival: arrive(index, at: instant)
            case .cancel:
                record(orders[index], .canceled, at: instant, reason: "canceled")
                orders.remove(at: index)
            case .expiry:
                record(orders[index], .expired, at: instant, reason: "end of the UTC day")
                orders.remove(at: index)
            }
        }
    }

    private func nextTransition(before time: Nanos) -> (Int, Transition, Nanos)? {
        var best: (Int, Transition, Nanos)?
        for index in orders.indices {
            let order = orders[index]
            let candidate: (Transition, Nanos)
            if !order.accepted {
                guard order.arrivalTime < time else { continue }
                candidate = (.arrival, order.arrivalTime)
            } else if order.cancelTime < time && order.cancelTime <= order.expiryTime {
                candidate = (.cancel, order.cancelTime)
            } else if order.expiryTime <= time {
                candidate = (.expiry, order.expiryTime)
            } else {
                continue
            }
            if best == nil || candidate.1 < best!.2 { best = (index, candidate.0, candidate.1) }
        }
        return best
    }

    /// The order reaches the venue at `time`: replacement bookkeeping, then a first match against the book.
    private func arrive(_ arrivingIndex: Int, at time: Nanos) {
        var index = arrivingIndex
        let order = orders[index]
        if order.replacesID != 0 {
            guard let oldIndex = orders.firstIndex(where: { $0.id == order.replacesID }) else {
                record(order, .rejected, at: time, reason: "order \(order.replacesID) is no longer open")
                orders.remove(at: index)
                return
            }
            record(orders[oldIndex], .replaced, at: time, reason: "replaced by order \(order.id)")
            orders.remove(at: oldIndex)
            if oldIndex < index { index -= 1 }
            orders[index].replacesID = 0
        }
        orders[index].accepted = true
        record(orders[index], .accepted, at: time, reason: "")
        matchOnArrival(index, at: time)
    }

    /// What an order does against the book at its arrival (docs/backtesting.md, "On arrival").
    private func matchOnArrival(_ index: Int, at time: Nanos) {
        let order = orders[index]
        let symbol = Int(order.request.symbol)
        if order.expiryTime <= time {
            record(order, .expired, at: time, reason: "arrived after the end of its UTC day")
            orders.remove(at: index)
            return
        }
        let book = symbol < books.count ? books[symbol] : SymbolBook()
        let side = order.request.side
        if order.request.type == .stop && !order.triggered {
            let reference = book.quoted ? (side == .buy ? book.ask : book.bid) : book.lastPrice
            if reference.isFinite && stopReached(order, price: reference) { orders[index].triggered = true }
        }
        guard book.quoted else {
            // Trades-only or bar data: the order waits for the next trade or bar (an IOC for its first one).
            return
        }
        var filledNow = false
        if orders[index].actsAsMarket {
            filledNow = fillAgainstQuote(index, price: config.slippage.apply(side == .buy ? book.ask : book.bid,
                                                                            side: side), at: time)
        } else if order.request.type == .limit {
            let opposite = side == .buy ? book.ask : book.bid
            if crossesLimit(order, quotePrice: opposite) {
                // Marketable on arrival: a taker at the opposite quote (slippage capped at the limit).
                let worsened = config.slippage.apply(opposite, side: side)
                let price = side == .buy ? min(worsened, order.request.limitPrice)
                    : max(worsened, order.request.limitPrice)
                filledNow = fillAgainstQuote(index, price: price, at: time)
            }
        }
        if filledNow { return }
        if order.request.timeInForce == .ioc {
            let current = orders[index]
            record(current, .canceled, at: time, reason: "ioc: remainder not filled on arrival")
            orders.remove(at: index)
        }
    }

    // MARK: - Market data

    private func ensureBook(_ symbol: SymbolID) {
        let index = Int(symbol)
        if index >= books.count { books.append(contentsOf: repeatElement(SymbolBook(), count: index + 1 - books.count)) }
    }

    private func onQuote(_ event: MarketEvent) {
        ensureBook(event.symbol)
        let symbol = Int(event.symbol)
        books[symbol].bid = event.bid
        books[symbol].bidSize = event.bidSize
        books[symbol].ask = event.ask
        books[symbol].askSize = event.askSize
        books[symbol].bidAvailable = event.bidSize
        books[symbol].askAvailable = event.askSize
        books[symbol].hasQuote = true
        guard books[symbol].quoted else { return }
        var index = 0
        while index < orders.count {
            let order = orders[index]
            guard order.accepted && order.request.symbol == event.symbol else {
                index += 1
                continue
            }
            let side = order.request.side
            let opposite = side == .buy ? event.ask : event.bid
            if order.request.type == .stop && !order.triggered && stopReached(order, price: opposite) {
                orders[index].triggered = true
            }
            var closed = false
            if orders[index].actsAsMarket {
                closed = fillAgainstQuote(index, price: config.slippage.apply(opposite, side: side),
                                          at: event.receiveTime)
            } else if order.request.type == .limit && crossesLimit(order, quotePrice: opposite) {
                // A resting limit crossed by the quote fills at its own price (it was there first).
                closed = fillAgainstQuote(index, price: order.request.limitPrice, at: event.receiveTime)
            }
            if !closed { index += 1 }
        }
    }

    private func onTrade(_ event: MarketEvent) {
        ensureBook(event.symbol)
        let symbol = Int(event.symbol)
        books[symbol].lastPrice = event.price
        let quoted = books[symbol].quoted
        var tradeAvailable = event.size.isFinite && event.size > 0 ? event.size : Double.infinity
        var index = 0
        while index < orders.count && tradeAvailable > 0 {
            let order = orders[index]
            guard order.accepted && order.request.symbol == event.symbol else {
                index += 1
                continue
            }
            let side = order.request.side
            if order.request.type == .stop && !order.triggered && stopReached(order, price: event.price) {
                orders[index].triggered = true
                if quoted {
                    // Triggered by the print; with quotes a market order takes the opposite quote.
                    let book = books[symbol]
                    let opposite = side == .buy ? book.ask : book.bid
                    if fillAgainstQuote(index, price: config.slippage.apply(opposite, side: side),
                                        at: event.receiveTime) { continue }
                    index += 1
                    continue
                }
            }
            var price = Double.nan
            if orders[index].actsAsMarket {
                if !quoted { price = config.slippage.apply(event.price, side: side) }
            } else if order.request.type == .limit && tradesThrough(order, price: event.price) {
                price = order.request.limitPrice
            }
            var closed = false
            if price.isFinite {
                let quantity = min(orders[index].remaining, tradeAvailable)
                tradeAvailable -= quantity
                closed = fill(index, price: price, quantity: quantity, rule: .trade, at: event.receiveTime)
            }
            if !closed && orders[index].request.timeInForce == .ioc && !quoted {
                record(orders[index], .canceled, at: event.receiveTime, reason: "ioc: remainder not filled by the first trade")
                orders.remove(at: index)
                closed = true
            }
            if !closed { index += 1 }
        }
    }

    private func onBar(_ event: MarketEvent) {
        ensureBook(event.symbol)
        let symbol = Int(event.symbol)
        books[symbol].lastPrice = event.price
        let start = event.eventTime - config.barDurationNanos
        var index = 0
        while index < orders.count {
            let order = orders[index]
            // Only orders live for the whole bar (arrived by its start) take part in it.
            guard order.accepted && order.request.symbol == event.symbol && order.arrivalTime <= start else {
                index += 1
                continue
            }
            let side = order.request.side
            var price = Double.nan
            var rule = FillRule.barOpen
            switch order.request.type {
            case .market:
                price = config.slippage.apply(event.open, side: side)
            case .limit:
                let limit = order.request.limitPrice
                if side == .buy ? event.open <= limit : event.open >= limit {
                    price = event.open
                } else if side == .buy ? reaches(event.low, below: limit) : reaches(event.high, above: limit) {
                    price = limit
                    rule = .barRange
                }
            case .stop:
                let stop = order.request.stopPrice
                if order.triggered || (side == .buy ? event.open >= stop : event.open <= stop) {
                    price = config.slippage.apply(event.open, side: side)
                } else if side == .buy ? event.high >= stop : event.low <= stop {
                    orders[index].triggered = true
                    price = config.slippage.apply(stop, side: side)
                    rule = .barRange
                }
            }
            var closed = false
            if price.isFinite {
                closed = fill(index, price: price, quantity: orders[index].remaining, rule: rule, at: start)
            }
            if !closed && orders[index].request.timeInForce == .ioc {
                record(orders[index], .canceled, at: start, reason: "ioc: remainder not filled by the first bar")
                orders.remove(at: index)
                closed = true
            }
            if !closed { index += 1 }
        }
    }

    // MARK: - Rules

    private func stopReached(_ order: SimulatedOrder, price: Double) -> Bool {
        order.request.side == .buy ? price >= order.request.stopPrice : price <= order.request.stopPrice
    }

    /// The opposite quote is at or better than the limit (buy: ask ≤ limit; sell: bid ≥ limit).
    private func crossesLimit(_ order: SimulatedOrder, quotePrice: Double) -> Bool {
        order.request.side == .buy ? quotePrice <= order.request.limitPrice : quotePrice >= order.request.limitPrice
    }

    /// A trade through the limit (buy: price < limit; sell: price > limit), or at it with `fillOnTouch`.
    private func tradesThrough(_ order: SimulatedOrder, price: Double) -> Bool {
        order.request.side == .buy ? reaches(price, below: order.request.limitPrice)
            : reaches(price, above: order.request.limitPrice)
    }

    private func reaches(_ price: Double, below limit: Double) -> Bool {
        config.fillOnTouch ? price <= limit : price < limit
    }

    private func reaches(_ price: Double, above limit: Double) -> Bool {
        config.fillOnTouch ? price >= limit : price > limit
    }

    /// Fills against the current quote of the order's symbol, limited by the displayed size still available.
    /// True when the order is closed (filled).
    private func fillAgainstQuote(_ index: Int, price: Double, at time: Nanos) -> Bool {
        let symbol = Int(orders[index].request.symbol)
        let buying = orders[index].request.side == .buy
        let available = buying ? books[symbol].askAvailable : books[symbol].bidAvailable
        // Sizes unknown (NaN) do not limit the fill.
        let limit = available.isNaN ? Double.infinity : available
        let quantity = min(orders[index].remaining, limit)
        guard quantity > 0 else { return false }
        if !available.isNaN {
            if buying { books[symbol].askAvailable -= quantity } else { books[symbol].bidAvailable -= quantity }
        }
        return fill(index, price: price, quantity: quantity, rule: .quote, at: time)
    }

    /// Records a fill of `quantity` at `price`; true when the order is now filled (and removed).
    private func fill(_ index: Int, price: Double, quantity: Double, rule: FillRule, at time: Nanos) -> Bool {
        precondition(quantity > 0 && quantity <= orders[index].remaining, "a fill is positive and at most the remainder")
        precondition(price.isFinite, "a fill has a finite price")
        orders[index].fills += 1
        let order = orders[index]
        let fee = config.fee(price: price, quantity: quantity)
        reports.append(.fill(FillRecord(time: time, arrivalTime: order.arrivalTime, orderID: order.number,
                                        fillNumber: order.fills, symbol: order.request.symbol,
                                        side: order.request.side, price: price, quantity: quantity, fee: fee,
                                        rule: rule, tag: order.request.tag)))
        // The last fill closes the order exactly (no float remainder left resting).
        let complete = quantity >= order.remaining
        orders[index].filled = complete ? order.request.quantity : order.filled + quantity
        record(orders[index], complete ? .filled : .partiallyFilled, at: time, reason: "")
        if complete { orders.remove(at: index) }
        return complete
    }

    private func record(_ order: SimulatedOrder, _ status: OrderStatus, at time: Nanos, reason: String) {
        // The sequence numbers (`OrderRecord.sequence(status:fills:)`) hold because only an order that reached
        // the venue changes after its second record, and one that did not is rejected or accepted.
        switch status {
        case .submitted, .rejected:
            precondition(!order.accepted && order.fills == 0, "order \(order.number): \(status.name) after arrival")
        case .accepted:
            precondition(order.accepted && order.fills == 0, "order \(order.number): accepted after a fill")
        case .partiallyFilled, .filled, .canceled, .expired, .replaced:
            precondition(order.accepted, "order \(order.number): \(status.name) before it reached the venue")
        }
        let request = order.request
        reports.append(.order(OrderRecord(time: time, orderID: order.number, symbol: request.symbol, side: request.side,
                                          type: request.type, timeInForce: request.timeInForce,
                                          quantity: request.quantity, limitPrice: request.limitPrice,
                                          stopPrice: request.stopPrice, status: status,
                                          filledQuantity: order.filled, tag: request.tag, reason: reason,
                                          sequence: OrderRecord.sequence(status: status, fills: order.fills))))
    }

    private func endOfUTCDay(_ time: Nanos) -> Nanos {
        let day = 86_400 * TimeUtil.nsPerSecond
        let floor = time >= 0 ? time / day : (time - day + 1) / day
        return (floor + 1) * day
    }

    // MARK: - Snapshot

    /// Writes the simulator's state (docs/backtesting.md, "Snapshot").
    public func snapshot(into writer: inout SnapshotWriter) {
        precondition(reports.isEmpty, "a snapshot is taken between events, with the reports drained")
        writer.append(nextOrderID)
        writer.appendCount(nextNumbers.count)
        for number in nextNumbers { writer.append(number) }
        writer.append(now)
        writer.appendCount(books.count)
        for book in books {
            for value in [book.bid, book.bidSize, book.ask, book.askSize, book.bidAvailable, book.askAvailable,
                          book.lastPrice] {
                writer.append(value)
            }
            writer.append(book.hasQuote)
        }
        writer.appendCount(orders.count)
        for order in orders {
            writer.append(order.id)
            writer.append(order.number)
            writeRequest(order.request, into: &writer)
            writer.append(order.submitTime)
            writer.append(order.arrivalTime)
            writer.append(order.expiryTime)
            writer.append(order.cancelTime)
            writer.append(order.replacesID)
            writer.append(order.filled)
            writer.append(order.fills)
            writer.append(order.accepted)
            writer.append(order.triggered)
        }
    }

    /// Reads what `snapshot(into:)` wrote; checks everything before changing the simulator.
    public func restore(from reader: inout SnapshotReader) throws {
        let nextID = try reader.readInt64()
        let numberCount = try reader.readCount(minimumElementBytes: 8, limit: Int(UInt32.max))
        var restoredNumbers: [Int64] = []
        for _ in 0..<numberCount {
            let number = try reader.readInt64()
            guard number >= 1 else { throw reader.error("next order number \(number) below 1") }
            restoredNumbers.append(number)
        }
        let restoredNow = try reader.readInt64()
        guard nextID >= 1 else { throw reader.error("next order id \(nextID) below 1") }
        let bookCount = try reader.readCount(minimumElementBytes: 57, limit: Int(UInt32.max))
        var restoredBooks: [SymbolBook] = []
        restoredBooks.reserveCapacity(bookCount)
        for _ in 0..<bookCount {
            var book = SymbolBook()
            book.bid = try reader.readDouble()
            book.bidSize = try reader.readDouble()
            book.ask = try reader.readDouble()
            book.askSize = try reader.readDouble()
            book.bidAvailable = try reader.readDouble()
            book.askAvailable = try reader.readDouble()
            book.lastPrice = try reader.readDouble()
            book.hasQuote = try reader.readBool()
            restoredBooks.append(book)
        }
        let orderCount = try reader.readCount(minimumElementBytes: 108, limit: config.openOrdersMax)
        var restoredOrders: [SimulatedOrder] = []
        for _ in 0..<orderCount {
            let id = try reader.readInt64()
            let number = try reader.readInt64()
            let request = try readRequest(from: &reader)
            let order = SimulatedOrder(id: id, number: number, request: request, submitTime: try reader.readInt64(),
                                       arrivalTime: try reader.readInt64(), expiryTime: try reader.readInt64(),
                                       cancelTime: try reader.readInt64(), replacesID: try reader.readInt64(),
                                       filled: try reader.readDouble(), fills: try reader.readInt64(),
                                       accepted: try reader.readBool(), triggered: try reader.readBool())
            guard id >= 1 && id < nextID, restoredOrders.last.map({ $0.id < id }) ?? true else {
                throw reader.error("order id \(id) out of order or not below the next id \(nextID)")
            }
            guard order.fills >= 0, order.fills == 0 || order.accepted else {
                throw reader.error("order id \(id): \(order.fills) fills")
            }
            restoredOrders.append(order)
        }
        nextOrderID = nextID
        nextNumbers = restoredNumbers
        now = restoredNow
        books = restoredBooks
        orders = restoredOrders
    }
}

func writeRequest(_ request: OrderRequest, into writer: inout SnapshotWriter) {
    writer.append(UInt64(request.symbol))
    writer.appendByte(request.side.rawValue)
    writer.append(request.quantity)
    writer.appendByte(request.type.rawValue)
    writer.append(request.limitPrice)
    writer.append(request.stopPrice)
    writer.appendByte(request.timeInForce.rawValue)
    writer.append(request.tag)
}

func readRequest(from reader: inout SnapshotReader) throws -> OrderRequest {
    let symbol = try reader.readUInt32()
    let sideByte = try reader.readBytes(1)[0]
    let quantity = try reader.readDouble()
    let typeByte = try reader.readBytes(1)[0]
    let limitPrice = try reader.readDouble()
    let stopPrice = try reader.readDouble()
    let tifByte = try reader.readBytes(1)[0]
    let tag = try reader.readString()
    guard let side = OrderSide(rawValue: sideByte), let type = OrderType(rawValue: typeByte),
          let timeInForce = TimeInForce(rawValue: tifByte) else {
        throw reader.error("order side, type or time in force out of range")
    }
    return OrderRequest(symbol: symbol, side: side, quantity: quantity, type: type, limitPrice: limitPrice,
                        stopPrice: stopPrice, timeInForce: timeInForce, tag: tag)
}
