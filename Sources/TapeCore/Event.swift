/// Nanoseconds since the Unix epoch, UTC. Every time in Tape is one of these.
public typealias Nanos = Int64

public enum EventKind: UInt8, Sendable {
    /// A trade: `price`, `size`.
    case trade = 0
    /// A top-of-book quote: `bid`, `bidSize`, `ask`, `askSize`.
    case quote = 1
    /// A finished bar from a bar file: `open`, `high`, `low`, `price` (close), `size` (volume, NaN if absent).
    case bar = 2
    /// A clock tick: not market data. `receiveTime` (= `eventTime`) is a stamped instant of the stream's
    /// time; it advances the graph's clock and fires due timers, and is never delivered to the graph.
    /// Live sources emit them every `live.tick_ms` so that timers fire on quiet symbols, and recordings
    /// keep them, so a replay fires every timer at the same stream position as live did.
    case clockTick = 3
}

/// One market event, as every source produces it and as the graph consumes it.
///
/// A flat value type (no references, no strings) so that readers can fill buffers of them without
/// allocating per event. Symbols, exchanges and condition codes are interned ids (see `SymbolTable`).
public struct MarketEvent: Sendable, Equatable {
    /// Exchange time of the event (trade time, quote time, or bar *end* for bars), ns UTC.
    public var eventTime: Nanos
    /// When we received it (capture time, or `eventTime` when a format has none), ns UTC.
    /// Replay orders by this.
    public var receiveTime: Nanos
    /// Source sequence: trade id, update id, or line number where a format has none.
    public var sequence: Int64
    /// Interned symbol id.
    public var symbol: SymbolID
    /// Index of the input (file) this came from, in command-line order; the merge tie-break.
    public var source: UInt32
    public var kind: EventKind
    /// Aggressor side for trades: 0 unknown, 1 buy, 2 sell.
    public var side: UInt8
    /// Interned exchange id (0 = none) and interned conditions string id (0 = none).
    public var exchange: UInt32
    public var conditions: UInt32
    /// Trade price, or bar close.
    public var price: Double
    /// Trade size, or bar volume.
    public var size: Double
    public var bid: Double
    public var bidSize: Double
    public var ask: Double
    public var askSize: Double
    /// Bar open/high/low (bars only).
    public var open: Double
    public var high: Double
    public var low: Double

    public init(eventTime: Nanos = 0, receiveTime: Nanos = 0, sequence: Int64 = 0, symbol: SymbolID = 0,
                source: UInt32 = 0, kind: EventKind = .trade, side: UInt8 = 0, exchange: UInt32 = 0,
                conditions: UInt32 = 0, price: Double = .nan, size: Double = .nan,
                bid: Double = .nan, bidSize: Double = .nan, ask: Double = .nan, askSize: Double = .nan,
                open: Double = .nan, high: Double = .nan, low: Double = .nan) {
        self.eventTime = eventTime; self.receiveTime = receiveTime; self.sequence = sequence
        self.symbol = symbol; self.source = source; self.kind = kind; self.side = side
        self.exchange = exchange; self.conditions = conditions
        self.price = price; self.size = size; self.bid = bid; self.bidSize = bidSize
        self.ask = ask; self.askSize = askSize; self.open = open; self.high = high; self.low = low
    }

    public static func trade(eventTime: Nanos, receiveTime: Nanos, symbol: SymbolID, price: Double, size: Double,
                             sequence: Int64 = 0, source: UInt32 = 0, side: UInt8 = 0) -> MarketEvent {
        MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: sequence, symbol: symbol,
                    source: source, kind: .trade, side: side, price: price, size: size)
    }

    public static func quote(eventTime: Nanos, receiveTime: Nanos, symbol: SymbolID, bid: Double, bidSize: Double,
                             ask: Double, askSize: Double, sequence: Int64 = 0, source: UInt32 = 0) -> MarketEvent {
        MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: sequence, symbol: symbol,
                    source: source, kind: .quote, bid: bid, bidSize: bidSize, ask: ask, askSize: askSize)
    }

    /// A clock tick at `time` (stream time: a stamped receive time).
    public static func clockTick(at time: Nanos, sequence: Int64 = 0, source: UInt32 = 0) -> MarketEvent {
        MarketEvent(eventTime: time, receiveTime: time, sequence: sequence, source: source, kind: .clockTick)
    }

    public static func bar(endTime: Nanos, receiveTime: Nanos, symbol: SymbolID, open: Double, high: Double,
                           low: Double, close: Double, volume: Double, sequence: Int64 = 0, source: UInt32 = 0) -> MarketEvent {
        MarketEvent(eventTime: endTime, receiveTime: receiveTime, sequence: sequence, symbol: symbol,
                    source: source, kind: .bar, price: close, size: volume, open: open, high: high, low: low)
    }
}
