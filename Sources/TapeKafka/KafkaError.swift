import CRdKafka

/// A Kafka operation that failed: what was attempted, against which brokers (or which peer), and
/// librdkafka's error name and text.
///
/// ```swift
/// do { try admin.createTopic("tick_data", partitions: 3) }
/// catch let error as KafkaError { print(error) }   // kafka create topic tick_data (127.0.0.1:59092): _TRANSPORT: …
/// ```
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was attempted: `produce tick_data`, `create topic tick_data`, `commit`, `config linger.ms`, …
    public let operation: String
    /// The bootstrap servers of the client, or the broker or topic-partition the error came from.
    public let peer: String
    /// librdkafka's `rd_kafka_resp_err_t` (negative: client-side `_NAME`s; positive: broker error codes).
    public let code: Int32
    /// librdkafka's symbolic name (`rd_kafka_err2name`), e.g. `_QUEUE_FULL`, `UNKNOWN_TOPIC_OR_PART`.
    public let name: String
    /// librdkafka's text (`rd_kafka_err2str`, or the detailed string it gave with the error).
    public let message: String
    /// A fatal error of the client (e.g. an idempotent producer that lost its guarantees): the client
    /// must be closed and a new one made.
    public let isFatal: Bool

    public init(operation: String, peer: String, code: Int32, name: String, message: String, isFatal: Bool = false) {
        self.operation = operation
        self.peer = peer
        self.code = code
        self.name = name
        self.message = message
        self.isFatal = isFatal
    }

    /// From a librdkafka error code; `detail` (librdkafka's own string, if it gave one) replaces the
    /// generic text.
    init(operation: String, peer: String, code: rd_kafka_resp_err_t, detail: String? = nil, isFatal: Bool = false) {
        let detailText = detail.flatMap { $0.isEmpty ? nil : $0 }
        self.init(operation: operation, peer: peer, code: code.rawValue, name: KafkaError.name(of: code),
                  message: detailText ?? String(cString: rd_kafka_err2str(code)), isFatal: isFatal)
    }

    /// An error librdkafka reported as text only (configuration, client creation).
    init(operation: String, peer: String, text: String) {
        self.init(operation: operation, peer: peer, code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                  name: KafkaError.name(of: RD_KAFKA_RESP_ERR__INVALID_ARG), message: text)
    }

    public var description: String { "kafka \(operation) (\(peer)): \(name): \(message)\(isFatal ? " [fatal]" : "")" }

    static func name(of code: rd_kafka_resp_err_t) -> String { String(cString: rd_kafka_err2name(code)) }
}

/// A buffer for librdkafka's `errstr` arguments, turned into a Swift string.
struct ErrorText {
    static let capacity = 512

    static func capture(_ body: (UnsafeMutablePointer<CChar>, Int) -> Bool) -> String? {
        var buffer = [CChar](repeating: 0, count: capacity)
        let succeeded = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, capacity) }
        if succeeded { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
