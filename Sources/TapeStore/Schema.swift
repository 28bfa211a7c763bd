/// Tape's PostgreSQL schema, as versioned migrations applied in order on start (`StoreSchema.migrate`).
///
/// A migration is never edited once released: a change is a new migration with the next version. The
/// pending ones run in one transaction under an advisory lock (two processes starting at once apply
/// them once), and `tape_schema_migrations` records which ran. They live in Swift source, not loose `.sql` files,
/// so the `tape` binary carries its schema wherever it is copied. docs/storage.md documents the tables.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
}

public enum StoreSchema {
    /// The tables that hold time series: partitioned by day on `time`, kept 365 days (`StoreMaintenance`).
    public static let timeSeriesTables = ["ticks", "bars", "indicators", "anomalies", "predictions",
                                          "orders", "fills", "positions", "equity"]

    public static let migrations: [Migration] = [
        Migration(version: 1, name: "runs, ticks, bars, indicators, anomalies, predictions", sql: """
        CREATE TABLE tape_runs (
            run_id        text PRIMARY KEY,
            kind          text NOT NULL,              -- replay | live | work
            started_at    timestamptz NOT NULL,       -- wall clock at start
            finished_at   timestamptz,
            config_hash   text NOT NULL,              -- sha256 of the canonical graph config
            tape_version  text NOT NULL,
            inputs        jsonb NOT NULL,             -- paths (and sha256 when hashed) or feeds
            first_event_ns bigint,                    -- event-time range the run wrote
            last_event_ns  bigint,
            summary       jsonb                       -- summary.json of the run, when it finished
        );

        -- Market events as delivered to the graph. kind: 0 trade, 1 quote, 2 bar (a bar-file row).
        -- No unique index (it would halve the COPY rate): a repeated write is made harmless by
        -- tick_ranges below. Reads by time use the partitions and the BRIN index.
        CREATE TABLE ticks (
            time        timestamptz NOT NULL,         -- event time, to the microsecond (partition key)
            time_ns     bigint NOT NULL,              -- event time, ns since the Unix epoch (exact)
            receive_ns  bigint NOT NULL,              -- receive stamp, ns
            symbol      text NOT NULL,                -- venue:SYMBOL
            kind        smallint NOT NULL,
            sequence    bigint NOT NULL,              -- trade id / update id / line number
            price       double precision,             -- trade price, bar close
            size        double precision,             -- trade size, bar volume
            side        smallint,                     -- 0 unknown, 1 buy, 2 sell
            bid         double precision,
            bid_size    double precision,
            ask         double precision,
            ask_size    double precision,
            open        double precision,             -- bars only
            high        double precision,
            low         double precision
            -- The run that wrote a tick is in tick_ranges (per batch and symbol), not on every row:
            -- a year of ticks is billions of rows.
        ) PARTITION BY RANGE (time);
        CREATE INDEX ticks_time ON ticks USING brin (time);

        -- What each write of ticks covered: per symbol, the receive-time range of one batch. A batch
        -- whose range overlaps a stored one first deletes that symbol's rows in the range (the same
        -- input written again gives the same rows: nothing is duplicated; the last writer of a range wins).
        CREATE TABLE tick_ranges (
            symbol           text NOT NULL,
            first_receive_ns bigint NOT NULL,
            last_receive_ns  bigint NOT NULL,
            first_time       timestamptz NOT NULL,    -- event-time bounds of the rows (for partition pruning)
            last_time        timestamptz NOT NULL,
            rows             bigint NOT NULL,
            run_id           text NOT NULL
        );
        CREATE INDEX tick_ranges_symbol ON tick_ranges (symbol, first_receive_ns);

        -- Graph outputs. Keys hold the config hash: the same input under another config is another result.
        CREATE TABLE bars (
            time        timestamptz NOT NULL,         -- bar start (partition key)
            end_time    timestamptz NOT NULL,
            symbol      text NOT NULL,
            timeframe   text NOT NULL,                -- 1m, 5m, 15m, 1h, 30s
            open double precision, high double precision, low double precision, close double precision,
            volume      double precision,             -- NULL when the input has none
            vwap        double precision,
            trades      bigint NOT NULL,
            config_hash text NOT NULL,
            run_id      text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX bars_key ON bars (symbol, timeframe, time, config_hash);

        CREATE TABLE indicators (
            time        timestamptz NOT NULL,         -- bar end (partition key)
            symbol      text NOT NULL,
            timeframe   text NOT NULL,
            sma double precision, ema double precision, rsi double precision,
            macd double precision, macd_signal double precision, macd_hist double precision,
            bb_middle double precision, bb_upper double precision, bb_lower double precision,
            session_vwap double precision,            -- NULL while in lookback
            config_hash text NOT NULL,
            run_id      text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX indicators_key ON indicators (symbol, timeframe, time, config_hash);

        CREATE TABLE anomalies (
            time        timestamptz NOT NULL,         -- partition key
            time_ns     bigint NOT NULL,              -- exact
            symbol      text NOT NULL,
            rule        text NOT NULL,
            value       double precision,
            threshold   double precision,
            severity    text NOT NULL,                -- info | warning | critical
            config_hash text NOT NULL,
            run_id      text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX anomalies_key ON anomalies (symbol, time, time_ns, rule, config_hash);
        CREATE INDEX anomalies_rule ON anomalies (rule, time);

        CREATE TABLE predictions (
            time        timestamptz NOT NULL,         -- bar end (partition key)
            symbol      text NOT NULL,
            timeframe   text NOT NULL,
            prediction  double precision,
            config_hash text NOT NULL,
            run_id      text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX predictions_key ON predictions (symbol, timeframe, time, config_hash);
        """),
        // `tape work`: per consumer group, topic and partition, the next offset to read and the graph
        // checkpoint taken at it, committed in the transaction that writes the outputs before it
        // (exactly once). `epoch` fences a worker that lost the partition: each assignment bumps it,
        // and a commit under an older epoch changes nothing and fails (docs/kafka.md).
        Migration(version: 2, name: "worker checkpoints", sql: """
        CREATE TABLE tape_worker_checkpoints (
            consumer_group  text NOT NULL,
            topic           text NOT NULL,
            partition       int NOT NULL,
            epoch           bigint NOT NULL,
            next_offset     bigint,
            checkpoint      bytea,
            format_version  int,
            config_hash     text,
            worker          text,
            commits         bigint NOT NULL DEFAULT 0,
            committed_at    timestamptz,
            assigned_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer_group, topic, partition)
        );
        """),
        // The trading layer's rows (docs/backtesting.md): the run folder's orders.csv, fills.csv, positions.csv
        // and the per-symbol rows of equity.csv. Keys are what makes a row the same row when it is written
        // again (a repeated replay, a `tape work` partition re-processed from its checkpoint): the symbol, the
        // time (a new session numbers its orders from 1 again, at later times) and the row's place in its
        // order; with the config hash, as every output. The account's total equity rows are not stored: each
        // `tape work` member has an account of its own (docs/storage.md, "Trading").
        Migration(version: 3, name: "orders, fills, positions, equity", sql: """
        CREATE TABLE orders (
            time            timestamptz NOT NULL,   -- the change (partition key)
            time_ns         bigint NOT NULL,        -- exact
            symbol          text NOT NULL,
            order_id        bigint NOT NULL,        -- the order's number among its symbol's orders in its session
            sequence        bigint NOT NULL,        -- the change's number within the order (1 submitted, 2 …)
            side            text NOT NULL,          -- buy | sell
            type            text NOT NULL,          -- market | limit | stop
            tif             text NOT NULL,          -- gtc | ioc | day
            quantity        double precision,
            limit_price     double precision,       -- NULL when none (NaN)
            stop_price      double precision,
            status          text NOT NULL,          -- submitted accepted partially_filled filled canceled replaced expired rejected
            filled_quantity double precision,
            tag             text NOT NULL,          -- the strategy's name unless it set a tag
            reason          text NOT NULL,
            config_hash     text NOT NULL,
            run_id          text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX orders_key ON orders (symbol, time, time_ns, order_id, sequence, config_hash);
        CREATE INDEX orders_time ON orders (time);

        CREATE TABLE fills (
            time            timestamptz NOT NULL,   -- partition key
            time_ns         bigint NOT NULL,
            symbol          text NOT NULL,
            order_id        bigint NOT NULL,
            fill_number     bigint NOT NULL,        -- the fill's number within its order (1, 2 …)
            side            text NOT NULL,
            price           double precision,
            quantity        double precision,
            fee             double precision,
            rule            text NOT NULL,          -- quote | trade | bar_open | bar_range
            arrival_ns      bigint NOT NULL,        -- when the order reached the venue
            tag             text NOT NULL,
            config_hash     text NOT NULL,
            run_id          text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX fills_key ON fills (symbol, time, time_ns, order_id, fill_number, config_hash);
        CREATE INDEX fills_time ON fills (time);

        CREATE TABLE positions (
            time            timestamptz NOT NULL,   -- partition key
            time_ns         bigint NOT NULL,
            symbol          text NOT NULL,
            order_id        bigint NOT NULL,        -- the fill this row follows; 0 and 0 at a mark
            fill_number     bigint NOT NULL,
            quantity        double precision,       -- signed
            average_price   double precision,       -- NULL when flat
            realized_pnl    double precision,
            unrealized_pnl  double precision,
            fees            double precision,
            mark_price      double precision,
            config_hash     text NOT NULL,
            run_id          text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX positions_key ON positions (symbol, time, time_ns, order_id, fill_number, config_hash);

        CREATE TABLE equity (
            time            timestamptz NOT NULL,   -- the mark (partition key)
            time_ns         bigint NOT NULL,
            symbol          text NOT NULL,
            cash            double precision,       -- the symbol's cash flow: proceeds - costs - fees
            equity          double precision,       -- cash flow + quantity x mark: the symbol's contribution
            gross_exposure  double precision,
            config_hash     text NOT NULL,
            run_id          text NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE UNIQUE INDEX equity_key ON equity (symbol, time, time_ns, config_hash);
        """),
    ]

    /// Applies the migrations this database has not seen, in version order, each in a transaction, under
    /// an advisory lock; then sets up partitioning (`StorePartitions.setUp`). Returns the versions applied.
    @discardableResult
    public static func migrate(_ connection: PostgresConnection) throws -> [Int] {
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS tape_schema_migrations (
                version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """)
        var applied: [Int] = []
        try connection.transaction {
            try connection.execute("SELECT pg_advisory_xact_lock(7341201)")
            let partitioning = try StorePartitions.mode(connection)
            let done = Set(try connection.query("SELECT version FROM tape_schema_migrations").compactMap { $0[0].flatMap(Int.init) })
            for migration in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(migration.version) {
                try connection.execute(partitioning == .timescale
                    ? migration.sql.replacingOccurrences(of: " PARTITION BY RANGE (time)", with: "") : migration.sql)
                try connection.execute("INSERT INTO tape_schema_migrations (version, name) VALUES (\(migration.version), \(quote(migration.name)))")
                applied.append(migration.version)
            }
            // Under the same lock: workers starting together on a new database set partitioning up once.
            try StorePartitions.setUp(connection)
        }
        return applied
    }

    /// A `timestamptz` SQL expression for a Unix time in ns (to the microsecond, as stored).
    public static func timestamp(_ nanos: Int64) -> String {
        let micros = nanos >= 0 ? nanos / 1000 : (nanos - 999) / 1000
        return "(timestamptz 'epoch' + interval '\(micros) microseconds')"
    }

    /// A `bytea` SQL literal (hex).
    public static func bytea(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = Array("'\\x".utf8)
        out.reserveCapacity(bytes.count * 2 + 16)
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        out.append(contentsOf: Array("'::bytea".utf8))
        return String(decoding: out, as: UTF8.self)
    }

    /// A SQL string literal.
    public static func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
