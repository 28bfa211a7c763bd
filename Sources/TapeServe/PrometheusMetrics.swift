import Foundation
import Prometheus
import TapeMetrics

/// `tape serve`'s own metrics, in a `PrometheusCollectorRegistry` passed in (no global `MetricsSystem`):
/// the names are fixed, the Grafana dashboard queries exactly these (docs/serving.md).
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// let metrics = ServeMetrics(registry: registry)
/// metrics.request(route: "/api/v1/bars/{symbol}", method: "GET", status: 200, nanoseconds: 812_000)
/// let text = registry.emitToString()       // GET /metrics
/// ```
public final class ServeMetrics: Sendable {
    public static let requestsName = "tape_http_requests_total"
    public static let durationName = "tape_http_request_duration_seconds"
    public static let webSocketClientsName = "tape_ws_clients"
    public static let cacheRequestsName = "tape_cache_requests_total"
    /// Request duration buckets (seconds): 0.5 ms to 10 s.
    public static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public let registry: PrometheusCollectorRegistry
    /// WebSocket clients connected (0 until the WebSocket server exists).
    public let webSocketClients: Gauge
    /// WebSocket clients closed as too slow (code 4008).
    public let webSocketDropped: Counter
    public let cacheHits: Counter
    public let cacheMisses: Counter

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        webSocketClients = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tape_ws_clients", unitName: "", helpText: "WebSocket clients connected"))
        webSocketDropped = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "tape_ws_clients_dropped", unitName: "total", helpText: "WebSocket clients closed as too slow"))
        let cache = MetricNameDescriptor(metricName: "tape_cache_requests", unitName: "total",
                                         helpText: "Redis read-through lookups by result")
        cacheHits = registry.makeCounter(descriptor: cache, labels: [("result", "hit")])
        cacheMisses = registry.makeCounter(descriptor: cache, labels: [("result", "miss")])
        assert(cache.name == Self.cacheRequestsName, "the fixed metric names")
    }

    /// One answered request. `route` is the matched route as in the OpenAPI spec (`/api/v1/bars/{symbol}`),
    /// `unmatched` for a path no route serves (so a scan of random paths adds one series, not one per path).
    public func request(route: String, method: String, status: Int, nanoseconds: Int64) {
        registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tape_http_requests", unitName: "total",
                                                              helpText: "HTTP requests answered"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: MetricNameDescriptor(metricName: "tape_http_request_duration",
                                                                        unitName: "seconds",
                                                                        helpText: "HTTP request duration"),
                                       labels: [("route", route)], buckets: Self.durationBuckets)
            .recordNanoseconds(max(0, nanoseconds))
    }

    public func cache(hits: Int, misses: Int) {
        if hits > 0 { cacheHits.increment(by: Int64(hits)) }
        if misses > 0 { cacheMisses.increment(by: Int64(misses)) }
    }
}

/// The Prometheus exposition of the pipeline's metric points (`tape live`/`ingest`/`work --metrics-listen`):
/// the newest values of a `MetricsBoard` written into a registry at each scrape.
///
/// Names: `<measurement>_<field>`, every character outside `[a-zA-Z0-9_]` replaced by `_` (a leading digit
/// gets a `_` in front); labels: the point's tags (names sanitized the same way). A field named `total`
/// or ending in `_total` is a counter (a count since the start: `tape_feed_ticks_total{feed}`,
/// `tape_pipeline_ticks_total`); every other number is a gauge (`tape_pipeline_lag_ns`,
/// `tape_work_lag{group,partition,topic}`); booleans are gauges of 0 or 1; strings are left out.
///
/// Scrapes are serialized (`lock`) and do all the work: the engine thread only merges into the board.
/// A series whose name is already used with another type, or with labels where it had none (or the
/// reverse), is left out and counted in `tape_metrics_bridge_conflicts_total` (the registry cannot hold both).
public final class PipelineMetricsExporter: @unchecked Sendable {
    public let board: MetricsBoard
    public let registry: PrometheusCollectorRegistry

    private enum Kind: Equatable {
        case counter, gauge
    }

    private let lock = NSLock()
    // Guarded by `lock`.
    private var families: [String: (kind: Kind, labeled: Bool)] = [:]
    private var counterValues: [String: Double] = [:]
    private let conflicts: Counter
    private let samples: Gauge
    private let seriesDropped: Gauge

    public init(board: MetricsBoard, registry: PrometheusCollectorRegistry) {
        self.board = board
        self.registry = registry
        conflicts = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "tape_metrics_bridge_conflicts", unitName: "total",
            helpText: "Metric points left out: a name used with another type or label set"))
        samples = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tape_metrics_bridge_samples", unitName: "", helpText: "Samples merged into the board"))
        seriesDropped = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tape_metrics_bridge_series_dropped", unitName: "",
            helpText: "Points dropped: the board held its maximum of series"))
    }

    /// `<measurement>_<field>` with every character outside `[a-zA-Z0-9_]` replaced by `_`.
    public static func name(measurement: String, field: String) -> String {
        sanitized(measurement + "_" + field)
    }

    static func sanitized(_ text: String) -> String {
        var name = String(text.unicodeScalars.map { scalar -> Character in
            let isWord = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                || (scalar >= "0" && scalar <= "9") || scalar == "_"
            return isWord ? Character(scalar) : "_"
        })
        if name.isEmpty || name.first!.isNumber { name = "_" + name }
        return name
    }

    /// Whether a field is a count since the start (a Prometheus counter).
    public static func isCounter(field: String) -> Bool { field == "total" || field.hasSuffix("_total") }

    /// Writes the board's newest values into the registry and returns the whole exposition.
    public func render() -> String {
        let snapshot = board.snapshot()
        lock.lock()
        defer { lock.unlock() }
        samples.set(Int64(snapshot.samples))
        seriesDropped.set(Int64(snapshot.seriesDropped))
        for (series, fields) in snapshot.values {
            let labels = series.tags.map { (Self.sanitized($0.key), $0.value) }
            for (field, value) in fields {
                let number: Double
                switch value {
                case .integer(let integer): number = Double(integer)
                case .float(let float): number = float
                case .boolean(let flag): number = flag ? 1 : 0
                case .string: continue
                }
                guard number.isFinite else { continue }
                let name = Self.name(measurement: series.measurement, field: field)
                let kind: Kind = Self.isCounter(field: field) && number >= 0 ? .counter : .gauge
                if let family = families[name] {
                    guard family.kind == kind, family.labeled == !labels.isEmpty else {
                        conflicts.increment()
                        continue
                    }
                } else {
                    families[name] = (kind, !labels.isEmpty)
                }
                let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: "")
                switch kind {
                case .gauge:
                    let gauge = labels.isEmpty ? registry.makeGauge(descriptor: descriptor)
                        : registry.makeGauge(descriptor: descriptor, labels: labels)
                    gauge.set(number)
                case .counter:
                    let counter = labels.isEmpty ? registry.makeCounter(descriptor: descriptor)
                        : registry.makeCounter(descriptor: descriptor, labels: labels)
                    let key = name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
                    let previous = counterValues[key] ?? 0
                    let integral = number == number.rounded() && number < 1e15
                    if number < previous {
                        // A count that went back (another run feeding the same series): start over.
                        counter.reset()
                        if integral { counter.increment(by: Int64(number)) } else { counter.increment(by: number) }
                    } else if number > previous {
                        if integral && previous == previous.rounded() {
                            counter.increment(by: Int64(number - previous))
                        } else {
                            counter.increment(by: number - previous)
                        }
                    }
                    counterValues[key] = number
                }
            }
        }
        return registry.emitToString()
    }
}
