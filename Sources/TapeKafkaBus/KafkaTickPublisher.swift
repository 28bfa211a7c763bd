import Foundation
import TapeCore
import TapeWork
import TapeKafka

/// `tape ingest`'s producer: `TickBusSink`'s records into a Kafka topic (idempotent producer: no
/// duplicates and per-partition order kept through retries). While the broker is away librdkafka keeps
/// records in its bounded local queue and resends them; when that queue is full the engine thread waits
/// here (counted, `blocked_ns`) — the stream is never dropped. A delivery that fails for good (its
/// `message.timeout.ms` passed, a fatal error) is the sink's failure: the session stops (exit 5) and
/// its recording still holds every tick.
public final class KafkaTickPublisher: TickPublisher, @unchecked Sendable {
    public let topic: String
    public let partitionCount: Int32
    private let producer: KafkaProducer
    private let flushTimeoutMilliseconds: Int
    private var blockedNanoseconds: Int64 = 0
    private var blockedWaits = 0
    private var sendFailure: (any Error)? = nil

    /// Connects, creates `topic` with `partitions` partitions when it does not exist (an existing topic
    /// keeps its count, which is then used), and starts the producer.
    public init(config: KafkaConfig, topic: String, partitions: Int, settings: KafkaProducerSettings = KafkaProducerSettings(),
                flushTimeoutSeconds: Double = 60) throws {
        self.topic = topic
        let admin = try KafkaAdmin(config: config)
        defer { admin.close() }
        _ = try admin.createTopic(topic, partitions: partitions)
        guard let count = try admin.partitionCount(topic: topic), count > 0 else {
            throw KafkaError(operation: "describe topic \(topic)", peer: config.bootstrapServers, code: -1,
                             name: "UNKNOWN_TOPIC", message: "the topic has no partitions after creation")
        }
        partitionCount = Int32(count)
        producer = try KafkaProducer(config: config, settings: settings)
        flushTimeoutMilliseconds = Int(flushTimeoutSeconds * 1000)
    }

    public func publish(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?, timestampMs: Int64) {
        guard sendFailure == nil else { return }
        var waitStart: Int64 = 0
        while true {
            let result: KafkaProduceResult
            do {
                result = try producer.produce(topic: topic, key: key, value: value,
                                              timestampMilliseconds: max(timestampMs, 0), partition: partition)
            } catch {
                sendFailure = error
                return
            }
            if result == .enqueued { break }
            // The bounded local queue is full (broker away or slower than the feed): wait, never drop.
            if waitStart == 0 { waitStart = DispatchTime.now().uptimeNanoseconds.asInt64; blockedWaits += 1 }
            if let fatal = producer.fatalError { sendFailure = fatal; return }
            usleep(1_000)
        }
        if waitStart != 0 { blockedNanoseconds += DispatchTime.now().uptimeNanoseconds.asInt64 - waitStart }
    }

    public func poll() {
        if sendFailure == nil, let fatal = producer.fatalError { sendFailure = fatal }
        if sendFailure == nil {
            let counters = producer.counters
            if counters.failed > 0, let reason = counters.failedByError.keys.sorted().first {
                sendFailure = KafkaError(operation: "deliver to \(topic)", peer: producer.config.bootstrapServers, code: -1,
                                         name: reason, message: "\(counters.failed) records were not delivered")
            }
        }
    }

    public var failure: (any Error)? { poll(); return sendFailure }

    public func flush() throws {
        let left = producer.flush(timeoutMilliseconds: flushTimeoutMilliseconds)
        poll()
        if let sendFailure { throw sendFailure }
        if left > 0 {
            throw KafkaError(operation: "flush \(topic)", peer: producer.config.bootstrapServers, code: -1, name: "_TIMED_OUT",
                             message: "\(left) records still unacknowledged after \(flushTimeoutMilliseconds / 1000) s")
        }
    }

    public func close() throws {
        let left = try producer.close(timeoutMilliseconds: flushTimeoutMilliseconds)
        if let sendFailure { throw sendFailure }
        if left > 0 {
            throw KafkaError(operation: "close producer", peer: producer.config.bootstrapServers, code: -1, name: "_TIMED_OUT",
                             message: "\(left) records were never acknowledged")
        }
    }

    public var counters: KafkaProducerCounters { producer.counters }

    public var report: JSONValue {
        let c = producer.counters
        return .object([
            ("topic", .string(topic)), ("partitions", .int(Int64(partitionCount))),
            ("enqueued", .int(Int64(c.enqueued))), ("delivered", .int(Int64(c.delivered))),
            ("failed", .int(Int64(c.failed))), ("queue_full_waits", .int(Int64(blockedWaits))),
            ("blocked_ns", .int(blockedNanoseconds)),
            ("client_errors", .object(c.clientErrors.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
        ])
    }
}

extension UInt64 {
    var asInt64: Int64 { Int64(truncatingIfNeeded: self) }
}
