import TapeCore
import TapeClock
import TapeGraph
import TapeSinks
import TapeLogging

/// Operational metrics of a run (replay or live), counted on the engine thread and written to InfluxDB
/// through an `InfluxWriter` and/or handed to `MetricPointConsumer`s (a `MetricsBoard` that
/// `--metrics-listen` serves as Prometheus text): ticks per feed and per symbol, outputs per kind, pipeline
/// lag, the writer's own counters, and the points of registered providers (latency percentiles, rejects,
/// cache hit rate, store write rates — whatever other modules measure).
///
/// ```swift
/// let metrics = try MetricsSink.influx(url: "influx://127.0.0.1:58086/tape", symbols: symbols,
///                                      logger: Logger(label: "tape.store.influx"))
/// metrics.addProvider { [latency] in latency.metricPoints() }
/// let engine = Engine(settings: settings, symbols: symbols, sinks: [folder, metrics])
/// ```
///
/// Contract:
/// - `record` (every delivered market event) and `emit` (every output) run on the engine thread and
///   only count: array increments, no allocation once every symbol has been seen (the arrays indexed
///   by `SymbolID` grow, doubling, when a larger id appears).
/// - `poll()` (engine thread, every `EngineSettings.checkInterval` items and when the source is idle)
///   samples when at least `intervalNanoseconds` of wall time have passed since the last sample: it
///   turns the counters into points, calls the providers, and hands everything to the writer, whose
///   `write` never waits on the network. `flush()` samples and asks the writer to send (bounded wait);
///   `close()` samples a last time and closes the writer (bounded wait); both idempotent in effect.
/// - Metrics never fail or stop a run: `failure` is always nil and `flush`/`close` never throw; an
///   outage shows in the writer's counters, its log lines and the summary's `stores.metrics` section
///   (`ReportingSink`), and the outputs and digests are the same with or without this sink.
/// - Time: each point is stamped with the wall clock at sampling (metrics are operational, not graph
///   output; they are not in the digest and a second replay of the same input writes new points).
///   Rates are per second of wall time between samples.
/// - Feed of a symbol: the `feed` given to the sink, else the venue part of a `venue:SYMBOL` name
///   (`spot:BTCUSDT` → `spot`), else `none`.
/// - Providers run on the engine thread inside `poll`/`flush`/`close`, in registration order; they
///   must be quick and must not block (read your own counters under your own lock, or atomics). Their
///   points are written as given, except a nil `time`, which becomes the sample time, and the sink's
///   `tags`, which are added to every point.
public final class MetricsSink: EventSink {
    /// Gives extra points at each sample (see the contract).
    public typealias Provider = () -> [MetricPoint]

    /// The tag value of symbols without a venue when no feed name is given.
    public static let noFeed = "none"
    /// Measurements written by the sink itself (docs/storage-influx.md).
    public static let ticksMeasurement = "tape_ticks"
    public static let feedTicksMeasurement = "tape_feed_ticks"
    public static let outputsMeasurement = "tape_outputs"
    public static let pipelineMeasurement = "tape_pipeline"
    public static let writerMeasurement = "tape_metrics_writer"

    public var name: String { "metrics" }
    public var failure: (any Error)? { nil }

    /// The InfluxDB writer, or nil when the points only go to `consumers` (no InfluxDB).
    public let writer: InfluxWriter?
    /// Also get every sample's points, on the engine thread (`MetricPointConsumer`: never blocking).
    public let consumers: [any MetricPointConsumer]
    public let symbols: SymbolTable
    /// The feed tag of every symbol, or nil for the venue part of each name.
    public let feed: String?
    /// Tags added to every point (e.g. `run`, `host`).
    public let tags: [MetricTag]
    /// Wall time between two samples, at least.
    public let intervalNanoseconds: Int64
    /// Samples taken so far.
    public private(set) var samples = 0

    /// Market event kinds counted per symbol: trade, quote, bar (`EventKind` raw values 0...2).
    private static let tickKinds = 3
    private let wallClock: () -> Nanos
    private var providers: [Provider] = []
    /// Events per symbol and kind, at `symbol * tickKinds + kind`.
    private var tickCounts: [Int]
    /// Ticks per symbol at the last sample.
    private var reportedTicks: [Int]
    /// Whether the symbol had ticks in the previous interval (then one point with count 0 follows).
    private var activeLastSample: [Bool]
    /// Index into `feeds` per symbol, -1 until first sampled.
    private var feedOfSymbol: [Int]
    private var feeds: [String] = []
    private var feedIndex: [String: Int] = [:]
    private var reportedFeedKinds: [[Int]] = []
    private var outputCounts = [Int](repeating: 0, count: OutputKind.allCases.count)
    private var reportedOutputs = [Int](repeating: 0, count: OutputKind.allCases.count)
    private var lastReceive: Nanos? = nil
    private var lastSampleWall: Nanos
    private var closed = false

    /// `symbols` is the engine's table (read on the engine thread only). `feed`: one feed name for
    /// every symbol, or nil for the venue part of each name.
    /// `writer` nil: no InfluxDB, the points go to `consumers` only (then at least one is given).
    public init(writer: InfluxWriter?, consumers: [any MetricPointConsumer] = [], symbols: SymbolTable,
                feed: String? = nil, tags: [MetricTag] = [],
                intervalNanoseconds: Int64 = 1_000_000_000, providers: [Provider] = [],
                wallClock: @escaping () -> Nanos = { WallClock.nanos() }) {
        precondition(intervalNanoseconds > 0, "a metrics interval is positive")
        precondition(feed.map { !$0.isEmpty } ?? true, "a feed name is not empty")
        precondition(writer != nil || !consumers.isEmpty, "metrics go to InfluxDB, to consumers, or both")
        self.writer = writer
        self.consumers = consumers
        self.symbols = symbols
        self.feed = feed
        self.tags = tags
        self.intervalNanoseconds = intervalNanoseconds
        self.providers = providers
        self.wallClock = wallClock
        let capacity = max(64, symbols.count)
        tickCounts = [Int](repeating: 0, count: capacity * MetricsSink.tickKinds)
        reportedTicks = [Int](repeating: 0, count: capacity)
        activeLastSample = [Bool](repeating: false, count: capacity)
        feedOfSymbol = [Int](repeating: -1, count: capacity)
        lastSampleWall = wallClock()
    }

    /// Registers a provider (engine thread, between items; see the contract).
    public func addProvider(_ provider: @escaping Provider) { providers.append(provider) }

    // MARK: engine thread, per item

    @inline(__always)
    public func record(_ event: MarketEvent) {
        let kind = Int(event.kind.rawValue)
        assert(kind < MetricsSink.tickKinds, "the engine records market events only, never clock ticks")
        if kind >= MetricsSink.tickKinds { return }
        let slot = Int(event.symbol) &* MetricsSink.tickKinds &+ kind
        if slot >= tickCounts.count { grow(toInclude: Int(event.symbol)) }
        tickCounts[slot] &+= 1
        lastReceive = event.receiveTime
    }

    @inline(__always)
    public func emit(_ output: GraphOutput) {
        outputCounts[OutputKind(output).rawValue] &+= 1
    }

    // MARK: engine thread, housekeeping

    public func poll() {
        guard !closed else { return }
        let now = wallClock()
        if now - lastSampleWall >= intervalNanoseconds { sample(at: now) }
    }

    /// Samples and asks the writer to send what it holds (waits at most the writer's flush limit).
    public func flush() throws {
        guard !closed else { return }
        sample(at: wallClock())
        writer?.flush()
    }

    /// Samples a last time and closes the writer (waits at most the writer's close limit). Idempotent.
    public func close() throws {
        guard !closed else { return }
        sample(at: wallClock())
        closed = true
        writer?.close()
    }

    /// The points of one sample at wall time `now`, handed to the writer.
    func sample(at now: Nanos) {
        let elapsedSeconds = Double(max(now - lastSampleWall, 1)) / 1e9
        var points: [MetricPoint] = []
        var feedKinds = [[Int]](repeating: [0, 0, 0], count: feeds.count)
        var ticksTotal = 0
        var symbolsSeen = 0
        for symbol in 0..<reportedTicks.count {
            let base = symbol * MetricsSink.tickKinds
            let total = tickCounts[base] + tickCounts[base + 1] + tickCounts[base + 2]
            if total == 0 { continue }
            symbolsSeen += 1
            ticksTotal += total
            let feed = feedIndex(of: symbol)
            if feed >= feedKinds.count { feedKinds.append([0, 0, 0]) }
            for kind in 0..<MetricsSink.tickKinds { feedKinds[feed][kind] += tickCounts[base + kind] }
            let count = total - reportedTicks[symbol]
            if count > 0 || activeLastSample[symbol] {
                points.append(point(MetricsSink.ticksMeasurement,
                                    tags: [MetricTag("feed", feeds[feed]),
                                           MetricTag("symbol", symbols.name(SymbolID(symbol)))],
                                    fields: rateFields(count: count, total: total, seconds: elapsedSeconds),
                                    time: now))
            }
            activeLastSample[symbol] = count > 0
            reportedTicks[symbol] = total
        }
        for (feed, kinds) in feedKinds.enumerated() {
            let reported = reportedFeedKinds[feed]
            let total = kinds.reduce(0, +)
            let count = total - reported.reduce(0, +)
            var fields = rateFields(count: count, total: total, seconds: elapsedSeconds)
            fields.append(MetricField("trades", .integer(Int64(kinds[0] - reported[0]))))
            fields.append(MetricField("quotes", .integer(Int64(kinds[1] - reported[1]))))
            fields.append(MetricField("bars", .integer(Int64(kinds[2] - reported[2]))))
            points.append(point(MetricsSink.feedTicksMeasurement, tags: [MetricTag("feed", feeds[feed])],
                                fields: fields, time: now))
            reportedFeedKinds[feed] = kinds
        }
        var outputsTotal = 0
        for kind in OutputKind.allCases {
            let total = outputCounts[kind.rawValue]
            outputsTotal += total
            let count = total - reportedOutputs[kind.rawValue]
            reportedOutputs[kind.rawValue] = total
            if total == 0 { continue }
            points.append(point(MetricsSink.outputsMeasurement, tags: [MetricTag("kind", kind.name)],
                                fields: rateFields(count: count, total: total, seconds: elapsedSeconds), time: now))
        }
        var pipeline = [MetricField("ticks_total", .integer(Int64(ticksTotal))),
                        MetricField("outputs_total", .integer(Int64(outputsTotal))),
                        MetricField("symbols", .integer(Int64(symbolsSeen)))]
        if let lastReceive {
            pipeline.append(MetricField("lag_ns", .integer(now - lastReceive)))
            pipeline.append(MetricField("stream_time_ns", .integer(lastReceive)))
        }
        points.append(point(MetricsSink.pipelineMeasurement, tags: [], fields: pipeline, time: now))
        if let counters = writer?.counters {
            points.append(point(MetricsSink.writerMeasurement, tags: [], fields: [
                MetricField("lines_written", .integer(Int64(counters.linesWritten))),
                MetricField("batches_written", .integer(Int64(counters.batchesWritten))),
                MetricField("bytes_uncompressed", .integer(counters.bytesUncompressed)),
                MetricField("bytes_compressed", .integer(counters.bytesCompressed)),
                MetricField("lines_dropped", .integer(Int64(counters.linesDropped))),
                MetricField("lines_rejected", .integer(Int64(counters.linesRejected))),
                MetricField("failures", .integer(Int64(counters.failures))),
                MetricField("outages", .integer(Int64(counters.outages))),
                MetricField("lines_buffered", .integer(Int64(counters.linesBuffered))),
            ], time: now))
        }
        for provider in providers {
            for var extra in provider() {
                if extra.time == nil { extra.time = now }
                extra.tags.append(contentsOf: tags)
                points.append(extra)
            }
        }
        writer?.write(points)
        for consumer in consumers { consumer.consume(points) }
        lastSampleWall = now
        samples += 1
    }

    // MARK: -

    private func point(_ measurement: String, tags pointTags: [MetricTag], fields: [MetricField],
                       time: Nanos) -> MetricPoint {
        MetricPoint(measurement: measurement, tags: pointTags + tags, fields: fields, time: time)
    }

    private func rateFields(count: Int, total: Int, seconds: Double) -> [MetricField] {
        [MetricField("count", .integer(Int64(count))), MetricField("total", .integer(Int64(total))),
         MetricField("rate", .float(Double(count) / seconds))]
    }

    /// The feed index of a symbol, decided once per symbol.
    private func feedIndex(of symbol: Int) -> Int {
        if feedOfSymbol[symbol] >= 0 { return feedOfSymbol[symbol] }
        let name: String
        if let feed {
            name = feed
        } else {
            let full = symbols.name(SymbolID(symbol))
            if let colon = full.firstIndex(of: ":"), colon != full.startIndex {
                name = String(full[..<colon])
            } else {
                name = MetricsSink.noFeed
            }
        }
        let index: Int
        if let known = feedIndex[name] {
            index = known
        } else {
            index = feeds.count
            feeds.append(name)
            feedIndex[name] = index
            reportedFeedKinds.append([0, 0, 0])
        }
        feedOfSymbol[symbol] = index
        return index
    }

    private func grow(toInclude symbol: Int) {
        var capacity = reportedTicks.count
        while capacity <= symbol { capacity *= 2 }
        let added = capacity - reportedTicks.count
        tickCounts.append(contentsOf: repeatElement(0, count: added * MetricsSink.tickKinds))
        reportedTicks.append(contentsOf: repeatElement(0, count: added))
        activeLastSample.append(contentsOf: repeatElement(false, count: added))
        feedOfSymbol.append(contentsOf: repeatElement(-1, count: added))
        assert(tickCounts.count == reportedTicks.count * MetricsSink.tickKinds, "one slot per symbol and kind")
    }
}

/// summary.json `stores.metrics`: where the metrics went and what the writer did (read after `close()`);
/// without InfluxDB only the samples taken.
extension MetricsSink: ReportingSink {
    public var report: JSONValue {
        guard let writer else {
            return .object([("server", .null), ("samples", .int(Int64(samples))), ("consumers", .int(Int64(consumers.count)))])
        }
        let counters = writer.counters
        let endpoint = writer.settings.endpoint
        let numbers: [(String, Int)] = [
            ("samples", samples), ("lines_accepted", counters.linesAccepted), ("lines_written", counters.linesWritten),
            ("batches_written", counters.batchesWritten), ("bytes_uncompressed", Int(counters.bytesUncompressed)),
            ("bytes_compressed", Int(counters.bytesCompressed)), ("lines_invalid", counters.linesInvalid),
            ("lines_dropped_buffer_full", counters.linesDroppedBufferFull),
            ("lines_rejected", counters.linesRejected), ("batches_rejected", counters.batchesRejected),
            ("lines_dropped_at_close", counters.linesDroppedAtClose), ("failures", counters.failures),
            ("outages", counters.outages), ("buffer_high_water_mark", counters.bufferHighWaterMark),
        ]
        return .object([("server", .string(endpoint.host)), ("database", .string(endpoint.database))]
                       + numbers.map { ($0.0, JSONValue.int(Int64($0.1))) })
    }
}

extension MetricsSink {
    /// For `ReplayOptions.sinkFactories` (replay and live): checks the URL now, so that a bad one is a
    /// usage error before anything starts, and builds one sink per run with the run's symbol table,
    /// tagging every point `mode` = `replay` or `live` (`RunContext.kind`); its writer logs through `logger`.
    /// The run id is not a tag (one series per run and symbol would grow without bound); pass `tags` to add
    /// one. `consumers` get the same points (e.g. the `MetricsBoard` of `--metrics-listen`).
    public static func factory(url: String, feed: String? = nil, tags: [MetricTag] = [],
                               intervalNanoseconds: Int64 = 1_000_000_000, consumers: [any MetricPointConsumer] = [],
                               logger: Logger = Logger(label: "tape.store.influx"))
        throws(InfluxURLError) -> (RunContext) throws -> EngineSink {
        let endpoint = try InfluxEndpoint(url: url)
        return { context in
            let writer = InfluxWriter(settings: InfluxWriter.Settings(endpoint: endpoint), logger: logger)
            return MetricsSink(writer: writer, consumers: consumers, symbols: context.symbols, feed: feed,
                               tags: [MetricTag("mode", context.kind)] + tags, intervalNanoseconds: intervalNanoseconds)
        }
    }

    /// The sink the CLI makes from `--metrics URL`: an `InfluxWriter` with default settings for the
    /// URL (`influx://host:port/db`, `influxs://…`, `http(s)://host:port[/?db=name]`; see
    /// `InfluxEndpoint`) and this sink around it. `logger` gets the writer's events (one per change of
    /// state, naming the server). Throws only for a URL that cannot be used; an unreachable server is
    /// not an error (the writer retries and counts).
    public static func influx(url: String, symbols: SymbolTable, feed: String? = nil, tags: [MetricTag] = [],
                              intervalNanoseconds: Int64 = 1_000_000_000,
                              logger: Logger = Logger(label: "tape.store.influx")) throws(InfluxURLError) -> MetricsSink {
        let endpoint = try InfluxEndpoint(url: url)
        let writer = InfluxWriter(settings: InfluxWriter.Settings(endpoint: endpoint), logger: logger)
        return MetricsSink(writer: writer, symbols: symbols, feed: feed, tags: tags,
                           intervalNanoseconds: intervalNanoseconds)
    }
}

extension MetricsSink {
    /// For `ReplayOptions.sinkFactories` without InfluxDB: one sink per run whose samples go to `consumers`
    /// only (e.g. the `MetricsBoard` that `--metrics-listen` serves), tagged `mode` = the run's kind as
    /// `factory(url:…)` tags them.
    public static func factory(consumers: [any MetricPointConsumer], feed: String? = nil, tags: [MetricTag] = [],
                               intervalNanoseconds: Int64 = 1_000_000_000) -> (RunContext) throws -> EngineSink {
        precondition(!consumers.isEmpty, "a metrics sink without InfluxDB needs a consumer")
        return { context in
            MetricsSink(writer: nil, consumers: consumers, symbols: context.symbols, feed: feed,
                        tags: [MetricTag("mode", context.kind)] + tags, intervalNanoseconds: intervalNanoseconds)
        }
    }
}
