import CRdKafka
import Logging

/// Where the brokers are and who this client is; anything else librdkafka knows passes through
/// `properties` (librdkafka's CONFIGURATION.md names), applied last so they override Tape's defaults.
///
/// ```swift
/// let config = KafkaConfig(bootstrapServers: "127.0.0.1:59092", clientID: "tape-ingest",
///                          properties: ["security.protocol": "SASL_SSL"])
/// ```
/// The local broker of `make services` is at `127.0.0.1:$TAPE_KAFKA_PORT` (config/services.env);
/// production points `bootstrapServers` at its Kafka cluster.
public struct KafkaConfig: Sendable, Equatable {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    public var bootstrapServers: String
    /// `client.id`, shown in the brokers' logs and metrics.
    public var clientID: String
    /// Extra librdkafka properties, set after Tape's own (so they win).
    public var properties: [String: String]

    public init(bootstrapServers: String, clientID: String = "tape", properties: [String: String] = [:]) {
        precondition(!bootstrapServers.isEmpty, "bootstrap servers are required")
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
    }

    /// The version of the librdkafka this binary runs with (the one scripts/build_librdkafka.sh built).
    public static var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

    /// A new `rd_kafka_conf_t` with the servers, the client id, `defaults` (the client's own settings),
    /// then `properties`, in that order. The caller owns it (until `rd_kafka_new` succeeds).
    func makeConf(defaults: [(String, String)]) throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(operation: "config", peer: bootstrapServers, text: "rd_kafka_conf_new failed")
        }
        let settings = [("bootstrap.servers", bootstrapServers), ("client.id", clientID)] + defaults
            + properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (key, value) in settings {
            let failure = ErrorText.capture { buffer, capacity in
                rd_kafka_conf_set(conf, key, value, buffer, capacity) == RD_KAFKA_CONF_OK
            }
            if let failure {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(operation: "config \(key)=\(value)", peer: bootstrapServers, text: failure)
            }
        }
        // librdkafka's own log lines (a broker refusing connections, a topic's partitions changing) go through
        // swift-log like every other line of the process, not straight to stderr.
        rd_kafka_conf_set_log_cb(conf) { client, level, facility, buffer in
            LibrdkafkaLog.log(client: client.map { String(cString: rd_kafka_name($0)) } ?? "rdkafka", level: level,
                              facility: facility.map { String(cString: $0) } ?? "",
                              message: buffer.map { String(cString: $0) } ?? "")
        }
        return conf
    }

    /// `rd_kafka_new` of `type`; consumes `conf` on success, destroys it on failure.
    func makeClient(_ type: rd_kafka_type_t, conf: OpaquePointer, role: String) throws -> OpaquePointer {
        var client: OpaquePointer? = nil
        let failure = ErrorText.capture { buffer, capacity in
            client = rd_kafka_new(type, conf, buffer, capacity)
            return client != nil
        }
        guard let client else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(operation: "create \(role)", peer: bootstrapServers, text: failure ?? "rd_kafka_new failed")
        }
        return client
    }
}

/// A topic and one of its partitions.
public struct KafkaTopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        precondition(partition >= 0, "a partition number is not negative")
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (left: KafkaTopicPartition, right: KafkaTopicPartition) -> Bool {
        (left.topic, left.partition) < (right.topic, right.partition)
    }
}

/// Where a consumer starts reading a partition.
public enum KafkaOffset: Hashable, Sendable {
    /// The oldest record the broker still holds.
    case beginning
    /// After the newest record: only what is produced from now on.
    case end
    /// The group's committed offset (or `auto.offset.reset` when there is none).
    case committed
    /// This offset: the next record read is the one at `offset`.
    case offset(Int64)

    var rawValue: Int64 {
        switch self {
        case .beginning: return Int64(RD_KAFKA_OFFSET_BEGINNING)
        case .end: return Int64(RD_KAFKA_OFFSET_END)
        case .committed: return Int64(RD_KAFKA_OFFSET_STORED)
        case .offset(let offset):
            precondition(offset >= 0, "an absolute offset is not negative")
            return offset
        }
    }
}

/// One record header. A header with a null value reads back with an empty `value`.
public struct KafkaHeader: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(name: String, text: String) {
        self.init(name: name, value: Array(text.utf8))
    }
}

/// `rd_kafka_topic_partition_list_t` built from and read into Swift values.
enum PartitionList {
    /// A new list (the caller destroys it with `rd_kafka_topic_partition_list_destroy`).
    static func make(_ entries: [(KafkaTopicPartition, Int64)]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))!
        for (topicPartition, offset) in entries {
            let element = rd_kafka_topic_partition_list_add(list, topicPartition.topic, topicPartition.partition)!
            element.pointee.offset = offset
        }
        return list
    }

    /// The list's entries: (topic-partition, offset, error code).
    static func read(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?)
        -> [(partition: KafkaTopicPartition, offset: Int64, error: rd_kafka_resp_err_t)] {
        guard let list, let elements = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = elements[index]
            return (KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition),
                    element.offset, element.err)
        }
    }
}

/// librdkafka's log callback into swift-log (label `tape.kafka.librdkafka`), on librdkafka's threads.
enum LibrdkafkaLog {
    static let logger = Logger(label: "tape.kafka.librdkafka")

    /// syslog levels → swift-log's. librdkafka writes level 7 only when its `debug` property is set
    /// (`--kafka-property debug=cgrp,topic`): asked for, so logged at `info` and seen without `--log-level debug`.
    static func level(_ syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: return .critical
        case 3: return .error
        case 4: return .warning
        case 5: return .notice
        default: return .info
        }
    }

    static func log(client: String, level syslog: Int32, facility: String, message: String) {
        logger.log(level: level(syslog), "tape: kafka: librdkafka \(client) \(facility): \(message)",
                   metadata: ["client": .string(client), "facility": .string(facility),
                              "syslog_level": .stringConvertible(Int(syslog))])
    }
}
