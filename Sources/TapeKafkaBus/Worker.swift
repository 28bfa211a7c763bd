import Foundation
import TapeCore
import TapeClock
import TapeStore
import TapeSinks
import TapeWork
import TapeKafka
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
/// callbacks, the records and the commits all run on the thread that calls `run`.
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
    /// The worker's own connection (checkpoints are acquired on it; each partition's sink has its own).
    private var connection: PostgresConnection
    private var works: [Int32: PartitionWork] = [:]
    private var lastCommit: [Int32: Int64] = [:]
    private var failure: (any Error)? = nil
    /// The last record or assignment (the idle exit counts from it: a group forms in seconds).
    private var lastActivity: Int64 = 0
    private var summary = WorkerSummary()
    private let log: @Sendable (String) -> Void

    public init(settings: WorkerSettings, name: String, log: @escaping @Sendable (String) -> Void) throws {
        self.settings = settings
        self.name = name
        self.log = log
        connection = try PostgresConnection(url: settings.partition.postgresURL)
        try StoreSchema.migrate(connection)
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
        while failure == nil && !stop() {
            var message: KafkaMessage? = nil
            do { message = try consumer.poll(timeoutMilliseconds: 50) } catch let error as KafkaError {
                if error.isFatal { failure = error; break }
                if error.name == "UNKNOWN_TOPIC_OR_PART" || error.name == "_UNKNOWN_TOPIC" { topicGone = true }
                // A partition's own error (e.g. its topic gone while a broker restarts): said once per
                // change or per 10 s, not per poll; not fatal.
                let now = WallClock.nanos()
                if error.description != lastError || now - lastErrorLogged > 10_000_000_000 {
                    log("tape work: \(error)")
                    lastError = error.description
                    lastErrorLogged = now
                }
            }
            let now = WallClock.nanos()
            if let message {
                lastActivity = now
                handle(message)
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
                            log("tape work: \(name) holds no partition and topic \(settings.topic) is back: joining group \(settings.group) again")
                        } else {
                            // Joining again under the same member id did not bring an assignment (seen with
                            // tansu after a restart, two members rejoining): join as a new member, without
                            // a LeaveGroup, as a restarted process would.
                            log("tape work: \(name) still holds no partition: joining group \(settings.group) as a new member")
                            consumer.abandon()
                            consumer = try KafkaConsumer(config: consumerConfig, settings: consumerSettings)
                        }
                        try consumer.subscribe(topics: [settings.topic], rebalance: handler)
                    } catch {
                        failure = error
                        break
                    }
                }
            }
            commitDue(now: now)
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
        log("tape work: topic \(settings.topic) has a new id (\(known) → \(id)): it was re-created (a broker that keeps "
            + "topics in memory restarted?); reading the partitions held from the beginning, records already handled are skipped")
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
        }
        do { try consumer.seek(starts) } catch { failure = error }
    }

    private func handle(_ message: KafkaMessage) {
        guard let work = works[message.partition] else { return }   // not (or no longer) ours
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let outcome = work.handle(offset: message.offset, key: message.key ?? empty, value: message.value ?? empty)
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
                log("tape work: poison record \(settings.topic)[\(message.partition)] offset \(message.offset): \(detail); skipped")
            } else if summary.poison == settings.poisonPrintLimit + 1 {
                log("tape work: more poison records: counted, not printed")
            }
        case .duplicate:
            summary.duplicates += 1
            if summary.duplicates == 1 {
                log("tape work: \(settings.topic)[\(message.partition)] offset \(message.offset): a record already handled "
                    + "(resent by the producer, e.g. after a broker restart); skipped (further ones counted)")
            }
        case .sessionWithoutEnd:
            log("tape work: \(settings.topic)[\(message.partition)] offset \(message.offset): a new ingest session began "
                + "before the previous one ended (the ingest was restarted); the graph continues")
        case .fencePost:
            return   // read again only to check it
        case .rewind(let committed):
            summary.offsetResets += 1
            log("tape work: \(settings.topic)[\(message.partition)]: the record before the committed offset \(committed) is not the "
                + "last one handled: the topic was re-created (a broker that keeps topics in memory restarted?); reading it "
                + "from the beginning, records already handled are skipped")
            do {
                try consumer.seek([KafkaTopicPartition(topic: settings.topic, partition: message.partition): .beginning])
            } catch {
                failure = error
            }
            return
        case .offsetReset(let expected):
            summary.offsetResets += 1
            log("tape work: \(settings.topic)[\(message.partition)]: offsets went back (expected ≥ \(expected), got "
                + "\(message.offset)): the topic was re-created (a broker that keeps topics in memory restarted?); "
                + "continuing with the graph state")
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
        let error = work.failure
        try? work.close(commit: false)
        if error is CheckpointFenced {
            summary.fenced += 1
            log("tape work: \(error!)")
        } else if let error {
            failure = error
        }
    }

    private func assigned(_ partitions: [KafkaTopicPartition]) -> [KafkaTopicPartition: KafkaOffset] {
        var starts: [KafkaTopicPartition: KafkaOffset] = [:]
        for tp in partitions.sorted() where tp.topic == settings.topic {
            do {
                let acquired = try acquire(tp)
                let work = try PartitionWork(acquired: acquired, settings: settings.partition)
                works[tp.partition] = work
                rejoins = 0
                topicGone = false
                lastCommit[tp.partition] = WallClock.nanos()
                lastActivity = WallClock.nanos()
                summary.assignments += 1
                if let offset = work.startOffset,
                   let (low, high) = try? consumer.queryWatermarks(tp), offset > high || offset < low {
                    // The committed offset is not in the partition: the topic was re-created (a broker that
                    // lost its data). Read what it holds now; the graph continues from its checkpoint.
                    starts[tp] = .beginning
                    log("tape work: \(name) took \(tp): its committed offset \(offset) is outside the partition "
                        + "(\(low) … \(high)): the topic was re-created; reading it from the beginning with the graph "
                        + "restored (epoch \(acquired.target.epoch))")
                } else if let offset = work.startOffset, let (low, _) = try? consumer.queryWatermarks(tp),
                          work.canCheckFencePost(low: low) {
                    // Start at the last record handled, to check that it is still there (a topic re-created
                    // with as many records would otherwise pass for the one checkpointed).
                    work.expectFencePost()
                    starts[tp] = .offset(offset - 1)
                    log("tape work: \(name) took \(tp) at offset \(offset) (epoch \(acquired.target.epoch), checkpoint restored)")
                } else if let offset = work.startOffset {
                    starts[tp] = .offset(offset)
                    log("tape work: \(name) took \(tp) at offset \(offset) (epoch \(acquired.target.epoch), checkpoint restored)")
                } else {
                    starts[tp] = .beginning
                    log("tape work: \(name) took \(tp) from the beginning (epoch \(acquired.target.epoch), no checkpoint yet)")
                }
            } catch {
                failure = error
                log("tape work: cannot take \(tp): \(error)")
            }
        }
        return starts
    }

    /// Takes the partition's checkpoint row. The worker's connection may have been cut since it was last
    /// used (PostgreSQL restarted while the worker held its partitions): it is opened again, with a few
    /// tries over about 15 s (PostgreSQL starting up), before the assignment fails.
    private func acquire(_ tp: KafkaTopicPartition) throws -> WorkerCheckpoints.Acquired {
        var wait = 0.5
        while true {
            do {
                if !connection.isConnected {
                    connection = try PostgresConnection(url: settings.partition.postgresURL)
                    log("tape work: \(name): connected to \(connection.peer) again")
                }
                return try WorkerCheckpoints.acquire(connection, group: settings.group, topic: tp.topic,
                                                     partition: tp.partition, worker: name)
            } catch let error as PostgresError where (error.connectionLost || !connection.isConnected) && wait <= 8 {
                log("tape work: \(name) cannot take \(tp) yet: \(error); trying again in \(wait) s")
                Thread.sleep(forTimeInterval: wait)
                wait *= 2
            }
        }
    }

    private func revoked(_ partitions: [KafkaTopicPartition], lost: Bool) {
        if lost && !partitions.isEmpty { topicGone = true }
        for tp in partitions.sorted() {
            guard let work = works.removeValue(forKey: tp.partition) else { continue }
            summary.revocations += 1
            lastActivity = WallClock.nanos()
            let counters = work.counters
            summary.events += counters.events
            summary.clockTicks += counters.clockTicks
            summary.sessionsEnded += counters.sessionsEnded
            do {
                try work.close(commit: !lost)
                summary.rowsInserted += work.storeCounters.rowsInserted
                summary.endToEnd.add(work.commitLatency)
                if let window = work.tickWindow {
                    let old = summary.tickWindow ?? window
                    summary.tickWindow = (min(old.firstReceive, window.firstReceive), max(old.lastCommit, window.lastCommit))
                }
                summary.nextOffsets[tp.partition] = work.nextOffset
                log("tape work: \(name) gave \(tp) back at offset \(work.nextOffset)" + (lost ? " (lost: not committed)" : " (committed)"))
            } catch is CheckpointFenced {
                summary.fenced += 1
            } catch let error as OutputFailed where error.underlying is CheckpointFenced {
                summary.fenced += 1
                log("tape work: \(tp): \(error.underlying)")
            } catch {
                failure = error
                log("tape work: \(tp): closing failed: \(error)")
            }
        }
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
            log("tape work: \(settings.topic) partitions \(shrunk.sorted()) now end before the next offset: the topic was "
                + "re-created; reading them from the beginning, records already handled are skipped")
            readAgainFromBeginning(shrunk.sorted())
        }
    }

    /// Consumer lag per partition, as last measured.
    public var lag: [Int32: Int64] { summary.lag }
}
