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

    // MARK: serving (`tape serve`)

    /// The symbols with stored ticks (`tick_ranges`): symbol, rows, first and last event time (ns), oldest
    /// name first. Rows: symbol, ticks, first_ns, last_ns.
    public func symbols() throws -> [[String?]] {
        try connection.query("""
            SELECT symbol, sum(rows)::bigint, \(Self.nanos("min(first_time)")), \(Self.nanos("max(last_time)"))
            FROM tick_ranges GROUP BY symbol ORDER BY symbol
            """)
    }

    /// Whether any tick of `symbol` is stored (index `tick_ranges_symbol`).
    public func hasSymbol(_ symbol: String) throws -> Bool {
        !(try connection.query("SELECT 1 FROM tick_ranges WHERE symbol = \(StoreSchema.quote(symbol)) LIMIT 1")).isEmpty
    }

    /// The latest tick of one kind (0 trade, 1 quote, 2 bar-file row) of `symbol`, bounded as `latestTick`.
    /// Rows: time_ns, receive_ns, kind, price, size, side, sequence, bid, bid_size, ask, ask_size.
    public func latestTick(symbol: String, kind: Int) throws -> [String?]? {
        precondition((0...2).contains(kind), "tick kinds are 0 trade, 1 quote, 2 bar")
        let quoted = StoreSchema.quote(symbol)
        return try connection.query("""
            SELECT time_ns, receive_ns, kind, price, size, side, sequence, bid, bid_size, ask, ask_size FROM ticks
            WHERE symbol = \(quoted) AND kind = \(kind)
              AND time >= (SELECT min(first_time) FROM tick_ranges WHERE symbol = \(quoted))
              AND time <= (SELECT max(last_time) FROM tick_ranges WHERE symbol = \(quoted))
            ORDER BY time DESC, receive_ns DESC LIMIT 1
            """).first
    }

    /// Indicators of `symbol` and `timeframe` with bar end in [from, to), oldest first, after `after` (keyset),
    /// of one config (as `bars`). Rows: end_ns, sma, ema, rsi, macd, macd_signal, macd_hist, bb_middle,
    /// bb_upper, bb_lower, session_vwap, config_hash.
    public func indicators(symbol: String, timeframe: String, from: Nanos, to: Nanos, after: Nanos? = nil,
                           limit: Int = 1000) throws -> [[String?]] {
        let lower = after.map { "i.time > \(StoreSchema.timestamp($0))" } ?? "i.time >= \(StoreSchema.timestamp(from))"
        let columns = Self.indicatorColumns.map { "i.\($0)" }.joined(separator: ", ")
        return try connection.query("""
            SELECT \(Self.nanos("i.time")), \(columns), i.config_hash FROM indicators i
            WHERE i.symbol = \(StoreSchema.quote(symbol)) AND i.timeframe = \(StoreSchema.quote(timeframe))
              AND \(lower) AND i.time < \(StoreSchema.timestamp(to))
              AND i.config_hash = (SELECT r.config_hash FROM tape_runs r WHERE r.run_id = (
                  SELECT i2.run_id FROM indicators i2 WHERE i2.symbol = \(StoreSchema.quote(symbol))
                  AND i2.timeframe = \(StoreSchema.quote(timeframe)) ORDER BY i2.time DESC LIMIT 1))
            ORDER BY i.time LIMIT \(max(1, min(limit, 100_000)))
            """)
    }

    /// Predictions of `symbol` and `timeframe` with bar end in [from, to), oldest first, after `after` (keyset),
    /// of the config of the most recent run that stored them (as `indicators`). Rows: end_ns, prediction,
    /// config_hash.
    public func predictions(symbol: String, timeframe: String, from: Nanos, to: Nanos, after: Nanos? = nil,
                            limit: Int = 1000) throws -> [[String?]] {
        let lower = after.map { "p.time > \(StoreSchema.timestamp($0))" } ?? "p.time >= \(StoreSchema.timestamp(from))"
        return try connection.query("""
            SELECT \(Self.nanos("p.time")), p.prediction, p.config_hash FROM predictions p
            WHERE p.symbol = \(StoreSchema.quote(symbol)) AND p.timeframe = \(StoreSchema.quote(timeframe))
              AND \(lower) AND p.time < \(StoreSchema.timestamp(to))
              AND p.config_hash = (SELECT r.config_hash FROM tape_runs r WHERE r.run_id = (
                  SELECT p2.run_id FROM predictions p2 WHERE p2.symbol = \(StoreSchema.quote(symbol))
                  AND p2.timeframe = \(StoreSchema.quote(timeframe)) ORDER BY p2.time DESC LIMIT 1))
            ORDER BY p.time LIMIT \(max(1, min(limit, 100_000)))
            """)
    }

    /// The newest indicators of `symbol` in each of its timeframes, of the config of the most recent run that
    /// stored them there (as `indicators`). Rows: timeframe, end_ns, sma … session_vwap (as `indicators`),
    /// config_hash; by timeframe name.
    public func latestIndicators(symbol: String) throws -> [[String?]] {
        let quoted = StoreSchema.quote(symbol)
        let columns = Self.indicatorColumns.map { "i.\($0)" }.joined(separator: ", ")
        return try connection.query("""
            SELECT t.timeframe, latest.* FROM (SELECT DISTINCT timeframe FROM indicators WHERE symbol = \(quoted)) t
            CROSS JOIN LATERAL (
                SELECT \(Self.nanos("i.time")), \(columns), i.config_hash FROM indicators i
                WHERE i.symbol = \(quoted) AND i.timeframe = t.timeframe
                  AND i.config_hash = (SELECT r.config_hash FROM tape_runs r WHERE r.run_id = (
                      SELECT i2.run_id FROM indicators i2 WHERE i2.symbol = \(quoted) AND i2.timeframe = t.timeframe
                      ORDER BY i2.time DESC LIMIT 1))
                ORDER BY i.time DESC LIMIT 1) latest
            ORDER BY t.timeframe
            """)
    }

    /// The newest prediction of `symbol` in each timeframe it has predictions for. Rows: timeframe, end_ns,
    /// prediction, config_hash; by timeframe name.
    public func latestPredictions(symbol: String) throws -> [[String?]] {
        try connection.query("""
            SELECT DISTINCT ON (timeframe) timeframe, \(Self.nanos("time")), prediction, config_hash FROM predictions
            WHERE symbol = \(StoreSchema.quote(symbol)) ORDER BY timeframe, time DESC
            """)
    }

    /// The newest prediction of `symbol` and `timeframe`. Row: end_ns, prediction, config_hash.
    public func latestPrediction(symbol: String, timeframe: String) throws -> [String?]? {
        try connection.query("""
            SELECT \(Self.nanos("time")), prediction, config_hash FROM predictions
            WHERE symbol = \(StoreSchema.quote(symbol)) AND timeframe = \(StoreSchema.quote(timeframe))
            ORDER BY time DESC LIMIT 1
            """).first
    }

    /// A position in the anomalies' order (time_ns, symbol, rule, config_hash), for keyset paging.
    public struct AnomalyPosition: Sendable, Equatable {
        public var timeNanoseconds: Nanos
        public var symbol: String, rule: String, configHash: String
        public init(timeNanoseconds: Nanos, symbol: String, rule: String, configHash: String) {
            self.timeNanoseconds = timeNanoseconds
            self.symbol = symbol
            self.rule = rule
            self.configHash = configHash
        }
    }

    /// Anomalies as `anomalies(…)`, in (time_ns, symbol, rule, config_hash) order, strictly after `after`.
    /// Rows: symbol, time_ns, rule, value, threshold, severity, config_hash.
    public func anomalies(symbol: String?, rule: String?, severity: String?, from: Nanos, to: Nanos,
                          after: AnomalyPosition?, limit: Int) throws -> [[String?]] {
        var conditions = ["time >= \(StoreSchema.timestamp(from))", "time < \(StoreSchema.timestamp(to) ) + interval '1 microsecond'",
                          "time_ns >= \(from)", "time_ns < \(to)"]
        if let symbol { conditions.append("symbol = \(StoreSchema.quote(symbol))") }
        if let rule { conditions.append("rule = \(StoreSchema.quote(rule))") }
        if let severity { conditions.append("severity = \(StoreSchema.quote(severity))") }
        if let after {
            conditions.append("(time_ns, symbol, rule, config_hash) > (\(after.timeNanoseconds), "
                              + "\(StoreSchema.quote(after.symbol)), \(StoreSchema.quote(after.rule)), "
                              + "\(StoreSchema.quote(after.configHash)))")
        }
        return try connection.query("""
            SELECT symbol, time_ns, rule, value, threshold, severity, config_hash FROM anomalies
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY time_ns, symbol, rule, config_hash LIMIT \(max(1, min(limit, 100_000)))
            """)
    }

    // MARK: paper trading (migration 3)

    /// A position in the order of the orders or fills (time_ns, symbol, order_id, the row's number in its
    /// order — `sequence` or `fill_number` —, config_hash), for keyset paging.
    public struct TradingPosition: Sendable, Equatable {
        public var timeNanoseconds: Nanos
        public var symbol: String
        public var orderID: Int64
        public var number: Int64
        public var configHash: String
        public init(timeNanoseconds: Nanos, symbol: String, orderID: Int64, number: Int64, configHash: String) {
            self.timeNanoseconds = timeNanoseconds
            self.symbol = symbol
            self.orderID = orderID
            self.number = number
            self.configHash = configHash
        }
    }

    /// The columns of `orders` as the API reads them.
    public static let orderColumns = ["symbol", "time_ns", "order_id", "sequence", "side", "type", "tif", "quantity",
                                      "limit_price", "stop_price", "status", "filled_quantity", "tag", "reason",
                                      "config_hash", "run_id"]
    /// The columns of `fills` as the API reads them.
    public static let fillColumns = ["symbol", "time_ns", "order_id", "fill_number", "side", "price", "quantity", "fee",
                                     "rule", "arrival_ns", "tag", "config_hash", "run_id"]
    /// The columns of `positions` as the API reads them.
    public static let positionColumns = ["symbol", "time_ns", "order_id", "fill_number", "quantity", "average_price",
                                         "realized_pnl", "unrealized_pnl", "fees", "mark_price", "config_hash", "run_id"]
    /// The columns of `equity` as the API reads them.
    public static let equityColumns = ["symbol", "time_ns", "cash", "equity", "gross_exposure", "config_hash", "run_id"]

    /// Order changes with time in [from, to), of one symbol or all, in (time_ns, symbol, order_id, sequence,
    /// config_hash) order, strictly after `after`. Rows: `orderColumns`.
    public func orders(symbol: String?, from: Nanos, to: Nanos, after: TradingPosition?, limit: Int) throws -> [[String?]] {
        try tradingRows(table: "orders", columns: Self.orderColumns, number: "sequence", symbol: symbol, from: from,
                        to: to, after: after, limit: limit)
    }

    /// Fills with time in [from, to), of one symbol or all, in (time_ns, symbol, order_id, fill_number,
    /// config_hash) order, strictly after `after`. Rows: `fillColumns`.
    public func fills(symbol: String?, from: Nanos, to: Nanos, after: TradingPosition?, limit: Int) throws -> [[String?]] {
        try tradingRows(table: "fills", columns: Self.fillColumns, number: "fill_number", symbol: symbol, from: from,
                        to: to, after: after, limit: limit)
    }

    private func tradingRows(table: String, columns: [String], number: String, symbol: String?, from: Nanos, to: Nanos,
                             after: TradingPosition?, limit: Int) throws -> [[String?]] {
        var conditions = ["time >= \(StoreSchema.timestamp(from))",
                          "time < \(StoreSchema.timestamp(to)) + interval '1 microsecond'",
                          "time_ns >= \(from)", "time_ns < \(to)"]
        if let symbol { conditions.append("symbol = \(StoreSchema.quote(symbol))") }
        if let after {
            conditions.append("(time_ns, symbol, order_id, \(number), config_hash) > (\(after.timeNanoseconds), "
                              + "\(StoreSchema.quote(after.symbol)), \(after.orderID), \(after.number), "
                              + "\(StoreSchema.quote(after.configHash)))")
        }
        return try connection.query("""
            SELECT \(columns.joined(separator: ", ")) FROM \(table) WHERE \(conditions.joined(separator: " AND "))
            ORDER BY time_ns, symbol, order_id, \(number), config_hash LIMIT \(max(1, min(limit, 100_000)))
            """)
    }

    /// The newest `count` order changes of `symbol` (index `orders_key`, backwards), oldest first. Rows:
    /// `orderColumns`.
    public func recentOrders(symbol: String, count: Int) throws -> [[String?]] {
        try recentTradingRows(table: "orders", columns: Self.orderColumns, number: "sequence", symbol: symbol,
                              count: count)
    }

    /// The newest `count` fills of `symbol`, oldest first. Rows: `fillColumns`.
    public func recentFills(symbol: String, count: Int) throws -> [[String?]] {
        try recentTradingRows(table: "fills", columns: Self.fillColumns, number: "fill_number", symbol: symbol,
                              count: count)
    }

    private func recentTradingRows(table: String, columns: [String], number: String, symbol: String,
                                   count: Int) throws -> [[String?]] {
        Array(try connection.query("""
            SELECT \(columns.joined(separator: ", ")) FROM \(table) WHERE symbol = \(StoreSchema.quote(symbol))
            ORDER BY time DESC, time_ns DESC, order_id DESC, \(number) DESC, config_hash DESC
            LIMIT \(max(1, min(count, 100_000)))
            """).reversed())
    }

    /// The latest position of each symbol (or of `symbol`): the row with the greatest time; at one instant a
    /// mark's row (order 0), then the greatest order and fill number (`PositionRecord.isLater(than:)`, the
    /// rule the Redis sink follows too). Rows: `positionColumns`, by symbol.
    public func latestPositions(symbol: String?) throws -> [[String?]] {
        let filter = symbol.map { "WHERE symbol = \(StoreSchema.quote($0))" } ?? ""
        return try connection.query("""
            SELECT DISTINCT ON (symbol) \(Self.positionColumns.joined(separator: ", ")) FROM positions \(filter)
            ORDER BY symbol, time DESC, time_ns DESC, (order_id = 0) DESC, order_id DESC, fill_number DESC
            """)
    }

    /// The latest equity row of each symbol (or of `symbol`). Rows: `equityColumns`, by symbol.
    public func latestEquity(symbol: String?) throws -> [[String?]] {
        let filter = symbol.map { "WHERE symbol = \(StoreSchema.quote($0))" } ?? ""
        return try connection.query("""
            SELECT DISTINCT ON (symbol) \(Self.equityColumns.joined(separator: ", ")) FROM equity \(filter)
            ORDER BY symbol, time DESC, time_ns DESC
            """)
    }

    /// Runs and live sessions (`tape_runs`), newest start first, optionally of one kind (`replay`, `live`,
    /// `work`), started before `before` (keyset on started_at, run_id). Rows: run_id, kind, started_ns,
    /// finished_ns, config_hash, tape_version, inputs (JSON), first_event_ns, last_event_ns, has_summary.
    public func runs(kind: String?, before: (startedNanoseconds: Nanos, runID: String)?, limit: Int) throws -> [[String?]] {
        var conditions = ["true"]
        if let kind { conditions.append("kind = \(StoreSchema.quote(kind))") }
        if let before {
            conditions.append("(\(Self.nanos("started_at")), run_id) < (\(before.startedNanoseconds), \(StoreSchema.quote(before.runID)))")
        }
        return try connection.query("""
            SELECT run_id, kind, \(Self.nanos("started_at")), \(Self.nanos("finished_at")), config_hash, tape_version,
                   inputs::text, first_event_ns, last_event_ns, summary IS NOT NULL
            FROM tape_runs WHERE \(conditions.joined(separator: " AND "))
            ORDER BY started_at DESC, run_id DESC LIMIT \(max(1, min(limit, 100_000)))
            """)
    }

    /// One run with its summary (JSON text, nil while it runs). Row as `runs` plus summary.
    public func run(id: String) throws -> [String?]? {
        try connection.query("""
            SELECT run_id, kind, \(Self.nanos("started_at")), \(Self.nanos("finished_at")), config_hash, tape_version,
                   inputs::text, first_event_ns, last_event_ns, summary IS NOT NULL, summary::text
            FROM tape_runs WHERE run_id = \(StoreSchema.quote(id))
            """).first
    }
}
