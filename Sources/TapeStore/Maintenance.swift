import TapeCore

/// `tape store maintain`: premakes partitions and applies the retention (see `StorePartitions` for why
/// the reference is the newest data, not the wall clock). Also run by every `PostgresSink` when it
/// connects and then hourly.
public enum StoreMaintenance {
    public static let retentionDaysDefault = 365

    public struct Report: Sendable, Equatable {
        /// The instant retention counted back from (ns), nil when the store holds no run yet.
        public var reference: Nanos?
        /// Partitions (or chunks) dropped, per table.
        public var dropped: [String: Int] = [:]
    }

    /// `reference`: nil = the newest event time any run wrote (`tape_runs.last_event_ns`).
    @discardableResult
    public static func run(_ connection: PostgresConnection, retentionDays: Int = retentionDaysDefault,
                           reference: Nanos? = nil) throws -> Report {
        precondition(retentionDays > 0, "retention must be positive")
        let mode = try StorePartitions.mode(connection)
        var report = Report()
        if let reference { report.reference = reference } else {
            report.reference = try connection.query("SELECT max(last_event_ns) FROM tape_runs").first?[0].flatMap { Int64($0) }
        }
        if mode == .partman {
            try connection.execute("SELECT partman.run_maintenance(p_analyze => false, p_jobmon => false)")
        }
        guard let at = report.reference else { return report }
        let referenceSQL = "to_timestamp(\(Double(at) / 1e9))"
        try connection.execute(
            "DELETE FROM tick_ranges WHERE last_time < \(referenceSQL) - interval '\(retentionDays) days'")
        for table in StoreSchema.timeSeriesTables {
            switch mode {
            case .partman:
                let answer = try connection.query("""
                    SELECT partman.drop_partition_time('public.\(table)', interval '\(retentionDays) days',
                        p_keep_table => false, p_reference_timestamp => \(referenceSQL))
                    """)
                report.dropped[table] = answer.first?[0].flatMap { Int($0) } ?? 0
            case .timescale:
                let answer = try connection.query("""
                    SELECT count(*) FROM drop_chunks('\(table)', older_than => \(referenceSQL) - interval '\(retentionDays) days')
                    """)
                report.dropped[table] = answer.first?[0].flatMap { Int($0) } ?? 0
            }
        }
        return report
    }
}
