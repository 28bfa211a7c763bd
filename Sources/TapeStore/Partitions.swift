/// Time partitioning and retention of the time-series tables (`StoreSchema.timeSeriesTables`).
///
/// **pg_partman** (Debian's `postgresql-15-partman`, the tested path): native range partitions of one
/// UTC day on `time`, 4 premade ahead of the newest day, and a default partition. Data arrives for any
/// day (a replay of 2021 history), so before a batch is written the store creates the partitions of its
/// days (`ensureDays`, pg_partman's `create_partition_time`); rows never land in the default partition.
///
/// **Retention** keeps 365 days *before the newest data stored* (`StoreMaintenance.run`): pg_partman's
/// `drop_partition_time` with its reference timestamp set to the newest event time any run wrote
/// (`tape_runs.last_event_ns`), or `--now`. Not the wall clock: a research database loaded with last
/// year's history must not empty itself, and in production the newest data is "now" anyway.
/// pg_partman's own `retention` setting stays NULL for the same reason (its background worker and
/// `run_maintenance` would drop by wall clock).
///
/// **TimescaleDB**, where its extension is installed (not in Debian; detected, not tested here): plain
/// tables become hypertables with one-day chunks, and retention is `drop_chunks` older than 365 days
/// before the same reference.
public enum StorePartitions {
    public enum Mode: String, Sendable { case partman, timescale }

    /// TimescaleDB when the server offers it, else pg_partman.
    public static func mode(_ connection: PostgresConnection) throws -> Mode {
        let available = try connection.query("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
        return available.first?[0] == "1" ? .timescale : .partman
    }

    /// Days premade ahead of the newest partition.
    public static let premakeDays = 4

    static func setUp(_ connection: PostgresConnection) throws {
        switch try mode(connection) {
        case .timescale:
            try connection.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for table in StoreSchema.timeSeriesTables {
                try connection.execute("""
                    SELECT create_hypertable('\(table)', 'time', chunk_time_interval => interval '1 day', if_not_exists => true)
                    """)
            }
        case .partman:
            try connection.execute("CREATE SCHEMA IF NOT EXISTS partman; CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
            let configured = Set(try connection.query("SELECT parent_table FROM partman.part_config").compactMap { $0[0] })
            for table in StoreSchema.timeSeriesTables where !configured.contains("public.\(table)") {
                try connection.execute("""
                    SELECT partman.create_parent(p_parent_table => 'public.\(table)', p_control => 'time',
                        p_type => 'native', p_interval => 'daily', p_premake => \(premakeDays));
                    UPDATE partman.part_config SET retention = NULL, infinite_time_partitions = true
                        WHERE parent_table = 'public.\(table)';
                    """)
            }
        }
    }

    /// Makes sure a partition exists for each UTC day (days since the Unix epoch) in every time-series
    /// table. Idempotent; a no-op under TimescaleDB (chunks are made on insert).
    public static func ensureDays(_ connection: PostgresConnection, days: [Int64], mode: Mode) throws {
        guard mode == .partman, !days.isEmpty else { return }
        let list = days.sorted().map { "to_timestamp(\($0 * 86_400))" }.joined(separator: ", ")
        // One writer at a time (several workers, or a replay beside a live session, may meet the same
        // new day): pg_partman checks, then creates, and two at once would both create.
        try connection.transaction {
            try connection.execute("SELECT pg_advisory_xact_lock(7341202)")
            for table in StoreSchema.timeSeriesTables {
                try connection.execute("SELECT partman.create_partition_time('public.\(table)', ARRAY[\(list)], p_analyze => false)")
            }
        }
    }

    /// The day partitions of `table` (pg_partman), as `YYYY-MM-DD` in order (the default partition excluded).
    public static func dayPartitions(_ connection: PostgresConnection, table: String) throws -> [String] {
        try connection.query("""
            SELECT to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM (
                SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lower_bound
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'public.\(table)'::regclass AND NOT c.relispartition IS FALSE
                  AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT') parts
            ORDER BY 1
            """).compactMap { $0[0] }
    }
}
