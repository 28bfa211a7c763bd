import Foundation
import TapeCore
import TapeClock
import TapeWork
import TapeKafka
import TapeLogging

/// `tape ingest`'s producer: `TickBusSink`'s records into a Kafka topic (idempotent producer: no
/// duplicates and per-partition order kept through retries). While the broker is away librdkafka keeps
/// records in its bounded local queue and resends them; when that queue is full the engine thread waits
/// here (counted, `blocked_ns`) — the stream is never dropped. A delivery that fails for good (its
/// `message.timeout.ms` passed, a fatal error) is the sink's failure: the session stops (exit 5) and
/// its recording still holds every tick.
///
/// The broker's state (`dependency`, `/ready`): down when librdkafka reports every broker down, up again at
/// the next acknowledged record; each change is logged once, the recovery with the outage's length.
public final class KafkaTickPublisher: TickPublisher, @unchecked Sendable {
    public let topic: String
    public let partitionCount: Int32
    private let config: KafkaConfig
    private let settings: KafkaProducerSettings
    private var producer: KafkaProducer!
    private let flushTimeoutMilliseconds: Int
    private let logger: Logger
    /// The broker as the producer sees it (engine thread writes, any thread reads).
    public let dependency: DependencyTracker
    private var brokerDownErrors = 0
    private var deliveredSeen = 0
    private var brokerDownSince: Int64? = nil
    private var lastBrokerCheck: Int64 = 0
    private var blockedNanoseconds: Int64 = 0
    private var blockedWaits = 0
    private var sendFailure: (any Error)? = nil
    /// Counters of the producers replaced so far (a new one starts at zero).
    private var earlier = KafkaProducerCounters()

    // Recovery: records whose delivery failed (reported on the producer's thread, under `lock`), and the
    // records published since the first failure (held back so that they follow the failed ones).
    private let lock = NSLock()
    private var failedRecords: [KafkaFailedRecord] = []
    private var heldBack: [KafkaFailedRecord] = []
    private var recovering = false
    private var lastRecoveryAttempt: Int64 = 0
    public private(set) var recoveries = 0
    public private(set) var resent = 0
    /// Held-back records beyond which the engine waits for the recovery (back-pressure, not loss).
    public var heldBackMaximum = 2_000_000

    /// Connects, creates `topic` with `partitions` partitions when it does not exist (an existing topic
    /// keeps its count, which is then used), and starts the producer.
    public init(config: KafkaConfig, topic: String, partitions: Int, settings: KafkaProducerSettings = KafkaProducerSettings(),
                flushTimeoutSeconds: Double = 60, logger: Logger = Logger(label: "tape.kafka")) throws {
        self.topic = topic
        self.config = config
        self.settings = settings
        var logger = logger
        logger[metadataKey: "peer"] = .string(config.bootstrapServers)
        logger[metadataKey: "topic"] = .string(topic)
        self.logger = logger
        dependency = DependencyTracker(name: "kafka", status: .connecting, peer: config.bootstrapServers)
        let admin = try KafkaAdmin(config: config)
        defer { admin.close() }
        _ = try admin.createTopic(topic, partitions: partitions)
        guard let count = try admin.partitionCount(topic: topic), count > 0 else {
            throw KafkaError(operation: "describe topic \(topic)", peer: config.bootstrapServers, code: -1,
                             name: "UNKNOWN_TOPIC", message: "the topic has no partitions after creation")
        }
        partitionCount = Int32(count)
        flushTimeoutMilliseconds = Int(flushTimeoutSeconds * 1000)
        producer = try makeProducer()
        dependency.set(.up)   // the broker answered the topic's creation
    }

    private func makeProducer() throws -> KafkaProducer {
        try KafkaProducer(config: config, settings: settings, onFailure: { [weak self] record in
            guard let self else { return }
            self.lock.lock()
            self.failedRecords.append(record)
            self.recovering = true
            self.lock.unlock()
        })
    }

    private var isRecovering: Bool {
        lock.lock(); defer { lock.unlock() }
        return recovering
    }

    public func publish(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?, timestampMs: Int64) {
        guard sendFailure == nil else { return }
        // A keyed record goes to the partition the default partitioner picks among the topic's partitions as
        // this publisher made it: a broker that lost the topic may auto-create it with more partitions
        // before the recovery re-creates it, and a symbol must not move to another partition (its graph
        // state lives with the old one).
        var partition = partition
        if partition == nil, let key, key.count > 0 {
            partition = KafkaProducer.partition(forKey: key, count: partitionCount)
        }
        if isRecovering {
            // After a failed delivery, later records wait behind the failed ones (per-partition order).
            holdBack(key: key, value: value, partition: partition, timestampMs: timestampMs, errorName: "")
            while heldBack.count >= heldBackMaximum && sendFailure == nil && isRecovering { recover(); usleep(10_000) }
            recover()
            return
        }
        send(key: key, value: value, partition: partition, timestampMs: timestampMs)
    }

    /// Keeps a copy of the record for the producer that recovery makes (sent after the failed records).
    private func holdBack(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, partition: Int32?, timestampMs: Int64,
                          errorName: String) {
        heldBack.append(KafkaFailedRecord(key: key.map { Array($0) }, value: value.map { Array($0) }, partition: partition,
                                          timestampMilliseconds: max(timestampMs, 0), errorName: errorName))
    }

    /// Queues one record on the current producer, waiting while its bounded queue is full.
    private func send(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, partition: Int32?, timestampMs: Int64) {
        var waitStart: Int64 = 0
        while true {
            let result: KafkaProduceResult
            do {
                result = try producer.produce(topic: topic, key: key, value: value,
                                              timestampMilliseconds: max(timestampMs, 0), partition: partition)
            } catch {
                if let fatal = producer.fatalError, Self.brokerLostState.contains(fatal.name) {
                    // The producer died of a broker that lost its state: this record goes to the new one.
                    holdBack(key: key, value: value, partition: partition, timestampMs: timestampMs, errorName: fatal.name)
                    lock.lock(); recovering = true; lock.unlock()
                } else {
                    sendFailure = error
                }
                return
            }
            if result == .enqueued { break }
            // The bounded local queue is full (broker away or slower than the feed): wait, never drop.
            if waitStart == 0 { waitStart = WallClock.nanos(); blockedWaits += 1 }
            if let fatal = producer.fatalError {
                if Self.brokerLostState.contains(fatal.name) {
                    // Kept for the new producer, behind the records that failed.
                    holdBack(key: key, value: value, partition: partition, timestampMs: timestampMs, errorName: fatal.name)
                    lock.lock(); recovering = true; lock.unlock()
                } else {
                    sendFailure = fatal
                }
                return
            }
            usleep(1_000)
        }
        if waitStart != 0 { blockedNanoseconds += WallClock.nanos() - waitStart }
    }

    /// Once every record of the current producer has its report: re-creates the topic if the broker lost
    /// it, makes a new producer (a broker that lost its state refuses the old producer id for ever), and
    /// sends the failed records, then the held-back ones, in order. Tried at most once a second.
    private func recover() {
        guard isRecovering else { return }
        let now = WallClock.nanos()
        guard now - lastRecoveryAttempt > 1_000_000_000 else { return }
        lastRecoveryAttempt = now
        guard producer.queued == 0 else { return }   // reports still to come: they join `failedRecords`
        do {
            let admin = try KafkaAdmin(config: config)
            defer { admin.close() }
            if try admin.partitionCount(topic: topic, timeoutMilliseconds: 2_000) == nil {
                _ = try admin.createTopic(topic, partitions: Int(partitionCount))
                logger.warning(.text("tape: kafka \(config.bootstrapServers): topic \(topic) was gone (a broker that lost its data?); "
                               + "re-created with \(partitionCount) partitions"), metadata: ["event": "topic_recreated"])
            }
        } catch {
            return   // broker still away: the next attempt in a second
        }
        let old: KafkaProducer = producer
        do { producer = try makeProducer() } catch { return }
        let oldCounters = old.counters
        old.close(timeoutMilliseconds: 0)
        earlier.enqueued += oldCounters.enqueued
        earlier.delivered += oldCounters.delivered
        for (name, count) in oldCounters.failedByError { earlier.failedByError[name, default: 0] += count }
        for (name, count) in oldCounters.clientErrors { earlier.clientErrors[name, default: 0] += count }
        lock.lock()
        let failed = failedRecords
        failedRecords.removeAll()
        recovering = false
        lock.unlock()
        let records = failed + heldBack
        heldBack.removeAll()
        for record in records {
            withOptionalBytes(record.key) { key in
                withOptionalBytes(record.value) { value in
                    send(key: key, value: value, partition: record.partition, timestampMs: record.timestampMilliseconds)
                }
            }
        }
        recoveries += 1
        resent += failed.count
        let errors = Set(failed.map(\.errorName)).sorted().joined(separator: ", ")
        logger.notice(.text("tape: kafka \(config.bootstrapServers): \(failed.count) records whose delivery failed (\(errors)) "
                      + "resent through a new producer, then \(records.count - failed.count) held back behind them"),
                      metadata: ["event": "resent", "error": .string(errors), "records_resent": .stringConvertible(failed.count),
                                 "records_held_back": .stringConvertible(records.count - failed.count)])
    }

    public func poll() {
        noteFatal()
        recover()
        noteBroker()
    }

    /// Every broker down (librdkafka's `_ALL_BROKERS_DOWN`) → down, said once; the next acknowledged record →
    /// up, said with the outage's length.
    private func noteBroker() {
        let now = WallClock.nanos()
        guard now - lastBrokerCheck >= 100_000_000 else { return }   // the counters are merged: not per record
        lastBrokerCheck = now
        let counts = counters
        if counts.clientErrors["_ALL_BROKERS_DOWN", default: 0] > brokerDownErrors {
            brokerDownErrors = counts.clientErrors["_ALL_BROKERS_DOWN", default: 0]
            deliveredSeen = counts.delivered
            dependency.set(.down, detail: "every broker is down (_ALL_BROKERS_DOWN)")
            if brokerDownSince == nil {
                brokerDownSince = WallClock.nanos()
                logger.warning(.text("tape: kafka \(config.bootstrapServers): unreachable (every broker is down); records wait in "
                               + "the producer's queue (the engine waits when it is full) and are resent"),
                               metadata: ["event": "down", "error": "_ALL_BROKERS_DOWN", "queued": .stringConvertible(producer.queued)])
            }
        } else if counts.delivered > deliveredSeen {
            deliveredSeen = counts.delivered
            guard let since = brokerDownSince else { return }
            brokerDownSince = nil
            dependency.set(.up)
            let seconds = Double(WallClock.nanos() - since) / 1e9
            logger.notice(.text("tape: kafka \(config.bootstrapServers): reachable again after \(String(format: "%.1f", seconds)) s; "
                          + "records acknowledged again"), metadata: ["event": "up", "down_seconds": .stringConvertible(seconds)])
        }
    }

    /// A fatal error of the producer: a broker that lost its state (restarted with memory storage, as tansu
    /// here) refuses the old producer id for ever — recovered by a new producer like a failed delivery,
    /// whichever of the two the engine sees first (under load the fatal error can be seen before the
    /// failed records' reports). Any other fatal error fails the sink.
    private func noteFatal() {
        guard sendFailure == nil, let fatal = producer.fatalError else { return }
        if Self.brokerLostState.contains(fatal.name) {
            lock.lock()
            recovering = true
            lock.unlock()
        } else {
            sendFailure = fatal
        }
    }

    static let brokerLostState: Set<String> = ["UNKNOWN_PRODUCER_ID", "OUT_OF_ORDER_SEQUENCE_NUMBER", "INVALID_PRODUCER_EPOCH"]

    public var failure: (any Error)? { poll(); return sendFailure }

    /// Waits until every record is acknowledged — through recoveries — or `flushTimeoutSeconds` pass.
    public func flush() throws {
        let deadline = WallClock.nanos() + Int64(flushTimeoutMilliseconds) * 1_000_000
        while true {
            _ = producer.flush(timeoutMilliseconds: 200)
            poll()
            if let sendFailure { throw sendFailure }
            if producer.queued == 0 && !isRecovering && heldBack.isEmpty { return }
            if WallClock.nanos() > deadline {
                lock.lock(); let failed = failedRecords.count; lock.unlock()
                throw KafkaError(operation: "flush \(topic)", peer: config.bootstrapServers, code: -1, name: "_TIMED_OUT",
                                 message: "\(producer.queued + failed + heldBack.count) records still unacknowledged after "
                                    + "\(flushTimeoutMilliseconds / 1000) s")
            }
        }
    }

    public func close() throws {
        let left = producer.close(timeoutMilliseconds: flushTimeoutMilliseconds)
        if let sendFailure { throw sendFailure }
        if left > 0 {
            throw KafkaError(operation: "close producer", peer: config.bootstrapServers, code: -1, name: "_TIMED_OUT",
                             message: "\(left) records were never acknowledged")
        }
    }

    /// Every producer's counters so far, added.
    public var counters: KafkaProducerCounters {
        var c = producer.counters
        c.enqueued += earlier.enqueued
        c.delivered += earlier.delivered
        for (name, count) in earlier.failedByError { c.failedByError[name, default: 0] += count }
        for (name, count) in earlier.clientErrors { c.clientErrors[name, default: 0] += count }
        return c
    }

    /// Times every broker was out of reach at once (librdkafka's `_ALL_BROKERS_DOWN`, every producer so
    /// far): the alerts' `bus_outage` watches it. Read on the engine thread.
    public var brokerOutages: Int { counters.clientErrors["_ALL_BROKERS_DOWN", default: 0] }

    public var report: JSONValue {
        let c = counters
        return .object([
            ("topic", .string(topic)), ("partitions", .int(Int64(partitionCount))),
            ("enqueued", .int(Int64(c.enqueued))), ("delivered", .int(Int64(c.delivered))),
            ("failed_then_resent", .int(Int64(c.failed))), ("recoveries", .int(Int64(recoveries))),
            ("queue_full_waits", .int(Int64(blockedWaits))), ("blocked_ns", .int(blockedNanoseconds)),
            ("client_errors", .object(c.clientErrors.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
        ])
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}
