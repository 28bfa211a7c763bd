import CRdKafka
import Foundation

/// How a consumer joins its group and where it starts.
public struct KafkaConsumerSettings: Sendable, Equatable {
    /// `group.id`: members of one group split the partitions of the topics they subscribe to. nil: no
    /// group (manual `assign` only; no `subscribe`, no `commit`). librdkafka wants a group id even for
    /// manual assignment; without one, the consumer gets a private `tape-manual-…` id that it never uses
    /// to join or commit.
    public var groupID: String?
    /// `auto.offset.reset`: where a partition without a committed (or given) offset starts.
    public var startWithoutOffset = KafkaOffset.beginning
    /// `enable.auto.commit`: off by default, so offsets are committed by the caller (or kept elsewhere,
    /// e.g. in PostgreSQL with the outputs).
    public var autoCommit = false
    /// `session.timeout.ms`: a member silent this long is out of the group.
    public var sessionTimeoutMilliseconds = 10_000
    /// `max.poll.interval.ms`: a member that does not poll this long leaves the group (keep it small in
    /// tests: a consumer that stopped polling holds its partitions until then).
    public var maxPollIntervalMilliseconds = 300_000
    /// `partition.assignment.strategy`: `range,roundrobin` (eager) or `cooperative-sticky`; both work
    /// with `KafkaRebalanceHandler`.
    public var assignmentStrategy = "range,roundrobin"

    public init(groupID: String? = nil) {
        self.groupID = groupID
    }

    var librdkafkaProperties: [(String, String)] {
        var properties: [(String, String)] = [
            ("enable.auto.commit", autoCommit ? "true" : "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", startWithoutOffset == .end ? "latest" : "earliest"),
            ("session.timeout.ms", String(sessionTimeoutMilliseconds)),
            ("max.poll.interval.ms", String(maxPollIntervalMilliseconds)),
            ("partition.assignment.strategy", assignmentStrategy),
        ]
        properties.append(("group.id", groupID ?? "tape-manual-\(getpid())-\(UInt64.random(in: 1...UInt64.max))"))
        return properties
    }
}

/// What a group member is told when its assignment changes. Both run inside `poll` (or `close`), on
/// the caller's thread, before any record of a newly assigned partition is returned, and after the last
/// record of a revoked one.
///
/// ```swift
/// let handler = KafkaRebalanceHandler(
///     assigned: { partitions in Dictionary(uniqueKeysWithValues: partitions.map { ($0, store.nextOffset($0)) }) },
///     revoked: { partitions, _ in store.commit(partitions) })
/// try consumer.subscribe(topics: ["tick_data"], rebalance: handler)
/// ```
public struct KafkaRebalanceHandler {
    /// Partitions newly given to this member; returns where to start in each (a partition left out
    /// starts at the group's committed offset, or by `startWithoutOffset`).
    public var assigned: ([KafkaTopicPartition]) -> [KafkaTopicPartition: KafkaOffset]
    /// Partitions taken away: `lost` is true when the member was already out of the group (its session
    /// timed out), so another member may already be processing them.
    public var revoked: ([KafkaTopicPartition], _ lost: Bool) -> Void

    public init(assigned: @escaping ([KafkaTopicPartition]) -> [KafkaTopicPartition: KafkaOffset] = { _ in [:] },
                revoked: @escaping ([KafkaTopicPartition], _ lost: Bool) -> Void = { _, _ in }) {
        self.assigned = assigned
        self.revoked = revoked
    }
}

/// One record read by `KafkaConsumer.poll`. Its key, value and headers point into librdkafka's buffer:
/// valid until the next `poll` or `close` of the consumer that returned it (copy what must outlive that).
public struct KafkaMessage {
    fileprivate let pointer: UnsafeMutablePointer<rd_kafka_message_t>

    public var topic: String { String(cString: rd_kafka_topic_name(pointer.pointee.rkt)) }
    public var partition: Int32 { pointer.pointee.partition }
    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }
    public var offset: Int64 { pointer.pointee.offset }
    /// The key's bytes (nil: a null key).
    public var key: UnsafeRawBufferPointer? {
        pointer.pointee.key.map { UnsafeRawBufferPointer(start: $0, count: pointer.pointee.key_len) }
    }
    /// The value's bytes (nil: a null value, a tombstone).
    public var value: UnsafeRawBufferPointer? {
        pointer.pointee.payload.map { UnsafeRawBufferPointer(start: $0, count: pointer.pointee.len) }
    }
    /// The record's timestamp in ms since the epoch, and whether the producer (`createTime`) or the
    /// broker (`logAppendTime`) set it; nil when the record has none.
    public var timestamp: (milliseconds: Int64, type: TimestampType)? {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(pointer, &type)
        switch type {
        case RD_KAFKA_TIMESTAMP_CREATE_TIME: return (milliseconds, .createTime)
        case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME: return (milliseconds, .logAppendTime)
        default: return nil
        }
    }

    public enum TimestampType: Sendable { case createTime, logAppendTime }

    /// The value of the last header named `name` (nil: no such header; empty: a null value).
    public func header(_ name: String) -> UnsafeRawBufferPointer? {
        var headers: OpaquePointer? = nil
        guard rd_kafka_message_headers(pointer, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return nil }
        var value: UnsafeRawPointer? = nil
        var size = 0
        guard rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return UnsafeRawBufferPointer(start: value, count: value == nil ? 0 : size)
    }

    /// Every header, in order, copied.
    public var headers: [KafkaHeader] {
        var headers: OpaquePointer? = nil
        guard rd_kafka_message_headers(pointer, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return [] }
        var result: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>? = nil
        var value: UnsafeRawPointer? = nil
        var size = 0
        while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            result.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
            index += 1
        }
        return result
    }
}

/// A Kafka consumer: a group member (`subscribe`, with rebalance events) or a reader of partitions it
/// assigns itself (`assign`).
///
/// ```swift
/// let consumer = try KafkaConsumer(config: config, settings: KafkaConsumerSettings(groupID: "tape-work"))
/// try consumer.subscribe(topics: ["tick_data"], rebalance: handler)
/// while running {
///     guard let message = try consumer.poll(timeoutMilliseconds: 100) else { continue }
///     handle(message.partition, message.offset, message.value)
/// }
/// try consumer.close()   // leaves the group (revoked runs first)
/// ```
/// Not thread-safe: one thread polls, and the rebalance handler runs on it. Offsets are not committed
/// unless the caller commits (or turns `autoCommit` on).
public final class KafkaConsumer {
    public let config: KafkaConfig
    public let settings: KafkaConsumerSettings
    private let client: OpaquePointer
    private let state: ConsumerState
    private var current: UnsafeMutablePointer<rd_kafka_message_t>? = nil
    private var closed = false

    public init(config: KafkaConfig, settings: KafkaConsumerSettings = KafkaConsumerSettings()) throws {
        self.config = config
        self.settings = settings
        state = ConsumerState(peer: config.bootstrapServers)
        let conf = try config.makeConf(defaults: settings.librdkafkaProperties)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { client, error, partitions, opaque in
            guard let client, let opaque else { return }
            Unmanaged<ConsumerState>.fromOpaque(opaque).takeUnretainedValue()
                .rebalance(client: client, error: error, partitions: partitions)
        }
        rd_kafka_conf_set_error_cb(conf) { _, error, _, opaque in
            guard let opaque else { return }
            Unmanaged<ConsumerState>.fromOpaque(opaque).takeUnretainedValue().clientErrors[
                KafkaError.name(of: rd_kafka_resp_err_t(error)), default: 0] += 1
        }
        client = try config.makeClient(RD_KAFKA_CONSUMER, conf: conf, role: "consumer")
        // Every event (rebalances, errors) comes through rd_kafka_consumer_poll.
        rd_kafka_poll_set_consumer(client)
    }

    deinit {
        if !closed { try? close() }
    }

    /// Joins the group for `topics`; the handler's `assigned` and `revoked` run inside `poll`. Called again
    /// while subscribed, the member rejoins the group under its member id, without leaving it first.
    public func subscribe(topics: [String], rebalance: KafkaRebalanceHandler = KafkaRebalanceHandler()) throws {
        precondition(!closed, "consumer used after close")
        precondition(!topics.isEmpty, "subscribe to at least one topic")
        guard settings.groupID != nil else {
            throw KafkaError(operation: "subscribe", peer: config.bootstrapServers, text: "subscribe needs a group id")
        }
        state.handler = rebalance
        let list = PartitionList.make(topics.map { (KafkaTopicPartition(topic: $0, partition: 0), 0) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for index in 0..<Int(list.pointee.cnt) { list.pointee.elems[index].partition = RD_KAFKA_PARTITION_UA }
        let error = rd_kafka_subscribe(client, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: "subscribe \(topics.joined(separator: ","))", peer: config.bootstrapServers,
                             code: error)
        }
    }

    /// Reads exactly these partitions from these offsets, outside any group rebalancing (replaces the
    /// previous manual assignment; an empty dictionary clears it).
    public func assign(_ starts: [KafkaTopicPartition: KafkaOffset]) throws {
        precondition(!closed, "consumer used after close")
        let list = PartitionList.make(starts.sorted { $0.key < $1.key }.map { ($0.key, $0.value.rawValue) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let error = rd_kafka_assign(client, starts.isEmpty ? nil : list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: "assign", peer: config.bootstrapServers, code: error)
        }
    }

    /// Moves the read position of assigned partitions (the next `poll` of each returns the record at
    /// the new offset).
    public func seek(_ positions: [KafkaTopicPartition: KafkaOffset], timeoutMilliseconds: Int = 10_000) throws {
        precondition(!closed, "consumer used after close")
        let list = PartitionList.make(positions.sorted { $0.key < $1.key }.map { ($0.key, $0.value.rawValue) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_seek_partitions(client, list, Int32(timeoutMilliseconds)) {
            defer { rd_kafka_error_destroy(error) }
            throw KafkaError(operation: "seek", peer: config.bootstrapServers, code: rd_kafka_error_code(error),
                             detail: String(cString: rd_kafka_error_string(error)))
        }
        for entry in PartitionList.read(list) where entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(operation: "seek", peer: entry.partition.description, code: entry.error)
        }
    }

    /// Stops fetching `partitions` (assigned ones) until `resume`: `poll` goes on serving the group (heartbeats,
    /// rebalances) without records of them. Records of a paused partition already fetched may still come once;
    /// after `resume`, seek to where to go on.
    public func pause(_ partitions: [KafkaTopicPartition]) throws {
        try pauseOrResume(partitions, pause: true)
    }

    /// Fetches `partitions` again after `pause`.
    public func resume(_ partitions: [KafkaTopicPartition]) throws {
        try pauseOrResume(partitions, pause: false)
    }

    private func pauseOrResume(_ partitions: [KafkaTopicPartition], pause: Bool) throws {
        precondition(!closed, "consumer used after close")
        guard !partitions.isEmpty else { return }
        let list = PartitionList.make(partitions.sorted().map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let operation = pause ? "pause" : "resume"
        let error = pause ? rd_kafka_pause_partitions(client, list) : rd_kafka_resume_partitions(client, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, code: error)
        }
        for entry in PartitionList.read(list) where entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(operation: operation, peer: entry.partition.description, code: entry.error)
        }
    }

    /// The next record, or nil when none came within `timeoutMilliseconds` (or only a transient client
    /// error did: broker down, reconnecting — counted in `clientErrors`, librdkafka keeps retrying).
    /// Rebalance handlers run inside this call. The previous message's buffers are released here.
    /// - Throws: `KafkaError` for an error about a topic or partition (unknown topic, offset out of
    ///   range with no reset, …), a fatal client error, or a failed (re)assignment.
    public func poll(timeoutMilliseconds: Int) throws -> KafkaMessage? {
        precondition(!closed, "consumer used after close")
        releaseCurrent()
        let message = rd_kafka_consumer_poll(client, Int32(timeoutMilliseconds))
        if let failure = state.takeRebalanceFailure() {
            if let message { rd_kafka_message_destroy(message) }
            throw failure
        }
        guard let message else { return nil }
        let error = message.pointee.err
        if error == RD_KAFKA_RESP_ERR_NO_ERROR {
            current = message
            return KafkaMessage(pointer: message)
        }
        defer { rd_kafka_message_destroy(message) }
        let detail = String(cString: rd_kafka_message_errstr(message))
        if error == RD_KAFKA_RESP_ERR__FATAL {
            var code = RD_KAFKA_RESP_ERR_NO_ERROR
            let text = ErrorText.capture { buffer, capacity in
                code = rd_kafka_fatal_error(client, buffer, capacity)
                return code == RD_KAFKA_RESP_ERR_NO_ERROR
            }
            throw KafkaError(operation: "consume", peer: config.bootstrapServers, code: code, detail: text, isFatal: true)
        }
        if let topic = message.pointee.rkt {
            let name = String(cString: rd_kafka_topic_name(topic))
            let peer = message.pointee.partition >= 0 ? "\(name)[\(message.pointee.partition)]" : name
            throw KafkaError(operation: "consume", peer: peer, code: error, detail: detail)
        }
        state.clientErrors[KafkaError.name(of: error), default: 0] += 1
        state.lastClientError = KafkaError(operation: "consume", peer: config.bootstrapServers, code: error,
                                           detail: detail)
        return nil
    }

    /// Commits `nextOffsets` (per partition, the offset of the next record to read: last processed + 1)
    /// to the group, synchronously.
    public func commit(_ nextOffsets: [KafkaTopicPartition: Int64]) throws {
        precondition(!closed, "consumer used after close")
        guard settings.groupID != nil else {
            throw KafkaError(operation: "commit", peer: config.bootstrapServers, text: "commit needs a group id")
        }
        precondition(nextOffsets.values.allSatisfy { $0 >= 0 }, "committed offsets are not negative")
        guard !nextOffsets.isEmpty else { return }
        let list = PartitionList.make(nextOffsets.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let error = rd_kafka_commit(client, list, 0)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: "commit", peer: config.bootstrapServers, code: error)
        }
        for entry in PartitionList.read(list) where entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(operation: "commit", peer: entry.partition.description, code: entry.error)
        }
    }

    /// The group's committed next offsets of `partitions` (absent: nothing committed).
    public func committed(_ partitions: [KafkaTopicPartition], timeoutMilliseconds: Int = 10_000) throws
        -> [KafkaTopicPartition: Int64] {
        precondition(!closed, "consumer used after close")
        let list = PartitionList.make(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let error = rd_kafka_committed(client, list, Int32(timeoutMilliseconds))
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: "committed offsets", peer: config.bootstrapServers, code: error)
        }
        var result: [KafkaTopicPartition: Int64] = [:]
        for entry in PartitionList.read(list) where entry.offset >= 0 { result[entry.partition] = entry.offset }
        return result
    }

    /// The partitions assigned to this consumer now.
    public var assignment: [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = nil
        guard rd_kafka_assignment(client, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return PartitionList.read(list).map(\.partition).sorted()
    }

    /// The partition's high watermark (the offset the next produced record will get) as last seen in a
    /// fetch response (no request to the broker: cheap enough for a lag metric every second); nil when
    /// not known yet. Consumer lag = high watermark − the next offset to process.
    public func highWatermark(_ partition: KafkaTopicPartition) -> Int64? {
        precondition(!closed, "consumer used after close")
        var low: Int64 = -1, high: Int64 = -1
        let error = rd_kafka_get_watermark_offsets(client, partition.topic, partition.partition, &low, &high)
        return error == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// The partition's low and high watermarks, asked of its leader (a request: for assignments, not per
    /// record).
    public func queryWatermarks(_ partition: KafkaTopicPartition, timeoutMilliseconds: Int = 5_000) throws -> (low: Int64, high: Int64) {
        precondition(!closed, "consumer used after close")
        var low: Int64 = -1, high: Int64 = -1
        let error = rd_kafka_query_watermark_offsets(client, partition.topic, partition.partition, &low, &high,
                                                     Int32(timeoutMilliseconds))
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: "query watermarks", peer: partition.description, code: error)
        }
        return (low, high)
    }

    /// Transient client errors seen (broker down, …), by librdkafka's name.
    public var clientErrors: [String: Int] { state.clientErrors }
    public var lastClientError: KafkaError? { state.lastClientError }

    /// Leaves the group (the handler's `revoked` runs first) and releases the client. Idempotent.
    /// Releases the client without leaving the group or committing (as a process that died would): the
    /// group forgets the member when its session times out. For a member whose group state the broker lost
    /// (a broker restarted with memory storage), where a LeaveGroup could leave the re-forming group
    /// without a leader (tansu 0.6).
    public func abandon() {
        if closed { return }
        closed = true
        releaseCurrent()
        rd_kafka_destroy_flags(client, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    }

    public func close() throws {
        if closed { return }
        closed = true
        releaseCurrent()
        let error = rd_kafka_consumer_close(client)
        rd_kafka_destroy(client)
        if let failure = state.takeRebalanceFailure() { throw failure }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(operation: "close", peer: config.bootstrapServers, code: error)
        }
    }

    private func releaseCurrent() {
        if let current { rd_kafka_message_destroy(current) }
        current = nil
    }
}

/// The rebalance handler and what the callbacks observed; used on the polling thread only.
final class ConsumerState {
    let peer: String
    var handler = KafkaRebalanceHandler()
    var clientErrors: [String: Int] = [:]
    var lastClientError: KafkaError? = nil
    private var rebalanceFailure: KafkaError? = nil

    init(peer: String) {
        self.peer = peer
    }

    func takeRebalanceFailure() -> KafkaError? {
        defer { rebalanceFailure = nil }
        return rebalanceFailure
    }

    /// librdkafka's rebalance callback: tells the handler, then applies the change (incrementally under
    /// the cooperative protocol, as a whole assignment under the eager ones).
    func rebalance(client: OpaquePointer, error: rd_kafka_resp_err_t,
                   partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(client)) == "COOPERATIVE"
        let entries = PartitionList.read(partitions).map(\.partition)
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let starts = handler.assigned(entries)
            if let partitions, let elements = partitions.pointee.elems {
                for index in 0..<Int(partitions.pointee.cnt) {
                    let element = elements[index]
                    let key = KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)
                    elements[index].offset = starts[key]?.rawValue ?? Int64(RD_KAFKA_OFFSET_INVALID)
                }
            }
            if cooperative {
                if let failure = rd_kafka_incremental_assign(client, partitions) { record("assign", failure) }
            } else {
                record("assign", code: rd_kafka_assign(client, partitions))
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            handler.revoked(entries, rd_kafka_assignment_lost(client) != 0)
            if cooperative {
                if let failure = rd_kafka_incremental_unassign(client, partitions) { record("unassign", failure) }
            } else {
                record("unassign", code: rd_kafka_assign(client, nil))
            }
        default:
            record("rebalance", code: error)
            _ = rd_kafka_assign(client, nil)
        }
    }

    private func record(_ operation: String, _ failure: OpaquePointer) {
        defer { rd_kafka_error_destroy(failure) }
        rebalanceFailure = KafkaError(operation: operation, peer: peer, code: rd_kafka_error_code(failure),
                                      detail: String(cString: rd_kafka_error_string(failure)))
    }

    private func record(_ operation: String, code: rd_kafka_resp_err_t) {
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        rebalanceFailure = KafkaError(operation: operation, peer: peer, code: code)
    }
}
