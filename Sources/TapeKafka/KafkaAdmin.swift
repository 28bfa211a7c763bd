import CRdKafka

/// Topic administration: create a topic with a partition count (idempotently), read a topic's
/// partition count from the brokers' metadata.
///
/// ```swift
/// let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: "127.0.0.1:59092"))
/// try admin.createTopic("tick_data", partitions: 3)          // .created, or .existed
/// let partitions = try admin.partitionCount(topic: "tick_data")   // 3
/// ```
/// Blocking calls, each bounded by its timeout. Not thread-safe: one thread at a time.
public final class KafkaAdmin {
    /// What `createTopic` found.
    public enum TopicCreation: Sendable, Equatable {
        case created
        /// The topic was already there (its partition count is not changed: read it with
        /// `partitionCount(topic:)`).
        case existed
    }

    public let config: KafkaConfig
    private let client: OpaquePointer
    private let queue: OpaquePointer
    private var closed = false

    public init(config: KafkaConfig) throws {
        self.config = config
        // A producer-type handle that never produces; it must not create topics by asking for metadata.
        let conf = try config.makeConf(defaults: [("allow.auto.create.topics", "false")])
        client = try config.makeClient(RD_KAFKA_PRODUCER, conf: conf, role: "admin client")
        queue = rd_kafka_queue_new(client)
    }

    deinit { close() }

    /// Creates `name` with `partitions` partitions; a topic that already exists is not an error.
    @discardableResult
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1,
                            timeoutMilliseconds: Int = 10_000) throws -> TopicCreation {
        precondition(!closed, "admin client used after close")
        precondition(partitions >= 1 && partitions <= 10_000, "partition count 1…10000, got \(partitions)")
        let operation = "create topic \(name) (\(partitions) partitions)"
        var newTopic: OpaquePointer? = nil
        let failure = ErrorText.capture { buffer, capacity in
            newTopic = rd_kafka_NewTopic_new(name, Int32(partitions), Int32(replicationFactor), buffer, capacity)
            return newTopic != nil
        }
        guard let newTopic else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, text: failure ?? "NewTopic failed")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        return try request(operation, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeoutMilliseconds: timeoutMilliseconds,
                           send: { options in
            var topics: [OpaquePointer?] = [newTopic]
            rd_kafka_CreateTopics(client, &topics, 1, options, queue)
        }, read: { event in try createdTopic(event, operation: operation) })
    }

    private func createdTopic(_ event: OpaquePointer, operation: String) throws -> TopicCreation {
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, text: "no CreateTopics result")
        }
        var count = 0
        let results = rd_kafka_CreateTopics_result_topics(result, &count)
        guard count == 1, let topicResult = results?[0] else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, text: "\(count) topic results")
        }
        let error = rd_kafka_topic_result_error(topicResult)
        switch error {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return .created
        case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: return .existed
        default:
            throw KafkaError(operation: operation, peer: config.bootstrapServers, code: error,
                             detail: rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) })
        }
    }

    /// The number of partitions of `topic`, or nil when the brokers do not know it.
    public func partitionCount(topic: String, timeoutMilliseconds: Int = 10_000) throws -> Int? {
        precondition(!closed, "admin client used after close")
        let operation = "metadata of topic \(topic)"
        guard let handle = rd_kafka_topic_new(client, topic, nil) else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, code: rd_kafka_last_error())
        }
        defer { rd_kafka_topic_destroy(handle) }
        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        let error = rd_kafka_metadata(client, 0, handle, &metadata, Int32(timeoutMilliseconds))
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, code: error)
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, let described = metadata.pointee.topics?[0] else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers,
                             text: "\(metadata.pointee.topic_cnt) topics in the answer")
        }
        switch described.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return Int(described.partition_cnt)
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return nil
        default: throw KafkaError(operation: operation, peer: config.bootstrapServers, code: described.err)
        }
    }

    /// The topic's id (base64, as Kafka's tools print it), or nil when the brokers do not know the topic or
    /// give no id (an all-zero id: brokers before topic ids). A topic deleted and created again under the
    /// same name has a new id: the way to tell it from the old one, whose offsets it reuses.
    public func topicID(topic: String, timeoutMilliseconds: Int = 5_000) throws -> String? {
        precondition(!closed, "admin client used after close")
        let operation = "describe topic \(topic)"
        let collection: OpaquePointer? = topic.withCString { name in
            var names: [UnsafePointer<CChar>?] = [name]
            return rd_kafka_TopicCollection_of_topic_names(&names, 1)
        }
        guard let collection else { throw KafkaError(operation: operation, peer: config.bootstrapServers, text: "no topic collection") }
        defer { rd_kafka_TopicCollection_destroy(collection) }
        return try request(operation, RD_KAFKA_ADMIN_OP_DESCRIBETOPICS, timeoutMilliseconds: timeoutMilliseconds,
                           send: { options in rd_kafka_DescribeTopics(client, collection, options, queue) },
                           read: { event in try describedTopicID(event, operation: operation) })
    }

    private func describedTopicID(_ event: OpaquePointer, operation: String) throws -> String? {
        guard let result = rd_kafka_event_DescribeTopics_result(event) else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, text: "no DescribeTopics result")
        }
        var count = 0
        let described = rd_kafka_DescribeTopics_result_topics(result, &count)
        guard count == 1, let description = described?[0] else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, text: "\(count) topic descriptions")
        }
        if let error = rd_kafka_TopicDescription_error(description) {
            let code = rd_kafka_error_code(error)
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                // described
            } else if code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART {
                return nil
            } else {
                throw KafkaError(operation: operation, peer: config.bootstrapServers, code: code,
                                 detail: rd_kafka_error_string(error).map { String(cString: $0) })
            }
        }
        guard let id = rd_kafka_TopicDescription_topic_id(description),
              rd_kafka_Uuid_most_significant_bits(id) != 0 || rd_kafka_Uuid_least_significant_bits(id) != 0,
              let text = rd_kafka_Uuid_base64str(id) else { return nil }
        return String(cString: text)
    }

    /// Releases the client (idempotent).
    public func close() {
        if closed { return }
        closed = true
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(client)
    }

    /// One admin request: options with the request timeout, `send` (the request on `queue`), its event awaited
    /// and checked for a request-level error, then `read` of the result. Everything made here is released.
    private func request<T>(_ operation: String, _ kind: rd_kafka_admin_op_t, timeoutMilliseconds: Int,
                            send: (OpaquePointer?) -> Void, read: (OpaquePointer) throws -> T) throws -> T {
        let options = rd_kafka_AdminOptions_new(client, kind)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = ErrorText.capture { buffer, capacity in
            rd_kafka_AdminOptions_set_request_timeout(options, Int32(timeoutMilliseconds), buffer, capacity)
                == RD_KAFKA_RESP_ERR_NO_ERROR
        }
        send(options)
        // The request's own timeout answers first; the extra second only guards against a lost answer.
        guard let event = rd_kafka_queue_poll(queue, Int32(timeoutMilliseconds + 1_000)) else {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, code: RD_KAFKA_RESP_ERR__TIMED_OUT)
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        if eventError != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(operation: operation, peer: config.bootstrapServers, code: eventError,
                             detail: rd_kafka_event_error_string(event).map { String(cString: $0) })
        }
        return try read(event)
    }
}
