import ArgumentParser
import Foundation
import TapeCore
import TapeBacktest
import TapeSinks
import TapeEngine
import TapeReplay
import TapeModel
import TapeStore
import TapeWork
import TapeKafka
import TapeKafkaBus
import TapeAlerts
import TapeLogging
import Histogram

/// The Kafka bus options of `tape ingest` (and `tape live --kafka`).
struct BusOptions: ParsableArguments {
    /// The local broker of `make services` (config/services.env `TAPE_KAFKA_PORT`).
    static let localBroker = "127.0.0.1:59092"

    @Option(help: "Publish every validated event to Kafka: bootstrap servers host:port[,host:port] (tape ingest: default $TAPE_KAFKA_BOOTSTRAP or 127.0.0.1:59092).")
    var kafka: String?

    @Option(help: "Topic of the events (created if missing).")
    var topic: String = "tick_data"

    @Option(help: "Partitions of a topic that Tape creates (an existing topic keeps its own).")
    var partitions: Int = 3

    @Option(name: .customLong("kafka-property"), help: "A librdkafka property KEY=VALUE (repeatable; e.g. security.protocol=SASL_SSL).")
    var kafkaProperties: [String] = []

    @Option(help: "Producer linger in ms (batching).")
    var lingerMs: Int = 5

    @Option(help: "Producer compression: none, lz4, zstd, snappy, gzip.")
    var compression: String = "lz4"

    static func defaultBroker() -> String {
        ProcessInfo.processInfo.environment["TAPE_KAFKA_BOOTSTRAP"].flatMap { $0.isEmpty ? nil : $0 } ?? localBroker
    }

    static func properties(_ list: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in list {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("--kafka-property '\(item)': expected KEY=VALUE")
            }
            result[parts[0]] = parts[1]
        }
        return result
    }

    /// The sink factory that publishes the run's events, when `--kafka` is given; its publisher goes into
    /// `registry` (the alerts watch its broker outages).
    func factory(clientID: String, registry: StoreRegistry) throws -> ((RunContext) throws -> EngineSink)? {
        guard let kafka else { return nil }
        guard (1...10_000).contains(partitions) else { throw ValidationError("--partitions: expected 1 ... 10000") }
        guard (0...60_000).contains(lingerMs) else { throw ValidationError("--linger-ms: expected 0 ... 60000") }
        guard let codec = KafkaProducerSettings.Compression(rawValue: compression) else {
            throw ValidationError("--compression '\(compression)': expected none, lz4, zstd, snappy or gzip")
        }
        let config = KafkaConfig(bootstrapServers: kafka, clientID: clientID, properties: try Self.properties(kafkaProperties))
        var settings = KafkaProducerSettings()
        settings.lingerMilliseconds = lingerMs
        settings.compression = codec
        // A record not acknowledged within 5 s fails, and the publisher resends it through a new producer
        // (after a broker that lost its state, the old producer id is refused for ever); a resent record
        // that had in fact arrived is skipped by the workers (its place in the session).
        settings.messageTimeoutMilliseconds = 5_000
        let topic = self.topic, partitions = self.partitions
        return { context in
            let logger = Logger(label: "tape.kafka")
            let publisher = try KafkaTickPublisher(config: config, topic: topic, partitions: partitions, settings: settings,
                                                   logger: logger)
            logger.info("tape: publishing to kafka \(kafka) topic \(topic) (\(publisher.partitionCount) partitions)",
                        metadata: ["event": "publishing", "peer": .string(kafka), "topic": .string(topic),
                                   "partitions": .stringConvertible(Int(publisher.partitionCount))])
            registry.kafka = publisher
            registry.track(publisher.dependency)
            return TickBusSink(publisher: publisher, symbols: context.symbols)
        }
    }
}

/// `tape ingest`: `tape live` whose validated, stamped stream also goes to Kafka (`tick_data`, keyed by
/// symbol; clock ticks and the end-of-session mark to every partition).
struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Live feeds → stamped, validated events → Kafka (tick_data), recorded as in tape live.",
        discussion: """
            Every option of tape live (feeds, --duration, --record, --store, …) plus the bus options. \
            Records: key = symbol, value = Tape tick record v1 (docs/kafka.md), timestamp = receive time. \
            Clock ticks and the end-of-session mark go to every partition. Consume with tape work.
            """)

    @OptionGroup var live: LiveCommand

    mutating func run() throws {
        if live.bus.kafka == nil { live.bus.kafka = BusOptions.defaultBroker() }
        try live.run()
    }
}

/// `tape work`: a consumer-group member running the graph per assigned partition, exactly once into
/// PostgreSQL.
struct WorkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work",
        abstract: "Consume tick_data as a group member: a graph per partition, outputs exactly once into PostgreSQL.",
        discussion: """
            Each assigned partition resumes from the offset and graph checkpoint committed with its \
            outputs in PostgreSQL (tape_worker_checkpoints). Start more workers with the same --group to \
            split the partitions. PostgreSQL away: reading pauses, /ready (--metrics-listen) says 503, and the \
            worker resumes where its graphs stopped once it is back. SIGINT/SIGTERM: commit, leave the group, \
            exit 0. Exit 5: a store failed (not an outage: a refusal); 4: a checkpoint this config or build \
            cannot continue from.
            """)

    @Option(help: "Kafka bootstrap servers (default $TAPE_KAFKA_BOOTSTRAP or 127.0.0.1:59092).")
    var kafka: String?

    @Option(help: "Topic to consume.")
    var topic: String = "tick_data"

    @Option(help: "Consumer group: workers of one group split the partitions.")
    var group: String = "tape-work"

    @Option(name: .customLong("store"), help: "postgres://… (required: outputs, offsets and checkpoints); also redis://…, influx://… (repeatable).")
    var stores: [String] = []

    @Option(help: "Pipeline config (YAML; default config/pipeline.yaml if present). Must be the one the checkpoints were taken under.")
    var config: String?

    @Option(help: "Paper trading: strategies, simulated execution and account (YAML with a trading: section; docs/backtesting.md). One account per partition; orders, fills, positions and equity commit with the outputs and the offset.")
    var trading: String?

    @Option(help: "Run this trained model on every bar (predictions).")
    var model: String?

    @Option(help: "This worker's name (default host-pid).")
    var name: String?

    @Option(help: "Commit each partition at least every this many ms.")
    var commitMs: Int = 100

    @Option(help: "Exit after this many seconds without a record (before the first assignment: at least 60 s) (default: run until SIGINT/SIGTERM).")
    var idleExitSeconds: Double?

    @Option(help: "Consumer session.timeout.ms.")
    var sessionTimeoutMs: Int = 10_000

    @Option(help: "Consumer max.poll.interval.ms.")
    var maxPollIntervalMs: Int = 300_000

    @Option(name: .customLong("kafka-property"), help: "A librdkafka property KEY=VALUE (repeatable).")
    var kafkaProperties: [String] = []

    @Option(help: "Where the other stores keep batches while their servers are away.")
    var spool: String = ".tape/work-spool"

    @Option(help: "Send anomalies and pipeline faults (poison records, store outages) to Slack and email as this file says (YAML; docs/alerts.md).")
    var alerts: String?

    @OptionGroup var metricsListen: MetricsListenOptions

    @OptionGroup var logging: LoggingOptions

    mutating func run() throws {
        logging.apply()
        let postgres = stores.filter { ["postgres", "postgresql"].contains(StoreURL.scheme(of: $0)) }
        guard postgres.count == 1 else {
            throw ValidationError("give exactly one --store postgres://… (outputs, offsets and checkpoints commit there)")
        }
        guard (1...600_000).contains(commitMs) else { throw ValidationError("--commit-ms: expected 1 ... 600000") }
        var options = ReplayOptions(inputs: [])
        do { try loadConfig(into: &options, path: config, trading: trading) }
        catch let error as UnusableInput { fail(error.description, code: TapeExit.unusableInput) }
        let configHash = FileHash.sha256(text: options.engine.config.canonicalText)
        let workerName = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let logger = Logger(label: "tape.work")
        var partition = PartitionSettings(engine: options.engine, postgresURL: postgres[0], configHash: configHash,
                                          worker: workerName, spoolDirectory: spool, logger: logger)
        // One alert service for every partition this worker runs; closed when the worker ends.
        let alertService = try AlertFile.service(path: alerts)
        defer { alertService?.close() }
        // `/ready`: Kafka and PostgreSQL as the worker sees them (registered once it exists), and its other stores.
        let readiness = Readiness()
        let registry = StoreRegistry()
        readiness.register("stores") { registry.dependencies }
        let exported = try metricsListen.start(readiness: readiness)
        defer { exported?.1.stop() }
        partition.otherSinks = try StoreOptions.factories(urls: stores.filter { !postgres.contains($0) }, spool: spool,
                                                          closeTimeout: 60, alerts: alertService.map { ($0, false) },
                                                          board: exported?.0, registry: registry)
        if let model {
            let path = modelFile(model)
            do { _ = try InferenceNode(modelPath: path) } catch { fail("\(model): \(error)", code: TapeExit.unusableInput) }
            partition.makeExtraNodes = { [(try? InferenceNode(modelPath: path))].compactMap { $0 } }
        }
        if options.engine.config.trading != nil {
            // Checked now (a bad key is a usage error before anything starts); one node per partition.
            let pipeline = options.engine.config, source = trading ?? config ?? "config/pipeline.yaml"
            if let node = tradingNode(pipeline, source: source) { _ = TradingSetup.stop(node) }
            let before = partition.makeExtraNodes
            partition.makeExtraNodes = { before() + [tradingNode(pipeline, source: source)].compactMap { $0 } }
        }
        let kafkaConfig = KafkaConfig(bootstrapServers: kafka ?? BusOptions.defaultBroker(), clientID: "tape-work-\(workerName)",
                                      properties: try BusOptions.properties(kafkaProperties))
        var settings = WorkerSettings(kafka: kafkaConfig, topic: topic, group: group, partition: partition)
        settings.commitMilliseconds = commitMs
        settings.sessionTimeoutMilliseconds = sessionTimeoutMs
        settings.maxPollIntervalMilliseconds = maxPollIntervalMs
        settings.idleExitMilliseconds = idleExitSeconds.map { Int($0 * 1000) }
        settings.faults = alertService
        let pause = PauseControl()
        pause.install(keys: false)
        let worker: Worker
        do { worker = try Worker(settings: settings, name: workerName, logger: logger) }
        catch { fail("\(error)", code: TapeExit.outputFailed) }
        let health = worker.health
        readiness.register("worker") { health.dependencies }
        logger.info(.text("tape work: \(workerName) joining group \(group) on \(kafkaConfig.bootstrapServers) topic \(topic); "
                    + "store \(urlWithoutPassword(postgres[0])); config \(configHash.prefix(12))"),
                    metadata: ["event": "started", "worker": .string(workerName), "group": .string(group),
                               "peer": .string(kafkaConfig.bootstrapServers), "topic": .string(topic),
                               "store": .string(urlWithoutPassword(postgres[0])), "config_hash": .string(String(configHash.prefix(12)))])
        let summary: WorkerSummary
        do { summary = try worker.run(stop: { pause.isInterrupted }) }
        catch let error as WorkError { fail(error.description, code: TapeExit.unusableInput) }
        catch { fail("\(error)", code: TapeExit.outputFailed) }
        logger.info(.text("tape work: \(workerName) stopped: \(summary.records) records, \(summary.commits) commits, "
                    + "\(summary.poison) poison"), metadata: ["event": "stopped", "worker": .string(workerName),
                                                             "records": .stringConvertible(summary.records),
                                                             "commits": .stringConvertible(summary.commits)])
        let latencies = summary.commitLatencyNanoseconds.sorted()
        func percentile(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            return String(format: "%.3f ms", Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1e6)
        }
        print("records         \(summary.records)  (events \(summary.events), clock ticks \(summary.clockTicks), poison \(summary.poison), duplicates \(summary.duplicates))")
        if summary.endToEnd.totalCount > 0 {
            let h = summary.endToEnd
            func ms(_ p: Double) -> String { String(format: "%.3f", Double(h.valueAtPercentile(p)) / 1e6) }
            if let window = summary.tickWindow, window.lastCommit > window.firstReceive {
                let seconds = Double(window.lastCommit - window.firstReceive) / 1e9
                print(String(format: "stored          %llu ticks in %.3f s from the first receive stamp to the last commit: %.0f ticks/s",
                             h.totalCount, seconds, Double(h.totalCount) / seconds))
            }
            print("end to end      receive stamp → PostgreSQL commit, \(h.totalCount) ticks: p50 \(ms(50)) ms, p99 \(ms(99)) ms, p99.9 \(ms(99.9)) ms, max \(String(format: "%.3f", Double(h.max) / 1e6)) ms")
        }
        print("commits         \(summary.commits)  (hand-off p50 \(percentile(0.5)), p99 \(percentile(0.99)))")
        print("partitions      assigned \(summary.assignments), revoked \(summary.revocations), fenced \(summary.fenced), offset resets \(summary.offsetResets), sessions ended \(summary.sessionsEnded)")
        if !summary.lag.isEmpty {
            print("lag             " + summary.lag.sorted { $0.key < $1.key }.map { "\(topic)[\($0.key)]=\($0.value)" }.joined(separator: " "))
        }
        print("next offsets    " + summary.nextOffsets.sorted { $0.key < $1.key }.map { "\(topic)[\($0.key)]=\($0.value)" }.joined(separator: " "))
    }
}
