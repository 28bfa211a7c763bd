import TapeCore

/// The tables a batch fills, in a fixed order (the order a batch writes them in one transaction).
public enum StoreTable: Int, CaseIterable, Sendable {
    case ticks, bars, indicators, anomalies, predictions
    /// The trading layer's rows (migration 3; docs/storage.md).
    case orders, fills, positions, equity

    public var name: String {
        switch self {
        case .ticks: return "ticks"
        case .bars: return "bars"
        case .indicators: return "indicators"
        case .anomalies: return "anomalies"
        case .predictions: return "predictions"
        case .orders: return "orders"
        case .fills: return "fills"
        case .positions: return "positions"
        case .equity: return "equity"
        }
    }

    /// The columns a batch row holds, in COPY order.
    public var columns: [String] {
        switch self {
        case .ticks:
            return ["time", "time_ns", "receive_ns", "symbol", "kind", "sequence", "price", "size", "side",
                    "bid", "bid_size", "ask", "ask_size", "open", "high", "low"]
        case .bars:
            return ["time", "end_time", "symbol", "timeframe", "open", "high", "low", "close", "volume", "vwap",
                    "trades", "config_hash", "run_id"]
        case .indicators:
            return ["time", "symbol", "timeframe", "sma", "ema", "rsi", "macd", "macd_signal", "macd_hist",
                    "bb_middle", "bb_upper", "bb_lower", "session_vwap", "config_hash", "run_id"]
        case .anomalies:
            return ["time", "time_ns", "symbol", "rule", "value", "threshold", "severity", "config_hash", "run_id"]
        case .predictions:
            return ["time", "symbol", "timeframe", "prediction", "config_hash", "run_id"]
        case .orders:
            return ["time", "time_ns", "symbol", "order_id", "sequence", "side", "type", "tif", "quantity",
                    "limit_price", "stop_price", "status", "filled_quantity", "tag", "reason", "config_hash", "run_id"]
        case .fills:
            return ["time", "time_ns", "symbol", "order_id", "fill_number", "side", "price", "quantity", "fee", "rule",
                    "arrival_ns", "tag", "config_hash", "run_id"]
        case .positions:
            return ["time", "time_ns", "symbol", "order_id", "fill_number", "quantity", "average_price", "realized_pnl",
                    "unrealized_pnl", "fees", "mark_price", "config_hash", "run_id"]
        case .equity:
            return ["time", "time_ns", "symbol", "cash", "equity", "gross_exposure", "config_hash", "run_id"]
        }
    }
}

/// One batch of rows for every table, in binary COPY format, with the UTC days its rows fall on (their
/// partitions must exist before it is written) and the event-time range of its ticks. Filled on the
/// engine thread, written (or spooled) by the store's writer thread, then reused.
final class StoreBatch {
    /// Per symbol, the receive-time and event-time range of its ticks in this batch (`tick_ranges`).
    struct TickRange: Equatable {
        var symbol: String
        var firstReceive: Nanos
        var lastReceive: Nanos
        var firstTime: Nanos
        var lastTime: Nanos
        var rows: Int
    }

    var tables: [CopyBinaryRows]
    var tickRanges: [TickRange] = []
    var days: Set<Int64> = []
    var firstEvent: Nanos = .max
    var lastEvent: Nanos = .min
    /// `tape work`: the partition checkpoint committed in this batch's transaction (never spooled).
    var checkpoint: WorkerCheckpoint? = nil
    /// `tape work`: the receive stamps of the batch's ticks, for the stamp → commit latency.
    var receiveTimes: [Int64] = []
    /// Set by `finish()`.
    private(set) var finished = false

    init(capacity: Int = 1 << 20) {
        tables = StoreTable.allCases.map { $0 == .ticks ? CopyBinaryRows(capacity: capacity) : CopyBinaryRows(capacity: 1 << 14) }
    }

    var rows: Int { tables.reduce(0) { $0 + $1.rows } }

    func reset() {
        for index in tables.indices { tables[index].reset() }
        days.removeAll(keepingCapacity: true)
        tickRanges.removeAll(keepingCapacity: true)
        firstEvent = .max
        lastEvent = .min
        checkpoint = nil
        receiveTimes.removeAll(keepingCapacity: true)
        finished = false
    }

    func finish() {
        guard !finished else { return }
        for index in tables.indices { tables[index].finish() }
        finished = true
    }

    // MARK: Spool format

    /// `TAPESPL2`, then little-endian: day count and days (Int64), first and last event (Int64), the
    /// tick ranges (count; per range the symbol's byte count and UTF-8, then five Int64), then per table
    /// (`StoreTable` order) its row count and byte count (Int64) and the finished COPY bytes. Only the sink
    /// that wrote a spool reads it back (2: with the trading tables).
    static let magic: [UInt8] = Array("TAPESPL2".utf8)

    func serialized() -> [UInt8] {
        precondition(finished, "serialize a finished batch")
        var out = Self.magic
        func put(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        put(Int64(days.count))
        for day in days.sorted() { put(day) }
        put(firstEvent)
        put(lastEvent)
        put(Int64(tickRanges.count))
        for range in tickRanges {
            let name = Array(range.symbol.utf8)
            put(Int64(name.count))
            out.append(contentsOf: name)
            for value in [range.firstReceive, range.lastReceive, range.firstTime, range.lastTime, Int64(range.rows)] { put(value) }
        }
        for table in tables {
            put(Int64(table.rows))
            put(Int64(table.bytes.count))
            out.append(contentsOf: table.bytes)
        }
        return out
    }

    /// Reads a spooled batch; nil when the bytes are not a whole one.
    static func deserialize(_ bytes: [UInt8]) -> StoreBatch? {
        var offset = magic.count
        guard bytes.count >= offset, Array(bytes[0..<offset]) == magic else { return nil }
        func take() -> Int64? {
            guard offset + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for index in (offset..<offset + 8).reversed() { value = value << 8 | UInt64(bytes[index]) }
            offset += 8
            return Int64(bitPattern: value)
        }
        let batch = StoreBatch(capacity: 0)
        guard let dayCount = take(), dayCount >= 0, dayCount < 1_000_000 else { return nil }
        for _ in 0..<dayCount { guard let day = take() else { return nil }; batch.days.insert(day) }
        guard let first = take(), let last = take() else { return nil }
        batch.firstEvent = first
        batch.lastEvent = last
        guard let rangeCount = take(), rangeCount >= 0, rangeCount < 10_000_000 else { return nil }
        for _ in 0..<rangeCount {
            guard let length = take(), length >= 0, offset + Int(length) <= bytes.count else { return nil }
            let symbol = String(decoding: bytes[offset..<offset + Int(length)], as: UTF8.self)
            offset += Int(length)
            guard let a = take(), let b = take(), let c = take(), let d = take(), let rows = take() else { return nil }
            batch.tickRanges.append(TickRange(symbol: symbol, firstReceive: a, lastReceive: b, firstTime: c, lastTime: d, rows: Int(rows)))
        }
        for index in batch.tables.indices {
            guard let rows = take(), let count = take(), count >= 0, offset + Int(count) <= bytes.count else { return nil }
            batch.tables[index] = CopyBinaryRows(finishedBytes: Array(bytes[offset..<offset + Int(count)]), rows: Int(rows))
            offset += Int(count)
        }
        batch.finished = true
        return offset == bytes.count ? batch : nil
    }
}
