import CRdKafka
import Foundation

/// How a producer batches, compresses and buffers. The defaults suit `tape ingest` on a local or
/// cluster broker; docs/kafka.md has the measured effect of linger and compression.
public struct KafkaProducerSettings: Sendable, Equatable {
    public enum Compression: String, Sendable, Equatable {
        case none, gzip, snappy, lz4, zstd
    }

    /// `linger.ms`: how long a partition's batch waits to fill before it is sent.
    public var lingerMilliseconds = 5
    /// `batch.size`: the largest batch per partition, bytes.
    public var batchBytesMax = 1_000_000
    /// `compression.codec` of the batches.
    public var compression = Compression.lz4
    /// `queue.buffering.max.messages`: records held locally (waiting to be sent or acknowledged) before
    /// `produce` answers `.queueFull`.
    public var queuedMessagesMax = 100_000
    /// `queue.buffering.max.kbytes`: the same bound in kilobytes.
    public var queuedKilobytesMax = 1_048_576
    /// `message.timeout.ms`: a record not acknowledged by then fails its delivery (`_MSG_TIMED_OUT`);
    /// 0 = wait for ever (a broker outage is then only bounded by the queue).
    public var messageTimeoutMilliseconds = 300_000
    /// Serve delivery reports on a thread of the producer (every `pollIntervalMilliseconds`); when
    /// false the caller calls `poll(timeoutMilliseconds:)`.
    public var pollsOnOwnThread = true
    public var pollIntervalMilliseconds = 100

    public init() {}

    var librdkafkaProperties: [(String, String)] {
        [("enable.idempotence", "true"), ("acks", "all"),
         ("linger.ms", String(lingerMilliseconds)), ("batch.size", String(batchBytesMax)),
         ("compression.codec", compression.rawValue),
         ("queue.buffering.max.messages", String(queuedMessagesMax)),
         ("queue.buffering.max.kbytes", String(queuedKilobytesMax)),
         ("message.timeout.ms", String(messageTimeoutMilliseconds))]
    }
}

/// A record whose delivery failed for good (its `message.timeout.ms` passed, …), as it was produced:
/// what a caller that must not lose records resends through a new producer.
public struct KafkaFailedRecord: Sendable, Equatable {
    public var key: [UInt8]?
    public var value: [UInt8]?
    /// The partition it was produced to, or nil when librdkafka was to choose (by key).
    public var partition: Int32?
    public var timestampMilliseconds: Int64
    /// librdkafka's error name (`_MSG_TIMED_OUT`, …).
    public var errorName: String

    public init(key: [UInt8]?, value: [UInt8]?, partition: Int32?, timestampMilliseconds: Int64, errorName: String) {
        self.key = key; self.value = value; self.partition = partition
        self.timestampMilliseconds = timestampMilliseconds; self.errorName = errorName
    }
}

/// What `produce` did with a record.
public enum KafkaProduceResult: Sendable, Equatable {
    /// In the local queue; its delivery report comes later (counted in `counters`).
    case enqueued
    /// The local queue is at `queuedMessagesMax` or `queuedKilobytesMax`: nothing was queued. The caller
    /// waits (delivery reports free space; `poll` serves them when there is no poll thread) and retries,
    /// or drops and counts.
    case queueFull
}

/// The outcome of one record, as its delivery report said.
public struct KafkaDeliveryReport: Sendable, Equatable {
    /// Where the record went (nil: it failed before a partition was chosen).
    public var topicPartition: KafkaTopicPartition?
    /// The record's offset in its partition (delivered records).
    public var offset: Int64
    /// nil when delivered; otherwise librdkafka's error name (`_MSG_TIMED_OUT`, …).
    public var errorName: String?
}

/// A producer's counters since it was made.
public struct KafkaProducerCounters: Sendable, Equatable {
    public init() {}
    /// Records `produce` queued.
    public var enqueued = 0
    /// `produce` calls answered `.queueFull`.
    public var queueFull = 0
    /// Delivery reports: acknowledged by the broker.
    public var delivered = 0
    /// Delivery reports: failed, by librdkafka's error name.
    public var failedByError: [String: Int] = [:]
    /// Client errors seen (broker down, …), by name: informational, librdkafka keeps retrying.
    public var clientErrors: [String: Int] = [:]

    public var failed: Int { failedByError.values.reduce(0, +) }
    /// Queued, without a delivery report yet.
    public var awaitingReport: Int { enqueued - delivered - failed }
}

/// An idempotent Kafka producer (`enable.idempotence=true`, `acks=all`): records of one partition are
/// written once and in order, even when librdkafka retries after a broker failure.
///
/// ```swift
/// let producer = try KafkaProducer(config: config)
/// let result = try producer.produce(topic: "tick_data", key: Array("BTCUSDT".utf8), value: bytes,
///                                   timestampMilliseconds: receiveTime / 1_000_000)   // .enqueued / .queueFull
/// producer.close()   // flushes, then releases
/// ```
/// Records are copied into librdkafka's queue by `produce` (no per-record allocation on the Swift side
/// for the key and value). Delivery reports are counted (`counters`) and passed to `onDelivery`, on the
/// producer's poll thread (or in `poll`). `produce` may be called from several threads.
public final class KafkaProducer: @unchecked Sendable {
    public let config: KafkaConfig
    public let settings: KafkaProducerSettings
    private let client: OpaquePointer
    private let state: ProducerState
    private let lock = NSLock()
    private var topics: [String: OpaquePointer] = [:]
    private var closed = false
    private var pollThreadDone: DispatchSemaphore? = nil

    /// - Parameter onDelivery: called with every delivery report, on the thread serving them.
    /// - Parameter onFailure: called with a copy of every record whose delivery failed (only then: the
    ///   delivered path copies nothing), on the same thread, in the order librdkafka reports them (per
    ///   partition: the order they were produced in).
    public init(config: KafkaConfig, settings: KafkaProducerSettings = KafkaProducerSettings(),
                onDelivery: (@Sendable (KafkaDeliveryReport) -> Void)? = nil,
                onFailure: (@Sendable (KafkaFailedRecord) -> Void)? = nil) throws {
        precondition(settings.queuedMessagesMax > 0 && settings.queuedKilobytesMax > 0, "the local queue is bounded")
        self.config = config
        self.settings = settings
        state = ProducerState(onDelivery: onDelivery, onFailure: onFailure)
        let conf = try config.makeConf(defaults: settings.librdkafkaProperties)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            Unmanaged<ProducerState>.fromOpaque(opaque).takeUnretainedValue().report(message)
        }
        rd_kafka_conf_set_error_cb(conf) { _, error, _, opaque in
            guard let opaque else { return }
            Unmanaged<ProducerState>.fromOpaque(opaque).takeUnretainedValue().clientError(rd_kafka_resp_err_t(error))
        }
        client = try config.makeClient(RD_KAFKA_PRODUCER, conf: conf, role: "producer")
        if settings.pollsOnOwnThread { startPollThread() }
    }

    deinit {
        if !closed { close(timeoutMilliseconds: 0) }
    }

    /// Queues one record. `key` and `value` are copied before this returns (either may be nil: a null
    /// key goes to a partition of librdkafka's choosing, a null value is a tombstone).
    /// - Parameters:
    ///   - timestampMilliseconds: the record's timestamp (ms since the epoch); 0 = now.
    ///   - partition: nil = by key (librdkafka's default partitioner: murmur2-compatible with the Java
    ///     client's for keyed records), else this partition.
    /// - Throws: `KafkaError` for a record that can never be sent (too large, unknown partition, a
    ///   fatal producer error); a full queue is not an error but `.queueFull`.
    public func produce(topic: String, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
                        headers: [KafkaHeader] = [], timestampMilliseconds: Int64 = 0,
                        partition: Int32? = nil) throws -> KafkaProduceResult {
        precondition(timestampMilliseconds >= 0, "a record timestamp is not negative")
        let topicHandle = try handle(topic)
        var headerList: OpaquePointer? = nil
        if !headers.isEmpty {
            headerList = rd_kafka_headers_new(headers.count)
            for header in headers {
                let added = header.value.withUnsafeBytes { bytes in
                    rd_kafka_header_add(headerList, header.name, -1, bytes.baseAddress, bytes.count)
                }
                // Only a read-only list (a consumed message's) refuses an addition.
                precondition(added == RD_KAFKA_RESP_ERR_NO_ERROR, "a new header list takes headers")
            }
        }
        let error = tape_rd_kafka_produce(client, topicHandle, partition ?? RD_KAFKA_PARTITION_UA,
                                          key?.baseAddress, key?.count ?? 0, value?.baseAddress, value?.count ?? 0,
                                          headerList, timestampMilliseconds, 0)
        if error == RD_KAFKA_RESP_ERR_NO_ERROR {
            state.enqueued()
            return .enqueued
        }
        if let headerList { rd_kafka_headers_destroy(headerList) }
        if error == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            state.queueFull()
            return .queueFull
        }
        throw KafkaError(operation: "produce \(topic)", peer: config.bootstrapServers, code: error,
                         isFatal: error == RD_KAFKA_RESP_ERR__FATAL)
    }

    /// The partition librdkafka's default partitioner (`consistent_random`: CRC-32 of the key modulo the
    /// count) picks for `key` among `count` partitions — computed here, so a caller can pin a key to a
    /// partition of the topic as it was made, even if the topic later has more (re-created by a broker's
    /// auto-creation with its default count).
    public static func partition(forKey key: UnsafeRawBufferPointer, count: Int32) -> Int32 {
        precondition(count > 0 && key.count > 0, "a key and at least one partition")
        return rd_kafka_msg_partitioner_consistent_random(nil, key.baseAddress, key.count, count, nil, nil)
    }

    /// `produce` with keys and values as byte arrays (or `Array(string.utf8)`).
    public func produce(topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [],
                        timestampMilliseconds: Int64 = 0, partition: Int32? = nil) throws -> KafkaProduceResult {
        try withOptionalBytes(key) { keyBytes in
            try withOptionalBytes(value) { valueBytes in
                try produce(topic: topic, key: keyBytes, value: valueBytes, headers: headers,
                            timestampMilliseconds: timestampMilliseconds, partition: partition)
            }
        }
    }

    /// Serves delivery reports and client errors (only needed without the poll thread); returns how
    /// many events were served.
    @discardableResult
    public func poll(timeoutMilliseconds: Int = 0) -> Int {
        Int(rd_kafka_poll(client, Int32(timeoutMilliseconds)))
    }

    /// Waits until every queued record has its delivery report, at most `timeoutMilliseconds`; returns
    /// how many are still waiting (0: all reported, delivered or failed — see `counters`).
    @discardableResult
    public func flush(timeoutMilliseconds: Int) -> Int {
        _ = rd_kafka_flush(client, Int32(timeoutMilliseconds))
        return Int(rd_kafka_outq_len(client))
    }

    /// Records and requests still in librdkafka's queues (not yet reported).
    public var queued: Int { Int(rd_kafka_outq_len(client)) }

    public var counters: KafkaProducerCounters { state.snapshot() }

    /// The producer's fatal error, if it has one (an idempotent producer that cannot keep its
    /// guarantees); it must then be closed.
    public var fatalError: KafkaError? {
        var code = RD_KAFKA_RESP_ERR_NO_ERROR
        let text = ErrorText.capture { buffer, capacity in
            code = rd_kafka_fatal_error(client, buffer, capacity)
            return code == RD_KAFKA_RESP_ERR_NO_ERROR
        }
        guard let text else { return nil }
        return KafkaError(operation: "produce", peer: config.bootstrapServers, code: code, detail: text, isFatal: true)
    }

    /// Flushes for at most `timeoutMilliseconds`, stops the poll thread and releases the client; returns
    /// how many records were still unreported (and are dropped). Idempotent.
    @discardableResult
    public func close(timeoutMilliseconds: Int = 30_000) -> Int {
        lock.lock()
        if closed {
            lock.unlock()
            return 0
        }
        closed = true
        lock.unlock()
        let left = flush(timeoutMilliseconds: timeoutMilliseconds)
        state.stopPolling()
        pollThreadDone?.wait()
        for handle in topics.values { rd_kafka_topic_destroy(handle) }
        topics = [:]
        rd_kafka_destroy(client)
        return left
    }

    private func handle(_ topic: String) throws -> OpaquePointer {
        lock.lock()
        defer { lock.unlock() }
        precondition(!closed, "producer used after close")
        if let handle = topics[topic] { return handle }
        guard let handle = rd_kafka_topic_new(client, topic, nil) else {
            throw KafkaError(operation: "produce \(topic)", peer: config.bootstrapServers, code: rd_kafka_last_error())
        }
        topics[topic] = handle
        return handle
    }

    private func startPollThread() {
        let done = DispatchSemaphore(value: 0)
        pollThreadDone = done
        let client = UncheckedClient(pointer: client)
        let state = state
        let interval = Int32(settings.pollIntervalMilliseconds)
        let thread = Thread {
            while state.keepsPolling { rd_kafka_poll(client.pointer, interval) }
            rd_kafka_poll(client.pointer, 0)
            done.signal()
        }
        thread.name = "tape-kafka-producer-poll"
        thread.start()
    }
}

/// librdkafka handles are thread-safe; this carries one to the poll thread.
struct UncheckedClient: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Counters and the delivery callback, shared by the producing threads and the poll thread.
final class ProducerState: @unchecked Sendable {
    private let lock = NSLock()
    private var counters = KafkaProducerCounters()
    private var polling = true
    private let onDelivery: (@Sendable (KafkaDeliveryReport) -> Void)?
    private let onFailure: (@Sendable (KafkaFailedRecord) -> Void)?

    init(onDelivery: (@Sendable (KafkaDeliveryReport) -> Void)?, onFailure: (@Sendable (KafkaFailedRecord) -> Void)?) {
        self.onDelivery = onDelivery
        self.onFailure = onFailure
    }

    func enqueued() {
        lock.lock()
        counters.enqueued += 1
        lock.unlock()
    }

    func queueFull() {
        lock.lock()
        counters.queueFull += 1
        lock.unlock()
    }

    func report(_ pointer: UnsafePointer<rd_kafka_message_t>) {
        let message = pointer.pointee
        let failed = message.err != RD_KAFKA_RESP_ERR_NO_ERROR
        if failed, let onFailure {
            var kind = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(pointer, &kind)
            func bytes(_ base: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8]? {
                guard let base else { return nil }
                return Array(UnsafeRawBufferPointer(start: base, count: count))
            }
            onFailure(KafkaFailedRecord(key: bytes(message.key, message.key_len), value: bytes(message.payload, message.len),
                                        partition: message.partition >= 0 ? message.partition : nil,
                                        timestampMilliseconds: max(timestamp, 0), errorName: KafkaError.name(of: message.err)))
        }
        let name = failed ? KafkaError.name(of: message.err) : nil
        lock.lock()
        if let name {
            counters.failedByError[name, default: 0] += 1
        } else {
            counters.delivered += 1
        }
        lock.unlock()
        guard let onDelivery else { return }
        // A record that failed before a partition was chosen has none (partition -1): then nil.
        let topicPartition = message.partition < 0 ? nil : message.rkt.map {
            KafkaTopicPartition(topic: String(cString: rd_kafka_topic_name($0)), partition: message.partition)
        }
        onDelivery(KafkaDeliveryReport(topicPartition: topicPartition, offset: message.offset, errorName: name))
    }

    func clientError(_ error: rd_kafka_resp_err_t) {
        let name = KafkaError.name(of: error)
        lock.lock()
        counters.clientErrors[name, default: 0] += 1
        lock.unlock()
    }

    func snapshot() -> KafkaProducerCounters {
        lock.lock()
        defer { lock.unlock() }
        return counters
    }

    var keepsPolling: Bool {
        lock.lock()
        defer { lock.unlock() }
        return polling
    }

    func stopPolling() {
        lock.lock()
        polling = false
        lock.unlock()
    }
}

func withOptionalBytes<Result>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> Result) rethrows -> Result {
    guard let bytes else { return try body(nil) }
    return try bytes.withUnsafeBytes { try body($0) }
}
