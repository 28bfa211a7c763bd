import Foundation
import TapeCore
import TapeClock
import TapeStore
import TapeSinks
import TapeWork
import TapeKafka
import TapeLogging
import Histogram

/// How `tape work` consumes.
public struct WorkerSettings {
    public var kafka: KafkaConfig
    public var topic: String
    public var group: String
    public var partition: PartitionSettings
    /// Wall time between two commits of a partition (outputs + offset + checkpoint)...
    public var commitMilliseconds = 100
    /// ...or this many records, whichever comes first.
    public var commitRecords = 50_000
    public var sessionTimeoutMilliseconds = 10_000
    public var maxPollIntervalMilliseconds = 300_000
    /// Stop after this long without a record (tests, benches); nil = run until `stop`.
    public var idleExitMilliseconds: Int? = nil
    /// Print poison records one by one up to this many, then only count them.
    public var poisonPrintLimit = 20
    /// Told of every poison record (the alerts, `--alerts`); returns at once.
    public var faults: (any FaultListener)? = nil
    /// The worker's own PostgreSQL connection (it takes partitions through it) is retried after this, doubling
    /// up to `reconnectMaxMilliseconds`, while PostgreSQL is away.
    public var reconnectInitialMilliseconds: Int64 = 200
    public var reconnectMaxMilliseconds: Int64 = 5_000
    /// While the broker is unreachable, it is asked for a partition's watermarks this often (its answer is
    /// what says it is back when nothing else comes).
    public var brokerProbeMilliseconds: Int64 = 2_000

    public init(kafka: KafkaConfig, topic: String, group: String, partition: PartitionSettings) {
        self.kafka = kafka; self.topic = topic; self.group = group; self.partition = partition
    }
}

/// What a worker did (printed at exit; the metrics).
public struct WorkerSummary {
    public var records = 0
    public var events = 0
    public var clockTicks = 0
    public var poison = 0
    public var duplicates = 0
    public var commits = 0
    public var offsetResets = 0
    public var sessionsEnded = 0
    public var assignments = 0
    public var revocations = 0
    public var fenced = 0
    /// Per partition: the next offset committed, and the lag seen last (high watermark − next offset).
    public var nextOffsets: [Int32: Int64] = [:]
    public var lag: [Int32: Int64] = [:]
    public var rowsInserted = 0
    /// Commit hand-off time on the worker's thread (graph checkpoint + queueing), ns.
    public var commitLatencyNanoseconds: [Int64] = []
    /// Per stored tick: receive stamp (at ingest) → commit of its PostgreSQL transaction, ns.
    /// The first stored tick's receive stamp and the last commit that stored ticks (wall ns).
    public var tickWindow: (firstReceive: Int64, lastCommit: Int64)? = nil
    public var endToEnd = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
}

/// `tape work`: a consumer-group member. Each assigned partition of `tick_data` gets its own graph
/// (`PartitionWork`), restored from the checkpoint committed with its outputs in PostgreSQL; the offset
/// stored there — not the group's offset in Kafka — is where it resumes. Single-threaded: the rebalance
/// callbacks, the records and the commits all run on the thread that calls `run`; `health` (for `/ready`) is
/// read from any thread.
///
/// **PostgreSQL away** (a server stopped, restarted, unreachable): the worker does not stop. A partition's
/// store holds its uncommitted batch and retries (`PostgresSink`); as soon as one says PostgreSQL is away, the
/// worker pauses reading every partition it holds (the broker keeps the records; the group still sees the
/// member: it polls on) and commits nothing more. A partition assigned meanwhile cannot be taken (its
/// checkpoint is in PostgreSQL): it waits, paused, while the worker's own connection is retried with capped
/// backoff. Once PostgreSQL answers and every held batch is committed, each partition is read again from the
/// record after the last one its graph handled, and the waiting ones are taken from their committed
/// checkpoints: nothing is lost or handled twice. Said once when it goes, once (with its length) when it is
/// back — never a line per retry.
public final class Worker {
    public let settings: WorkerSettings
    public let name: String
    private var consumer: KafkaConsumer
    private let consumerConfig: KafkaConfig
    private let consumerSettings: KafkaConsumerSettings
    private var rejoins = 0
    /// Partitions lost or the topic reported unknown, and no partition taken since: the topic may have been
    /// deleted and re-created (a broker restarted with memory storage).
    private var topicGone = false
    /// Asks the brokers for the topic's id every 2 s (`checkTopicIdentity`); the id seen first.
    private var admin: KafkaAdmin?
    private var topicID: String?
    private var lastIdentityProbe: Int64 = 0
    /// The worker's own connection (partitions are taken through it); nil while PostgreSQL is away.
    private var connection: PostgresConnection?
    private var ownBackoff: Backoff
    private var nextOwnReconnect: Int64 = 0
    private var works: [Int32: PartitionWork] = [:]
    /// Partitions assigned that could not be taken while PostgreSQL was away: paused, taken once it is back.
    private var waiting: Set<Int32> = []
    /// Where the next record of each held partition is (after the last one handled): where a paused
    /// partition is read again from.
    private var position: [Int32: KafkaOffset] = [:]
    /// Reading is paused because PostgreSQL is away (since, wall ns), and the partitions paused.
    private var storesAwaySince: Int64? = nil
    private var paused: Set<Int32> = []
    private var lastStoreCheck: Int64 = 0
    /// Kafka and PostgreSQL as this worker sees them (`/ready`), readable from any thread.
    public let health: WorkerHealth
    private var kafka: DependencyTracker { health.kafka }
    private var postgres: DependencyTracker { health.postgres }
    private var storeTrackers: TrackerList { health.stores }
    private var brokerDownSince: Int64? = nil
    /// `kafka` says up (mirrored here: a record does not take the tracker's lock).
    private var brokerKnownUp = false
    private var brokerDownErrors = 0
    private var lastBrokerProbe: Int64 = 0

    private var lastCommit: [Int32: Int64] = [:]
    private var failure: (any Error)? = nil
    /// The last record or assignment (the idle exit counts from it: a group forms in seconds).
    private var lastActivity: Int64 = 0
    private var summary = WorkerSummary()
    private let logger: Logger

    /// Connects to PostgreSQL (an error when it cannot: nothing could be taken) and makes the consumer.
    /// `logger` gets the worker's events (partitions taken and given back, poison records, outages).
    public init(settings: WorkerSettings, name: String, logger: Logger) throws {
        self.settings = settings
        self.name = name
        var logger = logger
        logger[metadataKey: "worker"] = .string(name)
        logger[metadataKey: "group"] = .string(settings.group)
        self.logger = logger
        let connection = try PostgresConnection(url: settings.partition.postgresURL)
        try StoreSchema.migrate(connection)
        self.connection = connection
        health = WorkerHealth(
            kafka: DependencyTracker(name: "kafka", status: .connecting, peer: settings.kafka.bootstrapServers),
            postgres: DependencyTracker(name: "postgres", status: .up, peer: connection.peer))
        ownBackoff = Backoff(initialNanoseconds: settings.reconnectInitialMilliseconds * 1_000_000,
                             maxNanoseconds: settings.reconnectMaxMilliseconds * 1_000_000,
                             seed: name.utf8.reduce(14_695_981_039_346_656_037) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 })
        var consumerSettings = KafkaConsumerSettings(groupID: settings.group)
        consumerSettings.sessionTimeoutMilliseconds = settings.sessionTimeoutMilliseconds
        consumerSettings.maxPollIntervalMilliseconds = settings.maxPollIntervalMilliseconds
        consumerSettings.startWithoutOffset = .beginning
        var kafka = settings.kafka
        // A subscribed topic that disappears (re-created after a broker lost it) is noticed at the next
        // metadata refresh: every 5 s rather than librdkafka's 5 min (overridable by --kafka-property).
        if kafka.properties["topic.metadata.refresh.interval.ms"] == nil {
            kafka.properties["topic.metadata.refresh.interval.ms"] = "5000"
        }
        // A fetch returns after at most 50 ms even when little has arrived (librdkafka's default 500 ms
        // is the p99 of the receive → commit latency at 15,000 ticks/s otherwise).
        if kafka.properties["fetch.wait.max.ms"] == nil { kafka.properties["fetch.wait.max.ms"] = "50" }
        consumerConfig = kafka
        self.consumerSettings = consumerSettings
        consumer = try KafkaConsumer(config: kafka, settings: consumerSettings)
    }

    /// Consumes until `stop()` returns true (checked between records), the worker has been idle for
    /// `idleExitMilliseconds`, or an error that is not a partition's own; then revokes (commits) and
    /// closes. Throws that error.
    public func run(stop: () -> Bool) throws -> WorkerSummary {
        let handler = KafkaRebalanceHandler(
            assigned: { [unowned self] partitions in assigned(partitions) },
            revoked: { [unowned self] partitions, lost in revoked(partitions, lost: lost) })
        try consumer.subscribe(topics: [settings.topic], rebalance: handler)
        var lastRejoin: Int64 = 0, lastProbe: Int64 = 0
        lastActivity = WallClock.nanos()
        var lastLag = WallClock.nanos()
        var lastError = "", lastErrorLogged: Int64 = 0
        probeBroker(now: WallClock.nanos())
        while failure == nil && !stop() {
            var message: KafkaMessage? = nil
            // At most 50 ms, and no later than a sink wants its poll (the Redis sink's hand-over for `/ws`).
            var wait = 50
            var due: Int64? = nil   // no array per poll
            for work in works.values { if let next = work.pollDue, next < (due ?? .max) { due = next } }
            if let due { wait = Int(min(Int64(wait), max(0, (due - Self.monotonicNanoseconds() + 999_999) / 1_000_000))) }   // rounded up: no spin
            do { message = try consumer.poll(timeoutMilliseconds: wait) } catch let error as KafkaError {
                if error.isFatal { failure = error; break }
                if error.name == "UNKNOWN_TOPIC_OR_PART" || error.name == "_UNKNOWN_TOPIC" { topicGone = true }
                // A partition's own error (e.g. its topic gone while a broker restarts): said once per
                // change or per 10 s, not per poll; not fatal.
                let now = WallClock.nanos()
                if error.description != lastError || now - lastErrorLogged > 10_000_000_000 {
                    logger.warning("tape work: \(error)", metadata: ["error": .string(error.description),
                                                                     "peer": .string(error.peer)])
                    lastError = error.description
                    lastErrorLogged = now
                }
            }
            let now = WallClock.nanos()
            noteBroker(now: now, answered: message != nil)
            if let message {
                lastActivity = now
                handle(message)
            } else if storesAwaySince != nil {
                lastActivity = now   // not idle: waiting for PostgreSQL, with records to read
            } else if let idle = settings.idleExitMilliseconds {
                // Before its first assignment a member waits for the group to form (seconds; a member that
                // left without a word holds its partitions until its session times out): at least 60 s.
                // Likewise while it holds no partition (lost in a rebalance, or its topic re-created).
                let limit = !works.isEmpty ? Int64(idle) : max(Int64(idle), 60_000)
                if now - lastActivity > limit * 1_000_000 { break }
            }
            // The topic went away (a broker that lost its data, or a topic deleted) and the partitions with
            // it; once it is back, join again to take its partitions: librdkafka sees the topic return in its
            // metadata but does not rebalance by itself after an empty assignment. Subscribing again rejoins
            // under the same member id, without leaving: a member that leaves a group while it forms can
            // leave it without a leader on tansu 0.6 (its LeaveGroup keeps the leaver as the leader, and the
            // group never forms). Waits 3, 6, 12 … 60 s between attempts so that a join in progress is not
            // cut; the partitions resume from their PostgreSQL checkpoints.
            let rejoinWait = Int64(min(3 << min(rejoins, 5), 60)) * 1_000_000_000
            if topicGone && works.isEmpty && now - lastActivity > 3_000_000_000 && now - lastRejoin > rejoinWait
                && now - lastProbe > 1_000_000_000 {
                lastProbe = now
                if (try? consumer.queryWatermarks(KafkaTopicPartition(topic: settings.topic, partition: 0),
                                                  timeoutMilliseconds: 1_000)) != nil {
                    lastRejoin = now
                    rejoins += 1
                    do {
                        if rejoins == 1 {
                            logger.notice(.text("tape work: \(name) holds no partition and topic \(settings.topic) is back: "
                                                + "joining group \(settings.group) again"),
                                          metadata: ["topic": .string(settings.topic), "event": "rejoin"])
                        } else {
                            // Joining again under the same member id did not bring an assignment (seen with
                            // tansu after a restart, two members rejoining): join as a new member, without
                            // a LeaveGroup, as a restarted process would.
                            logger.notice("tape work: \(name) still holds no partition: joining group \(settings.group) as a new member",
                                          metadata: ["topic": .string(settings.topic), "event": "rejoin_as_new_member"])
                            consumer.abandon()
                            consumer = try KafkaConsumer(config: consumerConfig, settings: consumerSettings)
                            brokerDownErrors = 0   // the new consumer counts from zero
                        }
                        try consumer.subscribe(topics: [settings.topic], rebalance: handler)
                    } catch {
                        failure = error
                        break
                    }
                }
            }
            if now - lastStoreCheck >= 100_000_000 {
                lastStoreCheck = now
                checkStores(now: now)
            }
            if storesAwaySince == nil { commitDue(now: now) }
            if due != nil {
                let monotonic = Self.monotonicNanoseconds()
                for work in works.values where (work.pollDue ?? .max) <= monotonic { work.pollOtherSinks() }
            }
            if now - lastIdentityProbe > 2_000_000_000 {
                lastIdentityProbe = now
                checkTopicIdentity()
            }
            if now - lastLag > 1_000_000_000 {
                lastLag = now
                updateLag()
                // Metrics keep sampling while caught up (lag, offsets for `--metrics-listen` and InfluxDB).
                for work in works.values { work.pollOtherSinks() }
            }
        }
        // Revoke everything: commit, then leave the group.
        let open = works.keys.sorted()
        if !open.isEmpty { revoked(open.map { KafkaTopicPartition(topic: settings.topic, partition: $0) }, lost: false) }
        try? consumer.close()
        admin?.close()
        if let failure { throw failure }
        return summary
    }

    /// A topic deleted and created again under its name (a broker that keeps topics in memory restarted,
    /// and the ingest created it again) reuses offsets from 0. Kafka answers a fetch past a partition's end
    /// with OFFSET_OUT_OF_RANGE (and `auto.offset.reset` reads it from the beginning: `.offsetReset`), but a
    /// broker may instead answer nothing until the new partition reaches the old position, and librdkafka
    /// (2.10 on) keeps its assignment and fetch positions through a short outage. So the worker watches the
    /// topic's id, and reads every partition it holds from the beginning when the id changes; records
    /// already handled are dropped by their place in the ingest session.
    private func checkTopicIdentity() {
        if admin == nil { admin = try? KafkaAdmin(config: settings.kafka) }
        guard let admin, let id = (try? admin.topicID(topic: settings.topic, timeoutMilliseconds: 1_000)) ?? nil else {
            return   // no answer (the broker is away) or no id: nothing to compare
        }
        guard let known = topicID else { topicID = id; return }
        guard id != known else { return }
        topicID = id
        logger.warning(.text("tape work: topic \(settings.topic) has a new id (\(known) → \(id)): it was re-created (a broker "
                             + "that keeps topics in memory restarted?); reading the partitions held from the beginning, "
                             + "records already handled are skipped"),
                       metadata: ["topic": .string(settings.topic), "event": "topic_recreated"])
        readAgainFromBeginning(works.keys.sorted())
    }

    private func readAgainFromBeginning(_ partitions: [Int32]) {
        guard !partitions.isEmpty else { return }
        var starts: [KafkaTopicPartition: KafkaOffset] = [:]
        for partition in partitions {
            guard let work = works[partition] else { continue }
            work.readAgainFromBeginning()
            summary.offsetResets += 1
            starts[KafkaTopicPartition(topic: settings.topic, partition: partition)] = .beginning
            position[partition] = .beginning
        }
        do { try consumer.seek(starts) } catch { failure = error }
    }

    private func handle(_ message: KafkaMessage) {
        guard let work = works[message.partition] else { return }   // not (or no longer) ours, or waiting
        // Fetched before the partition was paused: read again from `position` once PostgreSQL is back.
        guard !paused.contains(message.partition) else { return }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let outcome = work.handle(offset: message.offset, key: message.key ?? empty, value: message.value ?? empty)
        position[message.partition] = .offset(message.offset + 1)
        switch outcome {
        case .fencePost, .rewind: break   // read again only to check where the partition stands
        default: summary.records += 1
        }
        switch outcome {
        case .handled: break
        case .poison(let detail):
            summary.poison += 1
            settings.faults?.fault(PipelineFault(rule: PipelineFault.poisonRecord,
                                                 subject: "\(settings.topic)[\(message.partition)]", severity: .warning,
                                                 detail: "offset \(message.offset): \(detail); skipped"))
            if summary.poison <= settings.poisonPrintLimit {
                logger.warning(.text("tape work: poison record \(settings.topic)[\(message.partition)] offset \(message.offset): "
                                     + "\(detail); skipped"),
                               metadata: recordMetadata(message, ["event": "poison", "error": .string(detail)]))
            } else if summary.poison == settings.poisonPrintLimit + 1 {
                logger.warning("tape work: more poison records: counted, not printed", metadata: ["event": "poison"])
            }
        case .duplicate:
            summary.duplicates += 1
            if summary.duplicates == 1 {
                logger.notice(.text("tape work: \(settings.topic)[\(message.partition)] offset \(message.offset): a record already handled "
                              + "(resent by the producer, e.g. after a broker restart); skipped (further ones counted)"),
                              metadata: recordMetadata(message, ["event": "duplicate"]))
            }
        case .sessionWithoutEnd:
            logger.notice(.text("tape work: \(settings.topic)[\(message.partition)] offset \(message.offset): a new ingest session began "
                          + "before the previous one ended (the ingest was restarted); the graph continues"),
                          metadata: recordMetadata(message, ["event": "session_without_end"]))
        case .fencePost:
            return   // read again only to check it
        case .rewind(let committed):
            summary.offsetResets += 1
            logger.warning(.text("tape work: \(settings.topic)[\(message.partition)]: the record before the committed offset \(committed) is not the "
                           + "last one handled: the topic was re-created (a broker that keeps topics in memory restarted?); reading it "
                           + "from the beginning, records already handled are skipped"),
                           metadata: recordMetadata(message, ["event": "rewind", "committed_offset": .stringConvertible(Int(committed))]))
            do {
                try consumer.seek([KafkaTopicPartition(topic: settings.topic, partition: message.partition): .beginning])
                position[message.partition] = .beginning
            } catch {
                failure = error
            }
            return
        case .offsetReset(let expected):
            summary.offsetResets += 1
            logger.warning(.text("tape work: \(settings.topic)[\(message.partition)]: offsets went back (expected ≥ \(expected), got "
                           + "\(message.offset)): the topic was re-created (a broker that keeps topics in memory restarted?); "
                           + "continuing with the graph state"),
                           metadata: recordMetadata(message, ["event": "offset_reset", "expected_offset": .stringConvertible(Int(expected))]))
        }
        if work.uncommitted >= settings.commitRecords { commit(message.partition, work) }
    }

    private func commitDue(now: Int64) {
        let interval = Int64(settings.commitMilliseconds) * 1_000_000
        for (partition, work) in works where work.uncommitted > 0 && now - (lastCommit[partition] ?? 0) >= interval {
            commit(partition, work)
        }
    }

    private func commit(_ partition: Int32, _ work: PartitionWork) {
        let started = WallClock.nanos()
        let ok = work.commit()
        lastCommit[partition] = WallClock.nanos()
        summary.commits += 1
        summary.nextOffsets[partition] = work.nextOffset
        if summary.commitLatencyNanoseconds.count < 100_000 { summary.commitLatencyNanoseconds.append(WallClock.nanos() - started) }
        if !ok { give(up: partition, work) }
    }

    /// A partition whose store failed: fenced (another worker has it) is expected after a rebalance we
    /// missed; anything else stops the worker.
    private func give(up partition: Int32, _ work: PartitionWork) {
        works[partition] = nil
        paused.remove(partition)
        position[partition] = nil
        storeTrackers.set(partition, nil)
        let error = work.failure
        try? work.close(commit: false)
        if error is CheckpointFenced {
            summary.fenced += 1
            logger.warning("tape work: \(error!)",
                           metadata: ["event": "fenced", "partition": .stringConvertible(Int(partition))])
        } else if let error {
            failure = error
        }
    }

    private func assigned(_ partitions: [KafkaTopicPartition]) -> [KafkaTopicPartition: KafkaOffset] {
        noteBrokerAnswered(now: WallClock.nanos())
        var starts: [KafkaTopicPartition: KafkaOffset] = [:]
        for tp in partitions.sorted() where tp.topic == settings.topic {
            lastActivity = WallClock.nanos()
            if connection == nil {
                // PostgreSQL is away: taken once it is back (paused until then, by `checkStores`).
                waiting.insert(tp.partition)
                continue
            }
            do {
                starts[tp] = try take(tp)
            } catch let error as PostgresError where error.connectionLost {
                ownConnectionLost(error)
                waiting.insert(tp.partition)
            } catch {
                failure = error
                logger.error("tape work: cannot take \(tp): \(error)",
                             metadata: ["topic": .string(tp.topic), "partition": .stringConvertible(Int(tp.partition)),
                                        "error": .string("\(error)")])
            }
        }
        return starts
    }

    /// Takes the partition from its checkpoint (bumping its epoch) and builds its graph and stores; where to
    /// start reading it.
    private func take(_ tp: KafkaTopicPartition) throws -> KafkaOffset {
        guard let connection else {
            throw PostgresError(peer: postgres.current.peer ?? "postgres", detail: "not connected", connectionLost: true)
        }
        let acquired: WorkerCheckpoints.Acquired
        do {
            acquired = try WorkerCheckpoints.acquire(connection, group: settings.group, topic: tp.topic,
                                                     partition: tp.partition, worker: name)
        } catch let error as PostgresError where error.connectionLost {
            // The connection may only be stale (the server restarted while the worker did not use it): made
            // again once; a server still away throws, and the partition waits (`checkStores`).
            let fresh = try PostgresConnection(url: settings.partition.postgresURL)
            self.connection = fresh
            logger.notice("tape work: \(name): connected to \(fresh.peer) again (\(error.detail))",
                          metadata: ["peer": .string(fresh.peer), "event": "reconnected", "error": .string(error.detail)])
            acquired = try WorkerCheckpoints.acquire(fresh, group: settings.group, topic: tp.topic,
                                                     partition: tp.partition, worker: name)
        }
        let work = try PartitionWork(acquired: acquired, settings: settings.partition)
        works[tp.partition] = work
        storeTrackers.set(tp.partition, work.storeDependency)
        rejoins = 0
        topicGone = false
        lastCommit[tp.partition] = WallClock.nanos()
        lastActivity = WallClock.nanos()
        summary.assignments += 1
        let epoch = acquired.target.epoch
        var metadata: Logger.Metadata = ["topic": .string(tp.topic), "partition": .stringConvertible(Int(tp.partition)),
                                         "epoch": .stringConvertible(Int(epoch)), "event": "took"]
        let start: KafkaOffset
        if let offset = work.startOffset,
           let (low, high) = try? consumer.queryWatermarks(tp), offset > high || offset < low {
            // The committed offset is not in the partition: the topic was re-created (a broker that
            // lost its data). Read what it holds now; the graph continues from its checkpoint.
            start = .beginning
            metadata["offset"] = .stringConvertible(Int(offset))
            logger.warning(.text("tape work: \(name) took \(tp): its committed offset \(offset) is outside the partition "
                           + "(\(low) … \(high)): the topic was re-created; reading it from the beginning with the graph "
                           + "restored (epoch \(epoch))"), metadata: metadata)
        } else if let offset = work.startOffset, let (low, _) = try? consumer.queryWatermarks(tp),
                  work.canCheckFencePost(low: low) {
            // Start at the last record handled, to check that it is still there (a topic re-created
            // with as many records would otherwise pass for the one checkpointed).
            work.expectFencePost()
            start = .offset(offset - 1)
            metadata["offset"] = .stringConvertible(Int(offset))
            logger.info("tape work: \(name) took \(tp) at offset \(offset) (epoch \(epoch), checkpoint restored)",
                        metadata: metadata)
        } else if let offset = work.startOffset {
            start = .offset(offset)
            metadata["offset"] = .stringConvertible(Int(offset))
            logger.info("tape work: \(name) took \(tp) at offset \(offset) (epoch \(epoch), checkpoint restored)",
                        metadata: metadata)
        } else {
            start = .beginning
            logger.info("tape work: \(name) took \(tp) from the beginning (epoch \(epoch), no checkpoint yet)",
                        metadata: metadata)
        }
        position[tp.partition] = start
        return start
    }

    private func revoked(_ partitions: [KafkaTopicPartition], lost: Bool) {
        if lost && !partitions.isEmpty { topicGone = true }
        for tp in partitions.sorted() {
            waiting.remove(tp.partition)
            paused.remove(tp.partition)
            position[tp.partition] = nil
            storeTrackers.set(tp.partition, nil)
            guard let work = works.removeValue(forKey: tp.partition) else { continue }
            summary.revocations += 1
            lastActivity = WallClock.nanos()
            let counters = work.counters
            summary.events += counters.events
            summary.clockTicks += counters.clockTicks
            summary.sessionsEnded += counters.sessionsEnded
            // PostgreSQL away: nothing can be committed; the next owner continues from the committed checkpoint.
            let away = work.storeAway
            var metadata: Logger.Metadata = ["topic": .string(tp.topic), "partition": .stringConvertible(Int(tp.partition))]
            do {
                try work.close(commit: !lost && !away)
                summary.rowsInserted += work.storeCounters.rowsInserted
                summary.endToEnd.add(work.commitLatency)
                if let window = work.tickWindow {
                    let old = summary.tickWindow ?? window
                    summary.tickWindow = (min(old.firstReceive, window.firstReceive), max(old.lastCommit, window.lastCommit))
                }
                summary.nextOffsets[tp.partition] = work.nextOffset
                metadata["offset"] = .stringConvertible(Int(work.nextOffset))
                metadata["event"] = lost || away ? "gave_back_uncommitted" : "gave_back"
                logger.info(.text("tape work: \(name) gave \(tp) back at offset \(work.nextOffset)"
                            + (lost ? " (lost: not committed)" : away ? " (PostgreSQL away: not committed)" : " (committed)")),
                            metadata: metadata)
            } catch is CheckpointFenced {
                summary.fenced += 1
            } catch let error as OutputFailed where error.underlying is CheckpointFenced {
                summary.fenced += 1
                metadata["event"] = "fenced"
                logger.warning("tape work: \(tp): \(error.underlying)", metadata: metadata)
            } catch let error where away {
                metadata["event"] = "gave_back_uncommitted"
                metadata["error"] = .string("\(error)")
                logger.warning(.text("tape work: \(name) gave \(tp) back while PostgreSQL is away: its last commit is lost, the "
                               + "next owner continues from the committed checkpoint (\(error))"), metadata: metadata)
            } catch {
                failure = error
                metadata["error"] = .string("\(error)")
                logger.error("tape work: \(tp): closing failed: \(error)", metadata: metadata)
            }
        }
    }

    // MARK: PostgreSQL away

    /// Every 100 ms: PostgreSQL away (a partition's store holds a batch it cannot commit, or the worker's own
    /// connection is gone) pauses every partition; back (the own connection made again, every held batch
    /// committed) takes the waiting partitions and reads the paused ones again where their graphs stopped.
    private func checkStores(now: Int64) {
        let storeAway = works.values.first { $0.storeAway }
        if let storeAway, storesAwaySince == nil, connection != nil {
            // The same server: the worker's own connection is as gone; made again with the others.
            connection = nil
            nextOwnReconnect = now
            postgres.set(.down, detail: storeAway.storeDependency.current.detail)
        }
        if connection == nil && now >= nextOwnReconnect { reconnectOwn(now: now) }
        let peer = postgres.current.peer ?? "postgres"
        if storeAway != nil || connection == nil {
            if storesAwaySince == nil {
                storesAwaySince = now
                logger.warning(.text("tape work: \(name): PostgreSQL \(peer) is away: reading paused, nothing committed until it is "
                               + "back (the broker keeps the records; retrying with backoff up to "
                               + "\(settings.reconnectMaxMilliseconds / 1000) s)"),
                               metadata: ["peer": .string(peer), "event": "postgres_away",
                                          "error": .string(postgres.current.detail ?? "unreachable")])
            }
            let toPause = Set(works.keys).union(waiting).subtracting(paused)
            if !toPause.isEmpty { pauseReading(toPause) }
            return
        }
        guard let since = storesAwaySince else { return }
        // Back: take the partitions that waited, then read every paused one again.
        var taken = 0
        for partition in waiting.sorted() {
            let tp = KafkaTopicPartition(topic: settings.topic, partition: partition)
            do {
                _ = try take(tp)
                waiting.remove(partition)
                taken += 1
            } catch let error as PostgresError where error.connectionLost {
                ownConnectionLost(error)
                return   // away again: the next check retries
            } catch {
                failure = error
                logger.error("tape work: cannot take \(tp): \(error)",
                             metadata: ["topic": .string(tp.topic), "partition": .stringConvertible(Int(partition)),
                                        "error": .string("\(error)")])
                return
            }
        }
        let resumed = paused.sorted()
        do {
            var seeks: [KafkaTopicPartition: KafkaOffset] = [:]
            for partition in resumed {
                seeks[KafkaTopicPartition(topic: settings.topic, partition: partition)] = position[partition] ?? .beginning
            }
            if !seeks.isEmpty { try consumer.seek(seeks) }
            try consumer.resume(resumed.map { KafkaTopicPartition(topic: settings.topic, partition: $0) })
        } catch {
            failure = error
            return
        }
        paused.removeAll()
        storesAwaySince = nil
        let seconds = Double(now - since) / 1e9
        let positions = resumed.map { partition -> String in
            let start: String
            switch position[partition] ?? .beginning {
            case .offset(let offset): start = "offset \(offset)"
            default: start = "the beginning"
            }
            return "\(settings.topic)[\(partition)] from \(start)"
        }
        let reading = positions.isEmpty ? "nothing held" : positions.joined(separator: ", ")
        let waited = taken == 0 ? "" : "; \(taken) waiting partition(s) taken from the committed checkpoint"
        logger.notice(.text("tape work: \(name): PostgreSQL \(peer) is back after \(String(format: "%.1f", seconds)) s: "
                            + "reading \(reading)\(waited)"),
                      metadata: ["peer": .string(peer), "event": "postgres_back",
                                 "down_seconds": .stringConvertible(seconds),
                                 "partitions_resumed": .array(resumed.map { .stringConvertible(Int($0)) }),
                                 "partitions_taken": .stringConvertible(taken)])
    }

    private func pauseReading(_ partitions: Set<Int32>) {
        do {
            try consumer.pause(partitions.sorted().map { KafkaTopicPartition(topic: settings.topic, partition: $0) })
            paused.formUnion(partitions)
        } catch {
            failure = error
        }
    }

    /// The worker's own connection failed (taking a partition): PostgreSQL is away; retried by `checkStores`.
    private func ownConnectionLost(_ error: PostgresError) {
        connection = nil
        nextOwnReconnect = WallClock.nanos() + ownBackoff.nextDelay()
        postgres.set(.down, detail: error.detail)
    }

    /// One attempt at the worker's own connection (not said: `checkStores` says when PostgreSQL goes and comes).
    private func reconnectOwn(now: Int64) {
        do {
            connection = try PostgresConnection(url: settings.partition.postgresURL)
            ownBackoff.reset()
            postgres.set(.up)
        } catch {
            nextOwnReconnect = now + ownBackoff.nextDelay()
            postgres.set(.down, detail: (error as? PostgresError)?.detail ?? "\(error)")
        }
    }

    // MARK: The broker

    /// librdkafka's error names for a request no broker answered.
    static let unanswered: Set<String> = ["_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE"]

    /// After a poll: every broker down (librdkafka's `_ALL_BROKERS_DOWN`) marks the broker down, said once; a
    /// record marks it up. While down (or before the first answer), it is probed every `brokerProbeMilliseconds`.
    private func noteBroker(now: Int64, answered: Bool) {
        if answered {
            noteBrokerAnswered(now: now)
            return
        }
        let downs = consumer.clientErrors["_ALL_BROKERS_DOWN", default: 0]
        if downs > brokerDownErrors {
            brokerDownErrors = downs
            brokerWentDown(now: now, detail: "every broker is down (\(consumer.lastClientError?.description ?? "_ALL_BROKERS_DOWN"))")
        }
        if !brokerKnownUp && now - lastBrokerProbe >= settings.brokerProbeMilliseconds * 1_000_000 {
            probeBroker(now: now)
        }
    }

    /// Asks the broker for partition 0's watermarks: any answer (an unknown topic included) says it is there.
    private func probeBroker(now: Int64) {
        lastBrokerProbe = now
        do {
            _ = try consumer.queryWatermarks(KafkaTopicPartition(topic: settings.topic, partition: 0), timeoutMilliseconds: 500)
        } catch let error as KafkaError where Self.unanswered.contains(error.name) {
            brokerWentDown(now: now, detail: error.description)
            return
        } catch {
        }
        noteBrokerAnswered(now: WallClock.nanos())
    }

    private func brokerWentDown(now: Int64, detail: String) {
        brokerKnownUp = false
        kafka.set(.down, detail: detail)
        guard brokerDownSince == nil else { return }
        brokerDownSince = now
        logger.warning(.text("tape work: kafka \(settings.kafka.bootstrapServers) unreachable (\(detail)); waiting for it "
                       + "(librdkafka reconnects; the partitions' checkpoints are in PostgreSQL)"),
                       metadata: ["peer": .string(settings.kafka.bootstrapServers), "event": "kafka_away",
                                  "error": .string(detail)])
    }

    private func noteBrokerAnswered(now: Int64) {
        guard !brokerKnownUp else { return }
        brokerKnownUp = true
        kafka.set(.up)
        guard let since = brokerDownSince else { return }
        brokerDownSince = nil
        let seconds = Double(now - since) / 1e9
        logger.notice("tape work: kafka \(settings.kafka.bootstrapServers) reachable again after \(String(format: "%.1f", seconds)) s",
                      metadata: ["peer": .string(settings.kafka.bootstrapServers), "event": "kafka_back",
                                 "down_seconds": .stringConvertible(seconds)])
    }

    /// `topic`, `partition`, `offset` of a record, and `extra`.
    private func recordMetadata(_ message: KafkaMessage, _ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["topic": .string(settings.topic), "partition": .stringConvertible(Int(message.partition)),
                                         "offset": .stringConvertible(Int(message.offset))]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    private func updateLag() {
        var shrunk: [Int32] = []
        for (partition, work) in works {
            guard let high = consumer.highWatermark(KafkaTopicPartition(topic: settings.topic, partition: partition)) else { continue }
            // The partition ends before the next offset: it is not the one read so far (a topic re-created,
            // on a broker that gives no topic ids; see `checkTopicIdentity`).
            if high < work.nextOffset { shrunk.append(partition) }
            summary.lag[partition] = max(0, high - max(work.nextOffset, 0))
            work.lag = summary.lag[partition]
        }
        if !shrunk.isEmpty {
            logger.warning(.text("tape work: \(settings.topic) partitions \(shrunk.sorted()) now end before the next offset: "
                                 + "the topic was re-created; reading them from the beginning, records already handled are skipped"),
                           metadata: ["topic": .string(settings.topic), "event": "topic_recreated",
                                      "partitions": .array(shrunk.sorted().map { .stringConvertible(Int($0)) })])
            readAgainFromBeginning(shrunk.sorted())
        }
    }

    /// Consumer lag per partition, as last measured.
    public var lag: [Int32: Int64] { summary.lag }
}

/// Kafka and PostgreSQL as a worker sees them: set on the worker's thread (the broker: `_ALL_BROKERS_DOWN` →
/// down; a record, an assignment or an answer to a probe → up; PostgreSQL: the worker's own connection and each
/// partition's store), read by `/ready` on another.
public final class WorkerHealth: @unchecked Sendable {
    let kafka: DependencyTracker
    let postgres: DependencyTracker
    let stores = TrackerList()

    init(kafka: DependencyTracker, postgres: DependencyTracker) {
        self.kafka = kafka
        self.postgres = postgres
    }

    /// Kafka, then PostgreSQL — down while the worker's own connection or any partition's store says so.
    public var dependencies: [DependencyState] {
        var database = postgres.current
        if database.status == .up, let away = stores.states().first(where: { $0.status != .up }) {
            database.status = away.status
            database.detail = away.detail
            database.sinceNanoseconds = away.sinceNanoseconds
        }
        return [kafka.current, database]
    }
}

/// The partitions' store trackers, set on the worker's thread and read by `/ready` on another.
final class TrackerList: @unchecked Sendable {
    private let lock = NSLock()
    private var trackers: [Int32: DependencyTracker] = [:]

    func set(_ partition: Int32, _ tracker: DependencyTracker?) {
        lock.withLock { trackers[partition] = tracker }
    }

    func states() -> [DependencyState] {
        lock.withLock { trackers.keys.sorted().map { trackers[$0]!.current } }
    }
}

extension Worker {
    /// CLOCK_MONOTONIC in ns (the clock of `EngineSink.pollDue`).
    static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
