import TapeCore
import TapeClock
import TapeGraph
import TapeSinks
import TapeEngine
import TapeStore
import TapeBus
import TapeMetrics
import TapeLogging
import Histogram

/// What one partition's graph needs, whoever assigns it (`tape work`).
public struct PartitionSettings {
    public var engine: EngineSettings
    /// Fresh downstream nodes (the model's inference node) for each new graph, in order.
    public var makeExtraNodes: () -> [DownstreamNode] = { [] }
    /// PostgreSQL URL of the exactly-once store (outputs + offset + checkpoint in one transaction).
    public var postgresURL: String
    /// sha256 of the canonical config (rows' key part, and the checkpoint's config).
    public var configHash: String
    /// The worker's id (rows' `run_id` prefix, `tape_worker_checkpoints.worker`).
    public var worker: String
    public var spoolDirectory: String
    public var closeTimeoutSeconds: Double = 60
    /// The other stores (Redis, InfluxDB): at-least-once, idempotent by key; one set per partition.
    public var otherSinks: [(RunContext) throws -> EngineSink] = []
    /// The partition's stores log through it (with `topic`, `partition` and `epoch` added).
    public var logger: Logger

    public init(engine: EngineSettings, postgresURL: String, configHash: String, worker: String,
                spoolDirectory: String, logger: Logger) {
        self.engine = engine; self.postgresURL = postgresURL; self.configHash = configHash
        self.worker = worker; self.spoolDirectory = spoolDirectory; self.logger = logger
    }
}

/// One assigned partition of `tick_data`: its own graph under its own stream-driven clock (records in
/// offset order: market events, clock ticks sent to every partition, end-of-session marks), writing
/// to PostgreSQL with the partition's next offset and graph checkpoint committed in the same
/// transaction as the outputs before them.
///
///     let work = try PartitionWork(acquired: try WorkerCheckpoints.acquire(...), settings: settings)
///     consumer.assign(partition, at: work.nextOffset ?? .beginning)
///     for each record: work.handle(offset:key:value:)     // poison records are counted and skipped
///     every 200 ms: work.commit()
///     on revoke: try work.close(commit: true)
public final class PartitionWork {
    public let target: CheckpointTarget
    public let settings: PartitionSettings
    /// The offset the committed checkpoint continues from; nil when nothing was committed yet (the
    /// consumer's reset policy applies, `earliest`).
    public let startOffset: Int64?
    /// The next offset to read: the one after the last record handled.
    public private(set) var nextOffset: Int64
    public private(set) var counters = Counters()

    public struct Counters: Sendable, Equatable {
        public var records = 0
        /// Records whose place in their ingest session was not after the last one handled: a
        /// producer's resend (after a broker restart); skipped.
        public var duplicates = 0
        /// Ingest sessions that began without the previous one's end mark (the ingest was restarted).
        public var sessionsWithoutEnd = 0
        public var events = 0
        public var clockTicks = 0
        public var sessionsEnded = 0
        public var poison = 0
        public var commits = 0
        public var offsetResets = 0
        public var commitNanoseconds: Int64 = 0
    }

    /// Consumer lag of the partition (high watermark − next offset), set by the worker about once a
    /// second; part of the `tape_work` metric.
    public var lag: Int64? = nil
    private let symbols = SymbolTable()
    private var engine: Engine
    private let store: PostgresSink
    private let others: [EngineSink]
    private var sinceCommit = 0
    private var sessionFinished = false
    /// The last record's place (session 0: none yet).
    private var last = TickRecord.Place(session: 0, sequence: 0)
    /// The offset of the last record the checkpoint handled, when the consumer starts there to check that
    /// the record is still the one handled (`expectFencePost`).
    private var fencePost: Int64? = nil

    /// Whether a checkpoint's last record can be checked: it holds a place, and the committed next offset
    /// is after the partition's first (`low`).
    public func canCheckFencePost(low: Int64) -> Bool {
        guard let start = startOffset, last.session != 0 else { return false }
        return start - 1 >= low
    }

    /// The consumer starts one record before the committed offset: the first record must be the last one
    /// the checkpoint handled (same offset, same place). A committed offset inside the partition says
    /// nothing when the topic was deleted and re-created since (a broker that keeps topics in memory
    /// restarted): the new partition's offsets start again at 0, and another record sits there.
    public func expectFencePost() {
        if let start = startOffset { fencePost = start - 1 }
    }

    /// The partition's topic was re-created (its id changed, or its end is before the next offset): the
    /// caller seeks the partition to its beginning; records already handled are dropped by their place.
    public func readAgainFromBeginning() {
        fencePost = nil
        counters.offsetResets += 1
        nextOffset = -1
    }

    /// Builds the partition's graph from `acquired`'s checkpoint (or fresh) and connects its stores.
    /// Throws when the checkpoint is not one this build and config can continue from (the message says
    /// what to do), or a store cannot be reached.
    public init(acquired: WorkerCheckpoints.Acquired, settings: PartitionSettings) throws {
        target = acquired.target
        self.settings = settings
        startOffset = acquired.committed?.nextOffset
        nextOffset = acquired.committed?.nextOffset ?? -1
        var storeSettings = PostgresSinkSettings(
            url: settings.postgresURL, runID: "\(settings.worker)-p\(target.partition)-e\(target.epoch)",
            runKind: "work", configHash: settings.configHash,
            inputsJSON: "[\"kafka:\(target.topic)[\(target.partition)] group \(target.group)\"]",
            tapeVersion: TapeEngine.tapeVersion, spoolDirectory: settings.spoolDirectory)
        storeSettings.checkpoints = target
        storeSettings.closeTimeoutSeconds = settings.closeTimeoutSeconds
        if let hash = acquired.configHash, acquired.committed?.checkpoint != nil, hash != settings.configHash {
            throw WorkError("\(target.description): its checkpoint was taken under config \(hash.prefix(12)), this worker "
                + "runs \(settings.configHash.prefix(12)): run the same config, or use another consumer group "
                + "(--group) to process the topic afresh under this one")
        }
        if let version = acquired.formatVersion, acquired.committed?.checkpoint != nil,
           version != WorkerCheckpoints.formatVersion {
            throw WorkError("\(target.description): checkpoint format \(version), this build reads "
                + "\(WorkerCheckpoints.formatVersion); use another consumer group (--group)")
        }
        var logger = settings.logger
        logger[metadataKey: "topic"] = .string(target.topic)
        logger[metadataKey: "partition"] = .stringConvertible(Int(target.partition))
        logger[metadataKey: "epoch"] = .stringConvertible(Int(target.epoch))
        var storeLogger = logger
        storeLogger[metadataKey: "store"] = "postgres"
        store = try PostgresSink(settings: storeSettings, symbols: symbols, logger: storeLogger)
        let context = RunContext(directory: settings.spoolDirectory, runID: storeSettings.runID, kind: "work",
                                 symbols: symbols, configHash: settings.configHash,
                                 inputs: ["kafka:\(target.topic)[\(target.partition)]"], printer: TapeLogging.lines(logger))
        var built: [EngineSink] = []
        do {
            for factory in settings.otherSinks { built.append(try factory(context)) }
        } catch {
            _ = try? OutputFailed.closeAll([store] + built)
            throw error
        }
        others = built
        engine = PartitionWork.makeEngine(settings, symbols: symbols, sinks: [store] + built)
        if let bytes = acquired.committed?.checkpoint {
            do {
                let envelope = try WorkerEnvelope.read(bytes)
                last = envelope.last
                sessionFinished = envelope.sessionFinished
                if !envelope.engineCheckpoint.isEmpty { try engine.restore(checkpoint: envelope.engineCheckpoint) }
            } catch {
                _ = try? OutputFailed.closeAll([store] + built)
                throw WorkError("\(target.description): the committed checkpoint cannot be restored (\(error)); "
                    + "use another consumer group (--group) to process the topic afresh")
            }
        }
        // `tape_work` points through the partition's metrics store, if it has one: lag, commits and the
        // receive stamp → commit latency (the provider runs on this thread, at the store's sample).
        for sink in built { (sink as? MetricsSink)?.addProvider { [unowned self] in self.metricPoints() } }
    }

    static func makeEngine(_ settings: PartitionSettings, symbols: SymbolTable, sinks: [GraphSink]) -> Engine {
        var engineSettings = settings.engine
        engineSettings.extraNodes = settings.makeExtraNodes()
        return Engine(settings: engineSettings, symbols: symbols, sinks: sinks)
    }

    /// What became of one record.
    public enum Outcome: Equatable {
        case handled
        /// Refused (poison): counted, skipped; the detail names why.
        case poison(String)
        /// The offset went back (the topic was re-created, e.g. a broker that keeps topics in memory
        /// restarted): said once, and the graph continues with the records that follow.
        case offsetReset(expectedAtLeast: Int64)
        /// A record already handled (its place in the ingest session is not after the last one): skipped.
        case duplicate
        /// The first record of an ingest session that began before the previous one ended.
        case sessionWithoutEnd
        /// The record before the committed offset is the last one the checkpoint handled (`expectFencePost`):
        /// nothing to do, the next record is the first new one.
        case fencePost
        /// The record before the committed offset is not the last one handled: the topic was re-created.
        /// The caller seeks the partition to its beginning; records already handled are dropped by place.
        case rewind(committed: Int64)
    }

    /// Handles the record at `offset` (engine thread = the consumer's thread).
    public func handle(offset: Int64, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Outcome {
        if let post = fencePost {
            fencePost = nil
            if offset == post, TickRecord.place(of: value) == last { return .fencePost }
            // Another record where the checkpoint's last one was: the topic is not the one checkpointed.
            // Read it from the beginning; records already handled are dropped by their place.
            counters.offsetResets += 1
            nextOffset = -1
            return .rewind(committed: post + 1)
        }
        var outcome = Outcome.handled
        if nextOffset >= 0 && offset < nextOffset {
            counters.offsetResets += 1
            outcome = .offsetReset(expectedAtLeast: nextOffset)
        }
        nextOffset = offset + 1
        counters.records += 1
        sinceCommit += 1
        let decoded: TickRecord.Decoded
        do { decoded = try TickRecord.decode(key: key, value: value, symbols: symbols) } catch {
            counters.poison += 1
            return .poison(error.detail)
        }
        let place: TickRecord.Place
        switch decoded {
        case .event(_, let p): place = p
        case .endOfSession(_, let p): place = p
        }
        if place.session == last.session && place.sequence <= last.sequence {
            counters.duplicates += 1
            return outcome == .handled ? .duplicate : outcome
        }
        if place.session != last.session && last.session != 0 && !sessionFinished {
            counters.sessionsWithoutEnd += 1
            if outcome == .handled { outcome = .sessionWithoutEnd }
        }
        last = place
        switch decoded {
        case .event(let event, _):
            if sessionFinished { startSession() }
            engine.process(event)
            if event.kind == .clockTick { counters.clockTicks += 1 } else { counters.events += 1 }
        case .endOfSession(let time, _):
            // Like the end of a replayed recording: every open window closes; the clock does not move
            // (the session's last clock tick came before the mark, as it is in the recording).
            _ = time
            if !sessionFinished {
                engine.finish()
                sessionFinished = true
                counters.sessionsEnded += 1
            }
        }
        return outcome
    }

    /// A new session on this partition after an end mark: a fresh graph (the symbol table is kept).
    private func startSession() {
        engine = PartitionWork.makeEngine(settings, symbols: symbols, sinks: [store] + others)
        sessionFinished = false
    }

    /// One `tape_work` point: tags topic, partition, group; fields next offset, lag, records, events, poison,
    /// duplicates, commits and the receive stamp → commit latency percentiles (ns).
    func metricPoints() -> [MetricPoint] {
        let latency = store.commitLatency
        var fields = [MetricField("next_offset", .integer(nextOffset)), MetricField("records", .integer(Int64(counters.records))),
                      MetricField("events", .integer(Int64(counters.events))), MetricField("poison", .integer(Int64(counters.poison))),
                      MetricField("duplicates", .integer(Int64(counters.duplicates))), MetricField("commits", .integer(Int64(counters.commits)))]
        if let lag { fields.append(MetricField("lag", .integer(lag))) }
        if latency.totalCount > 0 {
            fields.append(MetricField("commit_latency_p50_ns", .integer(Int64(latency.valueAtPercentile(50)))))
            fields.append(MetricField("commit_latency_p99_ns", .integer(Int64(latency.valueAtPercentile(99)))))
        }
        return [MetricPoint(measurement: "tape_work", tags: [MetricTag("group", target.group), MetricTag("partition", String(target.partition)),
                                                             MetricTag("topic", target.topic)], fields: fields, time: nil)]
    }

    /// Records handled since the last commit.
    public var uncommitted: Int { sinceCommit }

    /// Lets the other sinks do their housekeeping (the metrics sink samples once its interval has passed)
    /// while the partition is idle: `commit()` does it too, but an idle partition has nothing to commit.
    public func pollOtherSinks() {
        for sink in others { sink.poll() }
    }

    /// The earliest time one of the other sinks wants its poll (`EngineSink.pollDue`, CLOCK_MONOTONIC ns), e.g.
    /// the Redis sink's hand-over of the updates for `tape serve`; nil: none.
    public var pollDue: Int64? {
        var earliest: Int64? = nil
        for sink in others { if let due = sink.pollDue, due < (earliest ?? .max) { earliest = due } }
        return earliest
    }

    /// Hands everything since the last commit to the store with the next offset and the graph's
    /// checkpoint (none after an end of session: the next owner starts a fresh graph). Returns false
    /// when a store has failed (the partition must be given up: `failure`).
    @discardableResult
    public func commit() -> Bool {
        for sink in others { sink.poll() }
        if sinceCommit > 0 && nextOffset >= 0 {
            let started = WallClock.nanos()
            let envelope = WorkerEnvelope(partition: target.partition, nextOffset: nextOffset, last: last,
                                          sessionFinished: sessionFinished,
                                          engineCheckpoint: sessionFinished ? [] : engine.checkpoint())
            store.commit(WorkerCheckpoint(nextOffset: nextOffset, checkpoint: envelope.bytes()))
            counters.commitNanoseconds += WallClock.nanos() - started
            counters.commits += 1
            sinceCommit = 0
        }
        return failure == nil
    }

    /// The first failed store's error (a fenced commit: another worker has the partition).
    public var failure: (any Error)? {
        if let failure = store.failure { return failure }
        return others.lazy.compactMap(\.failure).first
    }

    /// First stored tick's receive stamp, last commit that stored ticks (wall ns).
    public var tickWindow: (firstReceive: Int64, lastCommit: Int64)? { store.tickWindow }

    /// Per stored tick: receive stamp → commit of its transaction, ns.
    public var commitLatency: Histogram<UInt64> { store.commitLatency }

    /// The store's counters (rows, batches, outages, time blocked).
    public var storeCounters: PostgresSinkCounters { store.counters }

    /// PostgreSQL as this partition's store sees it (thread-safe: `/ready` reads it off the worker's thread).
    public var storeDependency: DependencyTracker { store.dependency }

    /// The store holds a commit it cannot write: PostgreSQL is away (the worker stops reading the partition).
    public var storeAway: Bool { store.dependency.current.status != .up }

    /// Revoke or shutdown: commits (when `commit`) and waits until it is durable, then closes the stores.
    public func close(commit: Bool) throws {
        if commit && failure == nil {
            self.commit()
            try store.flush()
        }
        try OutputFailed.closeAll([store] + others)
    }
}

/// What `tape work` stores in `tape_worker_checkpoints.checkpoint` (format version 1): the engine's
/// checkpoint (graph snapshot, counters; empty after an end of session: a fresh graph follows) wrapped with
/// the partition, the next offset, and the last record's place in its ingest session (duplicates after
/// the restore are recognised too).
///
/// `TAPEWRK1`, then (SnapshotWriter encoding) version u64 = 1, partition i64, next offset i64, session
/// u64, sequence u64, session finished flag, engine checkpoint block.
public struct WorkerEnvelope: Equatable {
    public static let magic: [UInt8] = Array("TAPEWRK1".utf8)
    public var partition: Int32
    public var nextOffset: Int64
    public var last: TickRecord.Place
    public var sessionFinished: Bool
    public var engineCheckpoint: [UInt8]

    public func bytes() -> [UInt8] {
        var writer = SnapshotWriter()
        for byte in Self.magic { writer.appendByte(byte) }
        writer.append(UInt64(WorkerCheckpoints.formatVersion))
        writer.append(Int64(partition))
        writer.append(nextOffset)
        writer.append(last.session)
        writer.append(last.sequence)
        writer.append(sessionFinished)
        writer.appendBlock(engineCheckpoint)
        return writer.bytes
    }

    public static func read(_ bytes: [UInt8]) throws -> WorkerEnvelope {
        var reader = SnapshotReader(bytes: bytes)
        guard try reader.readBytes(magic.count) == magic else { throw reader.error("not a tape work checkpoint (bad magic)") }
        let version = try reader.readUInt64()
        guard version == UInt64(WorkerCheckpoints.formatVersion) else {
            throw reader.error("worker checkpoint version \(version), this build reads \(WorkerCheckpoints.formatVersion)")
        }
        let partition = Int32(truncatingIfNeeded: try reader.readInt64())
        let offset = try reader.readInt64()
        let place = TickRecord.Place(session: try reader.readUInt64(), sequence: try reader.readUInt64())
        let finished = try reader.readBool()
        let engine = try reader.readBlock()
        try reader.expectEnd("worker checkpoint")
        return WorkerEnvelope(partition: partition, nextOffset: offset, last: place, sessionFinished: finished,
                              engineCheckpoint: engine)
    }
}

/// A worker-level error with a message for the operator.
public struct WorkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
