import Foundation
import TapeKafka
import TapeTestSupport
import XCTest

/// Produce and consume throughput against the broker, lz4 and uncompressed. In `make test` it runs on
/// a small count and checks only that every record went through; `scripts/bench_kafka.sh` runs it with
/// `TAPE_KAFKA_BENCH_MESSAGES=1000000` and prints the figures (docs/kafka.md). Timings are never asserted.
final class KafkaThroughputTests: XCTestCase {
    static let symbols = (0..<100).map { Array("SYM\($0)".utf8) }
    /// A tick-sized value: about what an encoded trade takes.
    static let valueBytes = 64

    func testProduceAndConsumeThroughput() throws {
        let config = try KafkaTestSupport.config(clientID: "tape-bench")
        let environment = ProcessInfo.processInfo.environment
        let count = Int(environment["TAPE_KAFKA_BENCH_MESSAGES"] ?? "") ?? 20_000
        let partitions = Int(environment["TAPE_KAFKA_BENCH_PARTITIONS"] ?? "") ?? 3
        var figures: [String: Double] = [:]
        for compression in [KafkaProducerSettings.Compression.none, .lz4] {
            let topic = KafkaTestSupport.topic("bench-\(compression.rawValue)")
            try KafkaTestSupport.createTopic(config, topic, partitions: partitions)
            let produced = try produce(config, topic: topic, count: count, compression: compression)
            let consumed = try consume(config, topic: topic, partitions: partitions, count: count)
            figures["produce_\(compression.rawValue)"] = produced
            figures["consume_\(compression.rawValue)"] = consumed
        }
        print("KAFKA-BENCH messages=\(count) value_bytes=\(Self.valueBytes) partitions=\(partitions) linger_ms=5 "
              + figures.sorted { $0.key < $1.key }.map { "\($0.key)_per_s=\(Int($0.value))" }.joined(separator: " "))
    }

    /// Records per second from the first `produce` until `flush` saw the last delivery report.
    private func produce(_ config: KafkaConfig, topic: String, count: Int,
                         compression: KafkaProducerSettings.Compression) throws -> Double {
        var settings = KafkaProducerSettings()
        settings.lingerMilliseconds = 5
        settings.compression = compression
        let producer = try KafkaProducer(config: config, settings: settings)
        var value = [UInt8](repeating: 0, count: Self.valueBytes)
        let start = DispatchTime.now().uptimeNanoseconds
        var waits = 0
        for index in 0..<count {
            // A value that changes like a tick does (sequence, price digits), the rest constant.
            withUnsafeBytes(of: UInt64(index).littleEndian) { value.replaceSubrange(0..<8, with: $0) }
            let key = Self.symbols[index % Self.symbols.count]
            while try producer.produce(topic: topic, key: key, value: value,
                                       timestampMilliseconds: 1_700_000_000_000 + Int64(index)) == .queueFull {
                waits += 1
                usleep(1_000)
            }
        }
        XCTAssertEqual(producer.flush(timeoutMilliseconds: 120_000), 0)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let counters = producer.counters
        XCTAssertEqual(counters.delivered, count, "\(counters)")
        XCTAssertEqual(counters.failed, 0, "\(counters)")
        print("KAFKA-BENCH produce \(compression.rawValue): \(count) in \(String(format: "%.2f", seconds)) s, "
              + "\(counters.queueFull) queue-full answers, \(waits) waits")
        producer.close()
        return Double(count) / seconds
    }

    /// Records per second read back by a manually assigned consumer, from the beginning.
    private func consume(_ config: KafkaConfig, topic: String, partitions: Int, count: Int) throws -> Double {
        let consumer = try KafkaConsumer(config: config)
        try consumer.assign(Dictionary(uniqueKeysWithValues: (0..<partitions).map {
            (KafkaTopicPartition(topic: topic, partition: Int32($0)), KafkaOffset.beginning)
        }))
        var read = 0
        var bytes = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = Date().addingTimeInterval(120)
        while read < count && Date() < deadline {
            guard let message = try consumer.poll(timeoutMilliseconds: 100) else { continue }
            read += 1
            bytes += message.value?.count ?? 0
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertEqual(read, count)
        XCTAssertEqual(bytes, count * Self.valueBytes)
        try consumer.close()
        return Double(read) / seconds
    }
}
