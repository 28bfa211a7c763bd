import TapeCore

/// A bar as stored, with its indicators when the same run computed them (NULL numbers are NaN).
public struct StoredBar: Sendable, Equatable {
    public var symbol: String
    public var timeframe: String
    public var start: Nanos
    public var end: Nanos
    public var open: Double, high: Double, low: Double, close: Double
    public var volume: Double, vwap: Double
    public var trades: Int64
    public var configHash: String
    /// Indicator name → value (`sma`, `ema`, `rsi`, `macd`, `macd_signal`, `macd_hist`, `bb_middle`,
    /// `bb_upper`, `bb_lower`, `session_vwap`); empty when none were stored for this bar.
    public var indicators: [String: Double]
}

/// The reads the API needs (issue: serving), each answered from an index (plans in docs/storage.md):
/// the latest bar of a symbol and timeframe, bars in a time range with keyset paging, anomalies by
/// symbol, rule, severity and time, and the latest tick of a symbol.
///
/// Results of one config: `configHash` nil means the config of the most recent run that stored the
/// symbol (so a user who changed the config sees the new results, never a mix).
public struct StoreQueries {
    public let connection: PostgresConnection
    public init(connection: PostgresConnection) { self.connection = connection }

    static let indicatorColumns = ["sma", "ema", "rsi", "macd", "macd_signal", "macd_hist", "bb_middle", "bb_upper",
                                   "bb_lower", "session_vwap"]

    private static func nanos(_ column: String) -> String { "(extract(epoch from \(column)) * 1000000000)::bigint" }

    private func configFilter(_ configHash: String?, symbol: String, timeframe: String) -> String {
        if let configHash { return "b.config_hash = \(StoreSchema.quote(configHash))" }
        return """
            b.config_hash = (SELECT r.config_hash FROM tape_runs r WHERE r.run_id = (
                SELECT b2.run_id FROM bars b2 WHERE b2.symbol = \(StoreSchema.quote(symbol))
                AND b2.timeframe = \(StoreSchema.quote(timeframe)) ORDER BY b2.time DESC LIMIT 1))
            """
    }

    private func barsSQL(where condition: String, order: String, limit: Int) -> String {
        let indicators = Self.indicatorColumns.map { "i.\($0)" }.joined(separator: ", ")
        return """
            SELECT b.symbol, b.timeframe, \(Self.nanos("b.time")), \(Self.nanos("b.end_time")), b.open, b.high, b.low, b.close,
                   b.volume, b.vwap, b.trades, b.config_hash, \(indicators), i.symbol IS NOT NULL
            FROM bars b LEFT JOIN indicators i ON i.symbol = b.symbol AND i.timeframe = b.timeframe
                AND i.time = b.end_time AND i.config_hash = b.config_hash
            WHERE \(condition) ORDER BY b.time \(order) LIMIT \(limit)
            """
    }

    private static func bar(_ row: [String?]) -> StoredBar {
        func number(_ index: Int) -> Double { row[index].flatMap(Double.init) ?? .nan }
        var indicators: [String: Double] = [:]
        if row[22] == "t" {
            for (offset, name) in indicatorColumns.enumerated() { indicators[name] = number(12 + offset) }
        }
        return StoredBar(symbol: row[0] ?? "", timeframe: row[1] ?? "", start: row[2].flatMap { Int64($0) } ?? 0,
                         end: row[3].flatMap { Int64($0) } ?? 0, open: number(4), high: number(5), low: number(6),
                         close: number(7), volume: number(8), vwap: number(9), trades: row[10].flatMap { Int64($0) } ?? 0,
                         configHash: row[11] ?? "", indicators: indicators)
    }

    /// The newest bar of `symbol` and `timeframe` (index `bars_key`, backwards, one row).
    public func latestBar(symbol: String, timeframe: String, configHash: String? = nil) throws -> StoredBar? {
        let condition = "b.symbol = \(StoreSchema.quote(symbol)) AND b.timeframe = \(StoreSchema.quote(timeframe)) AND "
            + configFilter(configHash, symbol: symbol, timeframe: timeframe)
        return try connection.query(barsSQL(where: condition, order: "DESC", limit: 1)).first.map(Self.bar)
    }

    /// Bars of `symbol` and `timeframe` with start in [from, to), oldest first, at most `limit`; the next
    /// page starts after the last start returned (`after`), keyset paging on the index.
    public func bars(symbol: String, timeframe: String, from: Nanos, to: Nanos, after: Nanos? = nil, limit: Int = 1000,
                     configHash: String? = nil) throws -> [StoredBar] {
        let lower = after.map { "b.time > \(StoreSchema.timestamp($0))" } ?? "b.time >= \(StoreSchema.timestamp(from))"
        let condition = "b.symbol = \(StoreSchema.quote(symbol)) AND b.timeframe = \(StoreSchema.quote(timeframe)) AND "
            + "\(lower) AND b.time < \(StoreSchema.timestamp(to)) AND " + configFilter(configHash, symbol: symbol, timeframe: timeframe)
        return try connection.query(barsSQL(where: condition, order: "ASC", limit: max(1, min(limit, 100_000)))).map(Self.bar)
    }

    /// Anomalies in [from, to), oldest first, filtered by symbol (index `anomalies_key`) or rule (index
    /// `anomalies_rule`) and severity. Rows: symbol, time_ns, rule, value, threshold, severity, config_hash.
    public func anomalies(symbol: String? = nil, rule: String? = nil, severity: String? = nil, from: Nanos, to: Nanos,
                          limit: Int = 1000) throws -> [[String?]] {
        var conditions = ["time >= \(StoreSchema.timestamp(from))", "time < \(StoreSchema.timestamp(to))"]
        if let symbol { conditions.append("symbol = \(StoreSchema.quote(symbol))") }
        if let rule { conditions.append("rule = \(StoreSchema.quote(rule))") }
        if let severity { conditions.append("severity = \(StoreSchema.quote(severity))") }
        return try connection.query("""
            SELECT symbol, time_ns, rule, value, threshold, severity, config_hash FROM anomalies
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY time, symbol, rule LIMIT \(max(1, min(limit, 100_000)))
            """)
    }

    /// The latest tick of `symbol`: the newest write in `tick_ranges` (index `tick_ranges_symbol`) bounds
    /// the time, so the ticks scan is pruned to that day's partition and its BRIN block range.
    /// Rows: time_ns, receive_ns, kind, price, size, bid, bid_size, ask, ask_size.
    public func latestTick(symbol: String) throws -> [String?]? {
        try connection.query("""
            SELECT time_ns, receive_ns, kind, price, size, bid, bid_size, ask, ask_size FROM ticks
            WHERE symbol = \(StoreSchema.quote(symbol))
              AND time >= (SELECT max(last_time) FROM tick_ranges WHERE symbol = \(StoreSchema.quote(symbol))) - interval '1 minute'
              AND time <= (SELECT max(last_time) FROM tick_ranges WHERE symbol = \(StoreSchema.quote(symbol)))
            ORDER BY time DESC, receive_ns DESC LIMIT 1
            """).first
    }
}
