import ArgumentParser
import Foundation
import TapeCore
import TapeGraph
import TapeSinks
import TapeEngine
import TapeStore
import TapeMetrics
import TapeRedis
import TapeAlerts
import TapeServe
import TapeReplay
import TapeKafkaBus
import TapeLogging

/// `--store URL` (repeatable) on `tape replay` and `tape live`: the stores every output also goes to.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("store"),
            help: "Also write to this store (repeatable): postgres://user@host:port/db (ticks and every output), redis://host:port[/db] (latest state), influx://host:port/db (metrics).")
    var stores: [String] = []

    @Option(help: "Where a store keeps batches while its server is away (default <run folder>/spool).")
    var storeSpool: String?

    @Option(help: "Seconds a store keeps retrying an unreachable server at the end of a run before it fails (exit 5), its spool kept.")
    var storeCloseTimeout: Double = 60

    @Option(help: "How often at most a redis:// store hands the latest trade and quote of a busy symbol to Redis and publishes them to `tape serve`'s WebSocket clients (e.g. 1ms, 2ms, 5ms, 50ms; default 2ms): the conflation interval, and the longest an update waits (docs/storage-redis.md).")
    var redisPublishInterval: String?

    @Option(help: "Send anomalies and pipeline faults to Slack and email as this file says (YAML, e.g. config/alerts.yaml; docs/alerts.md).")
    var alerts: String?

    /// One factory per `--store` (plus the live config's `stores`), and the alerts' (`--alerts`), checked
    /// here so that a bad URL or alerts file is a usage error before anything starts.
    /// `registry` is shared with the run's other parts that the alerts watch (`tape ingest`'s Kafka producer).
    func factories(extra: [String] = [], board: MetricsBoard? = nil, registry: StoreRegistry = StoreRegistry())
        throws -> [(RunContext) throws -> EngineSink] {
        let service = try AlertFile.service(path: alerts)
        var redisInterval: Int64? = nil
        if let text = redisPublishInterval {
            guard let nanos = TapeGraph.parseDuration(text), nanos >= 0, nanos <= 10_000_000_000 else {
                throw ValidationError("--redis-publish-interval: expected a duration from 0 to 10s (e.g. 5ms), got '\(text)'")
            }
            redisInterval = nanos
        }
        return try Self.factories(urls: extra + stores, spool: storeSpool, closeTimeout: storeCloseTimeout,
                                  alerts: service.map { ($0, true) }, board: board, registry: registry,
                                  redisInterval: redisInterval)
    }

    /// One factory per store URL (`--store`, the live config's `stores`, `tape work`'s other stores), then
    /// the alerts' sink when `alerts` is given (`closesService`: one run per process). The alerts watch
    /// the stores' outages and the Kafka producer's (`registry.kafka`, set by `BusOptions.factory`), and
    /// their counters go to the metrics store. With a `board` (`--metrics-listen`), the metrics sink also
    /// hands its points to it; without an influx:// store a metrics sink without InfluxDB is added for it.
    static func factories(urls: [String], spool: String?, closeTimeout: Double,
                          alerts: (service: AlertService, closesService: Bool)? = nil,
                          board: MetricsBoard? = nil, registry: StoreRegistry = StoreRegistry(),
                          redisInterval: Int64? = nil) throws -> [(RunContext) throws -> EngineSink] {
        guard closeTimeout >= 0, closeTimeout <= 86_400 else {
            throw ValidationError("--store-close-timeout: expected 0 ... 86400 seconds")
        }
        // `registry`: the stores of one run, for the metrics' providers (store write rates) and the alerts.
        var factories = try storeFactories(urls: urls, spool: spool, closeTimeout: closeTimeout, registry: registry,
                                           alerts: alerts?.service, board: board, redisInterval: redisInterval)
        if let alerts {
            factories.append(AlertSink.factory(service: alerts.service, closesService: alerts.closesService) { sink, _ in
                sink.watch(rule: PipelineFault.storeOutage, subject: "postgres", severity: .critical,
                           detail: "PostgreSQL away: batches spooled, written back on reconnect") {
                    registry.postgres?.counters.outages ?? 0
                }
                sink.watch(rule: PipelineFault.storeOutage, subject: "redis", severity: .warning,
                           detail: "Redis away: latest state held in memory, written on reconnect") {
                    registry.redis?.counters.outages ?? 0
                }
                sink.watch(rule: PipelineFault.busOutage, subject: "kafka", severity: .critical,
                           detail: "Kafka away: records wait in the producer's queue and are resent; "
                               + "the workers get nothing meanwhile") {
                    registry.kafka?.brokerOutages ?? 0
                }
            })
        }
        return factories
    }

    private static func storeFactories(urls: [String], spool: String?, closeTimeout: Double, registry: StoreRegistry,
                                       alerts: AlertService?, board: MetricsBoard?, redisInterval: Int64?)
        throws -> [(RunContext) throws -> EngineSink] {
        let consumers: [any MetricPointConsumer] = board.map { [$0] } ?? []
        let hasInflux = urls.contains { ["influx", "influxs", "http", "https"].contains(StoreURL.scheme(of: $0)) }
        var extra: [(RunContext) throws -> EngineSink] = []
        if let board, !hasInflux {
            extra.append { context in
                // `tape work` runs one sink per partition into the one board: its input (`kafka:topic[n]`)
                // keeps their series apart.
                var tags = [MetricTag("mode", context.kind)]
                if context.kind == "work", let input = context.inputs.first { tags.append(MetricTag("input", input)) }
                let sink = MetricsSink(writer: nil, consumers: [board], symbols: context.symbols, tags: tags)
                sink.addProvider { registry.points() }
                if let alerts { sink.addProvider { alerts.metricPoints() } }
                return sink
            }
        }
        return try urls.map { url -> (RunContext) throws -> EngineSink in
            switch StoreURL.scheme(of: url) {
            case "redis":
                do { _ = try RedisEndpoint(url: url) } catch {
                    throw ValidationError("--store '\(StoreURL.redacted(url))': \(error)")
                }
                return { context in
                    var options = RedisSinkOptions()
                    // A live session starts even while its cache is away (it fills in on reconnect); a
                    // replay asked to fill a cache it cannot reach stops at once (exit 5).
                    options.startWhenDown = context.kind == "live"
                    if let redisInterval { options.handoverIntervalNanoseconds = redisInterval }
                    let sink = try RedisSink(url: url, symbols: context.symbols, options: options,
                                             logger: Logger(label: "tape.store.redis"))
                    registry.redis = sink
                    registry.track(sink.dependency)
                    return sink
                }
            case "influx", "influxs", "http", "https":
                let make: (RunContext) throws -> EngineSink
                do { make = try MetricsSink.factory(url: url, consumers: consumers) } catch {
                    throw ValidationError("--store '\(StoreURL.redacted(url))': \(error)")
                }
                return { context in
                    let sink = try make(context)
                    if let writer = (sink as? MetricsSink)?.writer { registry.track(writer.dependency) }
                    (sink as? MetricsSink)?.addProvider { registry.points() }
                    if let alerts { (sink as? MetricsSink)?.addProvider { alerts.metricPoints() } }
                    return sink
                }
            case "postgres", "postgresql":
                return { context in
                    var settings = PostgresSinkSettings(
                        url: url, runID: context.runID, runKind: context.kind, configHash: context.configHash,
                        inputsJSON: StoreURL.jsonArray(context.inputs), tapeVersion: TapeEngine.tapeVersion,
                        spoolDirectory: (spool ?? "\(context.directory)/spool") + "/postgres")
                    settings.closeTimeoutSeconds = closeTimeout
                    let sink = try PostgresSink(settings: settings, symbols: context.symbols,
                                                logger: Logger(label: "tape.store.postgres"))
                    registry.postgres = sink
                    registry.track(sink.dependency)
                    return sink
                }
            default:
                throw ValidationError("--store '\(StoreURL.redacted(url))': expected postgres://…, redis://…, influx://…")
            }
        } + extra
    }
}

/// `--metrics-listen HOST:PORT` on `tape live`, `tape ingest` and `tape work`: the run's metric points (the
/// measurements of docs/storage-influx.md) served as Prometheus text at `/metrics` (docs/serving.md).
struct MetricsListenOptions: ParsableArguments {
    @Option(help: "Serve the pipeline's metrics as Prometheus text at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; port 0: any free one, printed).")
    var metricsListen: String?

    /// The board the metrics sinks feed, and its endpoint, when asked for; nil otherwise. `/ready` answers
    /// from `readiness` (what the run registers there: its stores, feeds, Kafka).
    func start(readiness: Readiness = Readiness()) throws -> (MetricsBoard, MetricsEndpoint)? {
        guard let metricsListen else { return nil }
        guard MetricsEndpoint.parse(listen: metricsListen) != nil else {
            throw ValidationError("--metrics-listen '\(metricsListen)': expected HOST:PORT")
        }
        let board = MetricsBoard()
        // The server's threads must not take SIGINT/SIGTERM: the run's PauseControl waits for them
        // (installed later, on this thread; threads started from here inherit the mask).
        PauseControl.blockSignals()
        do {
            let endpoint = try MetricsEndpoint.start(listen: metricsListen, board: board, readiness: readiness)
            tapeLogger.info("tape: metrics at http://\(endpoint.address)/metrics",
                            metadata: ["event": "metrics_listening", "address": .string(endpoint.address)])
            return (board, endpoint)
        } catch {
            fail("\(error)", code: TapeExit.unusableInput)
        }
    }
}

/// `--alerts FILE`: the alerts' config, read and checked once per process.
enum AlertFile {
    static func service(path: String?) throws -> AlertService? {
        guard let path else { return nil }
        let config: AlertConfig
        do { config = try AlertConfig.load(path: path) } catch { throw ValidationError("--alerts \(error)") }
        return AlertService(config: config, logger: Logger(label: "tape.alerts"))
    }
}

/// The stores a run built (and `tape ingest`'s Kafka producer), read by the metrics sink at each sample and
/// by the alerts' watches (on the engine thread).
final class StoreRegistry: @unchecked Sendable {
    var postgres: PostgresSink?
    var redis: RedisSink?
    var kafka: KafkaTickPublisher?
    /// Each store's (and the Kafka producer's) state as its writer sees it: `/ready` reads them off the
    /// engine thread.
    private let lock = NSLock()
    private var trackers: [DependencyTracker] = []

    /// Keeps `tracker` for `/ready`, in place of an earlier one of the same name (`tape work` makes a store
    /// per partition, all talking to the same server: the newest speaks for them).
    func track(_ tracker: DependencyTracker) {
        let name = tracker.current.name
        lock.withLock {
            trackers.removeAll { $0.current.name == name }
            trackers.append(tracker)
        }
    }

    var dependencies: [DependencyState] { lock.withLock { trackers.map(\.current) } }

    /// `tape_store` points: per store, rows or keys written, batches, outages, spooled batches, back-pressure.
    func points() -> [MetricPoint] {
        var points: [MetricPoint] = []
        if let redis {
            let counters = redis.counters
            points.append(MetricPoint(measurement: "tape_store", tags: [MetricTag("store", "redis")], fields: [
                MetricField("keys_written", .integer(Int64(counters.keysWritten))),
                MetricField("commands", .integer(Int64(counters.commands))),
                MetricField("outages", .integer(Int64(counters.outages))),
                MetricField("written_after_reconnect", .integer(Int64(counters.writtenAfterReconnect))),
            ], time: nil))
        }
        guard let postgres else { return points }
        let counters = postgres.counters
        return points + [MetricPoint(measurement: "tape_store", tags: [MetricTag("store", "postgres")], fields: [
            MetricField("rows_inserted", .integer(Int64(counters.rowsInserted))),
            MetricField("rows_already_stored", .integer(Int64(counters.rowsAlreadyStored))),
            MetricField("batches", .integer(Int64(counters.batches))),
            MetricField("outages", .integer(Int64(counters.outages))),
            MetricField("batches_spooled", .integer(Int64(counters.batchesSpooled))),
            MetricField("blocked_ns", .integer(counters.blockedNanoseconds)),
            MetricField("write_ns", .integer(counters.writeNanoseconds)),
        ], time: nil)]
    }
}

enum StoreURL {
    static func scheme(of url: String) -> String {
        guard let range = url.range(of: "://") else { return "" }
        return url[..<range.lowerBound].lowercased()
    }

    /// The URL without a password.
    static func redacted(_ url: String) -> String { urlWithoutPassword(url) }

    static func jsonArray(_ items: [String]) -> String {
        "[" + items.map { JSONValue.quote($0) }.joined(separator: ",") + "]"
    }
}

/// `tape store`: the PostgreSQL store's schema and partitions.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Manage the PostgreSQL store: apply migrations, run partition maintenance and retention.",
        subcommands: [StoreMigrateCommand.self, StoreMaintainCommand.self])
}

struct StoreMigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply the schema migrations this database has not seen.")

    @Option(name: .customLong("store"), help: "postgres://user@host:port/db")
    var store: String

    func run() throws {
        do {
            let connection = try PostgresConnection(url: store)
            let applied = try StoreSchema.migrate(connection)
            print(applied.isEmpty ? "store           \(connection.peer): schema up to date (version \(StoreSchema.migrations.map(\.version).max() ?? 0))"
                                  : "store           \(connection.peer): applied migrations \(applied.map(String.init).joined(separator: ", "))")
        } catch { fail("\(error)", code: TapeExit.outputFailed) }
    }
}

struct StoreMaintainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintain",
        abstract: "Premake partitions and drop those older than the retention (pg_partman; TimescaleDB where installed).",
        discussion: """
            Retention counts back from the newest event time any run stored (not the wall clock: a \
            database of last year's history keeps it), or from --now. Run it from cron or a systemd \
            timer; a live session also runs it every hour.
            """)

    @Option(name: .customLong("store"), help: "postgres://user@host:port/db")
    var store: String

    @Option(help: "Days kept before the reference time.")
    var retentionDays: Int = StoreMaintenance.retentionDaysDefault

    @Option(help: "Reference time (ISO-8601 UTC or integer ns) instead of the newest stored event.")
    var now: String?

    func run() throws {
        guard retentionDays > 0, retentionDays <= 100_000 else { throw ValidationError("--retention-days: expected 1 ... 100000") }
        var reference: Nanos? = nil
        if let now {
            guard let time = TimeUtil.parseUserTime(now) else { throw ValidationError("--now '\(now)': expected ISO-8601 UTC or integer ns") }
            reference = time
        }
        do {
            let connection = try PostgresConnection(url: store)
            try StoreSchema.migrate(connection)
            let report = try StoreMaintenance.run(connection, retentionDays: retentionDays, reference: reference)
            let at = report.reference.map { TimeUtil.iso($0) } ?? "(no data stored yet)"
            let dropped = report.dropped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("store           \(connection.peer): retention \(retentionDays) days before \(at)")
            print("dropped         \(dropped.isEmpty ? "nothing" : dropped)")
        } catch { fail("\(error)", code: TapeExit.outputFailed) }
    }
}
