import Foundation
import TapeKafka
import TapeTestSupport
import XCTest

/// A broker restart, on a private tansu (its own port, so the shared broker of `make services` is never
/// stopped). tansu's memory storage loses every topic and record on a restart: to a client this is a
/// topic deleted and re-created with its offsets back at 0 (docs/kafka.md).
final class KafkaBrokerRestartTests: XCTestCase {
    /// What a restart of tansu does to an idempotent producer holding records: the topic is gone (and is
    /// not re-created by reading metadata); re-created, it starts at offset 0; the producer's held records
    /// are never delivered, because the restarted broker does not know the producer id any more
    /// (`UNKNOWN_PRODUCER_ID`, which librdkafka answers by bumping the epoch of the same id, for ever),
    /// so they fail at `message.timeout.ms`, counted, without a crash or a fatal error. A new producer
    /// delivers them. (A Kafka cluster keeps producer ids and topics across a broker restart.)
    func testARestartLosesTopicsAndTheHeldRecordsFailCountedAndANewProducerDeliversThem() throws {
        _ = try KafkaTestSupport.config()  // the same requirements as the other tests
        let broker = try PrivateServer.tansu()
        defer { broker.stop() }
        let config = KafkaConfig(bootstrapServers: broker.address, clientID: "tape-test-restart",
                                 properties: ["log_level": "0"])
        let topic = KafkaTestSupport.topic("restart")
        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        let admin = try KafkaAdmin(config: config)
        XCTAssertEqual(try admin.createTopic(topic, partitions: 1), .created)
        admin.close()

        var settings = KafkaProducerSettings()
        settings.messageTimeoutMilliseconds = 6_000
        let producer = try KafkaProducer(config: config, settings: settings)
        func produce(_ producer: KafkaProducer, _ values: [String]) throws {
            for value in values {
                XCTAssertEqual(try producer.produce(topic: topic, key: Array("k".utf8), value: Array(value.utf8)),
                               .enqueued)
            }
        }
        try produce(producer, (0..<5).map { "before-\($0)" })
        XCTAssertEqual(producer.flush(timeoutMilliseconds: 10_000), 0)
        XCTAssertEqual(producer.counters.delivered, 5)

        broker.stop()
        let held = (0..<5).map { "during-\($0)" }
        try produce(producer, held)
        XCTAssertGreaterThan(producer.flush(timeoutMilliseconds: 1_000), 0, "held while the broker is away")
        XCTAssertEqual(producer.counters.awaitingReport, 5)
        XCTAssertFalse(producer.counters.clientErrors.isEmpty, "the outage is reported: \(producer.counters)")

        try broker.start()
        let restartedAdmin = try KafkaAdmin(config: config)
        defer { restartedAdmin.close() }
        XCTAssertNil(try restartedAdmin.partitionCount(topic: topic), "memory storage: the topic is gone")
        XCTAssertEqual(try restartedAdmin.createTopic(topic, partitions: 1), .created)

        XCTAssertEqual(producer.flush(timeoutMilliseconds: 15_000), 0, "every held record got a report")
        let counters = producer.counters
        XCTAssertEqual(counters.delivered, 5, "only the records before the restart: \(counters)")
        XCTAssertEqual(counters.failedByError, ["_MSG_TIMED_OUT": 5], "\(counters)")
        XCTAssertNil(producer.fatalError)
        producer.close(timeoutMilliseconds: 0)

        let replacement = try KafkaProducer(config: config, settings: settings)
        try produce(replacement, held)
        XCTAssertEqual(replacement.flush(timeoutMilliseconds: 10_000), 0)
        XCTAssertEqual(replacement.counters.delivered, 5)
        replacement.close()

        let consumer = try KafkaConsumer(config: config)
        try consumer.assign([partition: .beginning])
        let records = try consume(consumer, count: 5, seconds: 10)
        try consumer.close()
        XCTAssertEqual(records.map(\.value), held, "the re-created topic holds only what came after")
        XCTAssertEqual(records.map(\.offset), Array(0..<5), "its offsets start again at 0")
    }
}

