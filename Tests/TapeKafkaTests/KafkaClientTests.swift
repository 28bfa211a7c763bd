import Foundation
import TapeKafka
import TapeTestSupport
import XCTest

/// TapeKafka against the real broker of `make services`, with confluent-kafka (Python, its own
/// librdkafka) as the independent reader and writer.
final class KafkaClientTests: XCTestCase {
    static let baseTimestampMilliseconds: Int64 = 1_700_000_000_000

    /// Produces `count` records the way scripts/kafka_client.py does (key `key-<i mod keys>`, value
    /// `value-<i>`, headers source and index, timestamp base + i), from Swift; returns them by index.
    @discardableResult
    func produceReference(_ config: KafkaConfig, topic: String, count: Int, keys: Int,
                          source: String = "swift") throws -> (producer: KafkaProducerCounters, reports: [KafkaDeliveryReport]) {
        let reports = Reports()
        let producer = try KafkaProducer(config: config, onDelivery: { reports.append($0) })
        for index in 0..<count {
            let result = try producer.produce(
                topic: topic, key: Array("key-\(index % keys)".utf8), value: Array("value-\(index)".utf8),
                headers: [KafkaHeader(name: "source", text: source), KafkaHeader(name: "index", text: String(index))],
                timestampMilliseconds: Self.baseTimestampMilliseconds + Int64(index))
            XCTAssertEqual(result, .enqueued)
        }
        XCTAssertEqual(producer.flush(timeoutMilliseconds: 20_000), 0, "every record reported")
        let counters = producer.counters
        XCTAssertEqual(producer.close(), 0)
        return (counters, reports.all)
    }

    func testAdminCreatesATopicOnceAndReadsItsPartitionCount() throws {
        let config = try KafkaTestSupport.config()
        let admin = try KafkaAdmin(config: config)
        defer { admin.close() }
        let topic = KafkaTestSupport.topic("admin")
        XCTAssertNil(try admin.partitionCount(topic: topic), "not there before it is created (and not auto-created)")
        XCTAssertNil(try admin.topicID(topic: topic), "no id before it is created")
        XCTAssertEqual(try admin.createTopic(topic, partitions: 3), .created)
        XCTAssertEqual(try admin.createTopic(topic, partitions: 3), .existed, "creating again is not an error")
        XCTAssertEqual(try admin.partitionCount(topic: topic), 3)
        let id = try XCTUnwrap(try admin.topicID(topic: topic), "the broker gives the topic an id")
        XCTAssertEqual(try admin.topicID(topic: topic), id, "the id stays while the topic lives")
        let other = KafkaTestSupport.topic("admin-other")
        XCTAssertEqual(try admin.createTopic(other, partitions: 1), .created)
        XCTAssertNotEqual(try XCTUnwrap(try admin.topicID(topic: other)), id, "each topic its own id")
        // 2.10 or later: 2.8's metadata cache crashes when a topic comes back with a new id (docs/kafka.md).
        let version = KafkaConfig.librdkafkaVersion.split(separator: ".").compactMap { Int($0) }
        XCTAssertTrue(version.count >= 2 && (version[0], version[1]) >= (2, 10), KafkaConfig.librdkafkaVersion)
    }

    func testKeyedRecordsRoundTripThroughAGroupInOrderPerKey() throws {
        let config = try KafkaTestSupport.config()
        let topic = KafkaTestSupport.topic("roundtrip")
        try KafkaTestSupport.createTopic(config, topic, partitions: 3)
        let count = 90
        let keys = 7
        let produced = try produceReference(config, topic: topic, count: count, keys: keys)
        XCTAssertEqual(produced.producer.enqueued, count)
        XCTAssertEqual(produced.producer.delivered, count)
        XCTAssertEqual(produced.producer.failed, 0)
        XCTAssertEqual(produced.reports.count, count)
        XCTAssertTrue(produced.reports.allSatisfy { $0.errorName == nil && $0.topicPartition?.topic == topic })

        let consumer = try KafkaConsumer(config: config, settings: KafkaTestSupport.groupSettings(topic))
        try consumer.subscribe(topics: [topic])
        let records = try consume(consumer, count: count)
        try consumer.close()
        XCTAssertEqual(records.count, count)

        var partitionOfKey: [String: Set<Int32>] = [:]
        var indexesOfKey: [String: [Int]] = [:]
        for record in records {
            let index = Int(record.value.dropFirst("value-".count))!
            XCTAssertEqual(record.key, "key-\(index % keys)")
            XCTAssertEqual(record.headers, [KafkaHeader(name: "source", text: "swift"),
                                            KafkaHeader(name: "index", text: String(index))])
            XCTAssertEqual(record.timestampMilliseconds, Self.baseTimestampMilliseconds + Int64(index))
            partitionOfKey[record.key, default: []].insert(record.partition)
            indexesOfKey[record.key, default: []].append(index)
        }
        XCTAssertEqual(partitionOfKey.count, keys)
        XCTAssertTrue(partitionOfKey.values.allSatisfy { $0.count == 1 }, "one key, one partition: \(partitionOfKey)")
        XCTAssertGreaterThan(Set(partitionOfKey.values.map { $0.first! }).count, 1, "keys spread over partitions")
        for (key, indexes) in indexesOfKey {
            XCTAssertEqual(indexes, indexes.sorted(), "order of \(key)")
        }
        // The delivery reports named the partition and offset the consumer read each record at.
        let read = Set(records.map { "\($0.partition)@\($0.offset)" })
        XCTAssertEqual(Set(produced.reports.map { "\($0.topicPartition!.partition)@\($0.offset)" }), read)
    }

    func testConfluentKafkaReadsWhatSwiftWroteAndSwiftReadsWhatConfluentKafkaWrote() throws {
        let config = try KafkaTestSupport.config()
        let count = 40
        let keys = 5

        // Swift → Python.
        let fromSwift = KafkaTestSupport.topic("swift-to-python")
        try KafkaTestSupport.createTopic(config, fromSwift, partitions: 3)
        try produceReference(config, topic: fromSwift, count: count, keys: keys)
        let readByPython = try KafkaTestSupport.python(["consume", "--topic", fromSwift, "--count", String(count)])
            .map(Record.init)
        XCTAssertEqual(readByPython.count, count)
        for record in readByPython {
            let index = Int(record.value.dropFirst("value-".count))!
            XCTAssertEqual(record.key, "key-\(index % keys)")
            XCTAssertEqual(record.timestampMilliseconds, Self.baseTimestampMilliseconds + Int64(index))
            XCTAssertEqual(record.headers, [KafkaHeader(name: "source", text: "swift"),
                                            KafkaHeader(name: "index", text: String(index))])
        }

        // Python → Swift: a manual assignment of every partition (no group), from the beginning.
        let fromPython = KafkaTestSupport.topic("python-to-swift")
        try KafkaTestSupport.createTopic(config, fromPython, partitions: 3)
        let writtenByPython = try KafkaTestSupport.python(["produce", "--topic", fromPython, "--count", String(count),
                                                           "--keys", String(keys)]).map(Record.init)
        XCTAssertEqual(writtenByPython.count, count)
        // confluent-kafka's delivery reports carry no headers: the ones it sent are by index.
        let expected = writtenByPython.map { written -> Record in
            var record = written
            record.headers = [KafkaHeader(name: "source", text: "python"),
                              KafkaHeader(name: "index", text: String(written.value.dropFirst("value-".count)))]
            return record
        }
        let consumer = try KafkaConsumer(config: config)
        try consumer.assign(Dictionary(uniqueKeysWithValues: (0..<3).map {
            (KafkaTopicPartition(topic: fromPython, partition: Int32($0)), KafkaOffset.beginning)
        }))
        let readBySwift = try consume(consumer, count: count)
        try consumer.close()
        XCTAssertEqual(readBySwift.count, count)
        XCTAssertEqual(Set(readBySwift), Set(expected), "partition, offset, key, value, headers, timestamp")

        // Both clients' default partitioners put a key on the same partition.
        let swiftPartitions = Dictionary(readByPython.map { ($0.key, $0.partition) }, uniquingKeysWith: { first, _ in first })
        let pythonPartitions = Dictionary(writtenByPython.map { ($0.key, $0.partition) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(swiftPartitions, pythonPartitions)
    }

    func testTwoMembersOfOneGroupSplitThePartitions() throws {
        let config = try KafkaTestSupport.config()
        let topic = KafkaTestSupport.topic("group")
        try KafkaTestSupport.createTopic(config, topic, partitions: 3)
        let events = RebalanceLog()
        let first = try KafkaConsumer(config: config, settings: KafkaTestSupport.groupSettings(topic))
        let second = try KafkaConsumer(config: config, settings: KafkaTestSupport.groupSettings(topic))
        try first.subscribe(topics: [topic], rebalance: events.handler("first"))
        let deadline = Date().addingTimeInterval(30)
        while first.assignment.count < 3 && Date() < deadline { _ = try first.poll(timeoutMilliseconds: 100) }
        XCTAssertEqual(first.assignment.count, 3, "a lone member holds every partition")

        try second.subscribe(topics: [topic], rebalance: events.handler("second"))
        func split() -> Bool {
            !first.assignment.isEmpty && !second.assignment.isEmpty
                && first.assignment.count + second.assignment.count == 3
        }
        while !split() && Date() < deadline {
            _ = try first.poll(timeoutMilliseconds: 50)
            _ = try second.poll(timeoutMilliseconds: 50)
        }
        let all = (0..<3).map { KafkaTopicPartition(topic: topic, partition: Int32($0)) }
        XCTAssertTrue(split(), "first \(first.assignment), second \(second.assignment)")
        XCTAssertEqual(Set(first.assignment).union(second.assignment), Set(all))
        XCTAssertTrue(Set(first.assignment).isDisjoint(with: second.assignment))
        XCTAssertTrue(events.all.contains { $0.member == "first" && $0.kind == "revoked" }, "\(events.all)")
        XCTAssertEqual(Set(events.held("first")), Set(first.assignment), "the handler saw what librdkafka assigned")
        XCTAssertEqual(Set(events.held("second")), Set(second.assignment))

        // Records split the same way: each read once, by the member holding its partition.
        try produceReference(config, topic: topic, count: 30, keys: 9)
        var records: [(member: String, record: Record)] = []
        let readDeadline = Date().addingTimeInterval(20)
        while records.count < 30 && Date() < readDeadline {
            if let message = try first.poll(timeoutMilliseconds: 50) { records.append(("first", Record(message))) }
            if let message = try second.poll(timeoutMilliseconds: 50) { records.append(("second", Record(message))) }
        }
        XCTAssertEqual(records.count, 30)
        XCTAssertEqual(Set(records.map(\.record.value)).count, 30, "no record read twice")
        for (member, record) in records {
            let holder = member == "first" ? first.assignment : second.assignment
            XCTAssertTrue(holder.contains(KafkaTopicPartition(topic: topic, partition: record.partition)))
        }
        try first.close()
        try second.close()
        XCTAssertEqual(events.held("first"), [], "close revokes")
    }

    func testReadingStartsAtTheOffsetGiven() throws {
        let config = try KafkaTestSupport.config()
        let topic = KafkaTestSupport.topic("offsets")
        try KafkaTestSupport.createTopic(config, topic, partitions: 1)
        try produceReference(config, topic: topic, count: 10, keys: 1)
        let partition = KafkaTopicPartition(topic: topic, partition: 0)

        // In a group: the assignment handler says where to start.
        let member = try KafkaConsumer(config: config, settings: KafkaTestSupport.groupSettings(topic))
        try member.subscribe(topics: [topic], rebalance: KafkaRebalanceHandler(assigned: { partitions in
            Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.offset(4)) })
        }))
        XCTAssertEqual(try consume(member, count: 6).map(\.offset), Array(4..<10))
        try member.commit([partition: 7])
        XCTAssertEqual(try member.committed([partition]), [partition: 7])
        try member.close()

        // The next member of the group starts at the committed offset when the handler gives none.
        let next = try KafkaConsumer(config: config, settings: KafkaTestSupport.groupSettings(topic))
        try next.subscribe(topics: [topic])
        XCTAssertEqual(try consume(next, count: 3).map(\.offset), [7, 8, 9])
        try next.close()

        // Without a group: assign at an offset, then seek back.
        let reader = try KafkaConsumer(config: config)
        try reader.assign([partition: .offset(8)])
        XCTAssertEqual(try consume(reader, count: 2).map(\.offset), [8, 9])
        try reader.seek([partition: .offset(2)])
        XCTAssertEqual(try consume(reader, count: 3).map(\.value), ["value-2", "value-3", "value-4"])
        try reader.close()
    }

    func testAProducerWithoutBrokerBuffersThenFailsItsDeliveriesAndCountsThem() throws {
        _ = try KafkaTestSupport.config()  // the same requirements as the other tests
        let deadBroker = KafkaConfig(bootstrapServers: "127.0.0.1:\(KafkaTestSupport.unusedPort())",
                                     clientID: "tape-test-down", properties: ["log_level": "0"])
        var settings = KafkaProducerSettings()
        settings.messageTimeoutMilliseconds = 1_500
        settings.queuedMessagesMax = 5
        let producer = try KafkaProducer(config: deadBroker, settings: settings)
        for index in 0..<5 {
            XCTAssertEqual(try producer.produce(topic: "tick_data", key: [UInt8(index)], value: [1, 2, 3]), .enqueued)
        }
        XCTAssertEqual(try producer.produce(topic: "tick_data", key: [9], value: [1]), .queueFull,
                       "the local queue is bounded")
        var counters = producer.counters
        XCTAssertEqual(counters.enqueued, 5)
        XCTAssertEqual(counters.queueFull, 1)
        XCTAssertEqual(counters.awaitingReport, 5)

        XCTAssertEqual(producer.flush(timeoutMilliseconds: 10_000), 0, "every record got its (failed) report")
        counters = producer.counters
        XCTAssertEqual(counters.delivered, 0)
        XCTAssertEqual(counters.failedByError, ["_MSG_TIMED_OUT": 5])
        XCTAssertEqual(counters.awaitingReport, 0)
        XCTAssertFalse(counters.clientErrors.isEmpty, "the broker outage is reported: \(counters)")
        XCTAssertNil(producer.fatalError)
        XCTAssertEqual(try producer.produce(topic: "tick_data", key: [9], value: [1]), .enqueued, "room again")
        XCTAssertEqual(producer.close(timeoutMilliseconds: 0), 1, "close says what it dropped")
    }
}

/// Delivery reports, appended on the producer's poll thread.
final class Reports: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [KafkaDeliveryReport] = []
    func append(_ report: KafkaDeliveryReport) {
        lock.lock()
        reports.append(report)
        lock.unlock()
    }
    var all: [KafkaDeliveryReport] {
        lock.lock()
        defer { lock.unlock() }
        return reports
    }
}

/// Rebalance events of the members of a test (handlers run on the polling thread: the test's).
final class RebalanceLog {
    struct Event {
        var member: String
        var kind: String
        var partitions: [KafkaTopicPartition]
    }
    private(set) var all: [Event] = []
    private var holding: [String: Set<KafkaTopicPartition>] = [:]

    func handler(_ member: String) -> KafkaRebalanceHandler {
        KafkaRebalanceHandler(assigned: { partitions in
            self.all.append(Event(member: member, kind: "assigned", partitions: partitions))
            self.holding[member, default: []].formUnion(partitions)
            return [:]
        }, revoked: { partitions, _ in
            self.all.append(Event(member: member, kind: "revoked", partitions: partitions))
            self.holding[member, default: []].subtract(partitions)
        })
    }

    func held(_ member: String) -> [KafkaTopicPartition] { (holding[member] ?? []).sorted() }
}
