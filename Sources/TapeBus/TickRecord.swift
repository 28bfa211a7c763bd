import TapeCore

/// The value of a record in the `tick_data` topic: one decoded, validated market event, a clock tick or
/// an end-of-session mark, in a compact binary layout (version 1). The record's **key** is the symbol
/// (UTF-8, as the ingest names it: `usdm:BTCUSDT`) for market events, and empty for clock ticks and
/// end marks, which `tape ingest` sends to **every** partition (so an idle partition's timers still
/// fire, and every partition's graph finishes when the session ends). The record timestamp is the
/// receive time in ms (Kafka's unit); the value carries it in ns.
///
/// Layout, little-endian, version 1 (docs/kafka.md):
///
/// | bytes | field |
/// |---|---|
/// | 2 | magic `T1` (0x54 0x31): Tape tick record, version 1 |
/// | 1 | type: 0 trade, 1 quote, 2 bar, 3 clock tick, 4 end of session |
/// | 1 | side (trades: 0 unknown, 1 buy, 2 sell) |
/// | 8 | event time, ns UTC (i64) |
/// | 8 | receive time, ns UTC (i64): the stamp taken once when the message entered Tape |
/// | 8 | sequence (i64): the venue's trade or update id |
/// | 4 | source (u32): the feed's index in the ingest session |
/// | 8 | session (u64): the ingest session's id (its start, wall ns) |
/// | 8 | stream sequence (u64): the record's place in the session (1, 2, …; a clock tick's copies share one) |
/// | 8 × n | f64 values: trade `price, size`; quote `bid, bid_size, ask, ask_size`; bar `open, high, low, close, volume`; none for ticks and end marks |
/// | 2 + n | exchange: u16 byte count, UTF-8 (0: none) |
/// | 2 + n | conditions: u16 byte count, UTF-8 (0: none) |
///
/// A reader refuses (never guesses) a value of another magic or version, a type it does not know, or a
/// length that does not match its type: a **poison record**, counted and skipped by `tape work`.
public enum TickRecord {
    public static let magic: (UInt8, UInt8) = (0x54, 0x31)
    public static let version = 1
    /// Fixed part before the values.
    public static let headerBytes = 2 + 1 + 1 + 8 + 8 + 8 + 4 + 8 + 8

    /// Where a record sits in its ingest session: a consumer drops a record whose place is not after the
    /// last one it handled in that session (a producer's resend after a broker restart).
    public struct Place: Equatable, Sendable {
        public var session: UInt64
        public var sequence: UInt64
        public init(session: UInt64, sequence: UInt64) { self.session = session; self.sequence = sequence }
    }

    public enum RecordType: UInt8, Sendable {
        case trade = 0, quote = 1, bar = 2, clockTick = 3, endOfSession = 4
    }

    static func valueCount(_ type: RecordType) -> Int {
        switch type {
        case .trade: return 2
        case .quote: return 4
        case .bar: return 5
        case .clockTick, .endOfSession: return 0
        }
    }

    /// Appends the value of `event` to `out` (cleared first; its capacity is kept: no allocation once
    /// warm). `exchange` and `conditions` are the interned names' bytes (empty: none).
    public static func encode(_ event: MarketEvent, exchange: [UInt8], conditions: [UInt8], place: Place,
                              into out: inout [UInt8]) {
        let type: RecordType
        switch event.kind {
        case .trade: type = .trade
        case .quote: type = .quote
        case .bar: type = .bar
        case .clockTick: type = .clockTick
        }
        out.removeAll(keepingCapacity: true)
        out.append(magic.0); out.append(magic.1)
        out.append(type.rawValue)
        out.append(event.side)
        put(event.eventTime, &out); put(event.receiveTime, &out); put(event.sequence, &out)
        put32(event.source, &out)
        put(Int64(bitPattern: place.session), &out); put(Int64(bitPattern: place.sequence), &out)
        switch type {
        case .trade: putDouble(event.price, &out); putDouble(event.size, &out)
        case .quote:
            putDouble(event.bid, &out); putDouble(event.bidSize, &out)
            putDouble(event.ask, &out); putDouble(event.askSize, &out)
        case .bar:
            putDouble(event.open, &out); putDouble(event.high, &out); putDouble(event.low, &out)
            putDouble(event.price, &out); putDouble(event.size, &out)
        case .clockTick, .endOfSession: break
        }
        putString(exchange, &out)
        putString(conditions, &out)
    }

    /// The end-of-session mark at stream time `time` (the last stamp of the session).
    public static func endOfSession(at time: Nanos, place: Place, into out: inout [UInt8]) {
        encode(.clockTick(at: time), exchange: [], conditions: [], place: place, into: &out)
        out[2] = RecordType.endOfSession.rawValue
    }

    /// What a value holds.
    public enum Decoded: Equatable, Sendable {
        /// A market event or a clock tick (symbol, exchange and conditions interned by the caller's table).
        case event(MarketEvent, Place)
        case endOfSession(at: Nanos, Place)
    }

    /// Why a value was refused.
    public struct Refused: Error, Equatable, CustomStringConvertible, Sendable {
        public let detail: String
        public var description: String { detail }
    }

    /// Decodes `value`; the symbol comes from `key` (market events) and every name is interned in
    /// `symbols`. Throws `Refused` for anything that is not a version-1 record of a known type with the
    /// length its type needs, or a market event without a key.
    public static func decode(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                              symbols: SymbolTable) throws(Refused) -> Decoded {
        let n = value.count
        guard n >= headerBytes + 4 else { throw Refused(detail: "value of \(n) bytes is shorter than a tick record") }
        guard value[0] == magic.0, value[1] == magic.1 else {
            throw Refused(detail: "not a Tape tick record v1 (first bytes \(hex(value.prefix(4))))")
        }
        guard let type = RecordType(rawValue: value[2]) else { throw Refused(detail: "unknown record type \(value[2])") }
        let values = valueCount(type)
        var at = headerBytes + 8 * values
        guard n >= at + 4 else { throw Refused(detail: "value of \(n) bytes is too short for its type \(type)") }
        let exchangeCount = Int(u16(value, at)); at += 2
        guard n >= at + exchangeCount + 2 else { throw Refused(detail: "exchange name runs past the value") }
        let exchangeAt = at; at += exchangeCount
        let conditionsCount = Int(u16(value, at)); at += 2
        guard n == at + conditionsCount else {
            throw Refused(detail: "value of \(n) bytes, its fields take \(at + conditionsCount)")
        }
        let eventTime = i64(value, 4), receiveTime = i64(value, 12), sequence = i64(value, 20)
        guard receiveTime > 0, TimeUtil.isAccepted(receiveTime) else {
            throw Refused(detail: "receive time \(receiveTime) outside Tape's accepted range")
        }
        let place = Place(session: UInt64(bitPattern: i64(value, 32)), sequence: UInt64(bitPattern: i64(value, 40)))
        if type == .endOfSession { return .endOfSession(at: receiveTime, place) }
        var event = MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: sequence,
                                source: u32(value, 28), side: value[3])
        let v = headerBytes
        switch type {
        case .trade:
            event.kind = .trade; event.price = f64(value, v); event.size = f64(value, v + 8)
        case .quote:
            event.kind = .quote
            event.bid = f64(value, v); event.bidSize = f64(value, v + 8)
            event.ask = f64(value, v + 16); event.askSize = f64(value, v + 24)
        case .bar:
            event.kind = .bar
            event.open = f64(value, v); event.high = f64(value, v + 8); event.low = f64(value, v + 16)
            event.price = f64(value, v + 24); event.size = f64(value, v + 32)
        case .clockTick:
            event.kind = .clockTick
            return .event(event, place)
        case .endOfSession:
            break
        }
        guard key.count > 0 else { throw Refused(detail: "a \(type) record without a key (the symbol)") }
        guard let symbol = intern(key, symbols) else { throw Refused(detail: "key is not a valid symbol name") }
        event.symbol = symbol
        if exchangeCount > 0 {
            guard let id = intern(UnsafeRawBufferPointer(rebasing: value[exchangeAt..<exchangeAt + exchangeCount]), symbols)
            else { throw Refused(detail: "exchange is not a valid name") }
            event.exchange = id
        }
        if conditionsCount > 0 {
            guard let id = intern(UnsafeRawBufferPointer(rebasing: value[(n - conditionsCount)...]), symbols)
            else { throw Refused(detail: "conditions are not a valid name") }
            event.conditions = id
        }
        return .event(event, place)
    }

    /// The place of a version-1 record without decoding the rest or interning any name; nil for a value
    /// that is not one (too short, another magic). For checking which record sits at an offset.
    public static func place(of value: UnsafeRawBufferPointer) -> Place? {
        guard value.count >= headerBytes + 4, value[0] == magic.0, value[1] == magic.1 else { return nil }
        return Place(session: UInt64(bitPattern: i64(value, 32)), sequence: UInt64(bitPattern: i64(value, 40)))
    }

    /// Interned id of a name, nil for bytes the table refuses (not UTF-8, control characters).
    private static func intern(_ bytes: UnsafeRawBufferPointer, _ symbols: SymbolTable) -> SymbolID? {
        let id = symbols.intern(bytes: bytes)   // allocation-free when known; 0 for an invalid name
        return id == 0 ? nil : id
    }

    // MARK: Little-endian helpers

    @inline(__always) static func put(_ v: Int64, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    @inline(__always) static func put32(_ v: UInt32, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    @inline(__always) static func putDouble(_ v: Double, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
    }
    @inline(__always) static func putString(_ bytes: [UInt8], _ out: inout [UInt8]) {
        let count = min(bytes.count, Int(UInt16.max))
        withUnsafeBytes(of: UInt16(count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: bytes.prefix(count))
    }
    @inline(__always) static func i64(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int64 {
        Int64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: Int64.self))
    }
    @inline(__always) static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    @inline(__always) static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    @inline(__always) static func f64(_ b: UnsafeRawBufferPointer, _ at: Int) -> Double {
        Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
    }
    static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
    }
}
