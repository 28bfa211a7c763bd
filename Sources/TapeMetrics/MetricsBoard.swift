import Foundation
import TapeCore

/// Gets every sample's points from a `MetricsSink`, besides or instead of InfluxDB.
///
/// ```swift
/// let board = MetricsBoard()
/// let metrics = MetricsSink(writer: nil, consumers: [board], symbols: symbols)
/// let latest = board.snapshot()          // any thread: the newest value of every series
/// ```
///
/// `consume` runs on the engine thread, once per sample: it must be quick and must never wait on a reader.
public protocol MetricPointConsumer: AnyObject, Sendable {
    func consume(_ points: [MetricPoint])
}

/// The newest value of every metric series (measurement + tags), for a scrape: what `--metrics-listen`
/// serves as Prometheus text (TapeServe's `PipelineMetricsExporter`). InfluxDB keeps every point; a scrape
/// only wants the current values, so the board merges each sample into one map (a series that went quiet
/// keeps its last value) and publishes it as an immutable snapshot.
///
/// Contract:
/// - `consume` (the engine thread of each sink feeding the board; several sinks may feed one board, as
///   `tape work`'s partitions do) merges under `lock` and publishes the merged map by assignment. A reader
///   (`snapshot()`) holds the same lock only to copy that reference: neither side waits on the other's
///   work — the engine never waits on a scrape's rendering, a scrape never waits on sampling beyond one merge.
/// - At most `seriesMax` series: points of further series are dropped and counted (`seriesDropped`),
///   so a provider with an unbounded tag cannot grow memory without bound.
/// - Points' times are ignored (a scrape is "now"); string fields are kept (a reader may skip them).
public final class MetricsBoard: MetricPointConsumer, @unchecked Sendable {
    /// One series: a measurement and its tags, sorted by key (the order of tags does not make another series).
    public struct Series: Hashable, Sendable {
        public let measurement: String
        public let tags: [MetricTag]
        public init(measurement: String, tags: [MetricTag]) {
            self.measurement = measurement
            self.tags = tags.sorted { $0.key < $1.key }
        }
    }

    /// The board at one instant.
    public struct Snapshot: Sendable {
        /// Field name → newest value, per series.
        public let values: [Series: [String: MetricValue]]
        /// Samples merged so far (all feeding sinks together).
        public let samples: Int
        /// Points dropped because `seriesMax` series were already held.
        public let seriesDropped: Int
    }

    /// The default limit on series held.
    public static let seriesMaxDefault = 10_000
    public let seriesMax: Int

    private let lock = NSLock()
    // Guarded by `lock`.
    private var merged: [Series: [String: MetricValue]] = [:]
    private var published = Snapshot(values: [:], samples: 0, seriesDropped: 0)
    private var samples = 0
    private var seriesDropped = 0

    public init(seriesMax: Int = MetricsBoard.seriesMaxDefault) {
        precondition(seriesMax > 0, "a board holds at least one series")
        self.seriesMax = seriesMax
    }

    public func consume(_ points: [MetricPoint]) {
        lock.lock()
        defer { lock.unlock() }
        for point in points {
            let series = Series(measurement: point.measurement, tags: point.tags)
            if merged[series] == nil && merged.count >= seriesMax {
                seriesDropped += 1
                continue
            }
            var fields = merged[series] ?? [:]
            for field in point.fields { fields[field.key] = field.value }
            merged[series] = fields
        }
        samples += 1
        published = Snapshot(values: merged, samples: samples, seriesDropped: seriesDropped)
        assert(merged.count <= seriesMax, "the board holds at most seriesMax series")
    }

    /// The newest values (any thread; O(1) under the lock).
    public func snapshot() -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return published
    }
}
