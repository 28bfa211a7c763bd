import Foundation
import TapeCore
import TapeSinks
import TapeEngine
import TapeReplay
import TapeStore
import TapeBus
import TapeWork
import TapeLogging
import TapeTestSupport
import XCTest

/// A topic held in memory: the records `TickBusSink` publishes, partitioned by key (each new symbol to
/// the next partition, round robin), as a broker would keep them (offset = index).
final class MemoryTopic: TickPublisher, @unchecked Sendable {
    let partitionCount: Int32
    var partitions: [[(key: [UInt8], value: [UInt8])]]
    var assigned: [[UInt8]: Int32] = [:]
    init(partitions: Int32) { partitionCount = partitions; self.partitions = Array(repeating: [], count: Int(partitions)) }
    func publish(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?, timestampMs: Int64) {
        let keyBytes = key.map { Array($0) } ?? []
        let p = partition ?? {
            if let known = assigned[keyBytes] { return known }
            let next = Int32(assigned.count) % partitionCount
            assigned[keyBytes] = next
            return next
        }()
        partitions[Int(p)].append((keyBytes, Array(value)))
    }
    func poll() {}
    var failure: (any Error)? { nil }
    func flush() throws {}
    func close() throws {}
    var report: JSONValue { .object([]) }
}

/// `tape work`'s partitions without a broker: the records a replay publishes through `TickBusSink`,
/// handled per partition by `PartitionWork` into PostgreSQL, must equal the replay's own run folder —
/// with a worker that dies between two commits and a replacement that continues from the committed
/// checkpoint, a zombie whose late commit is fenced, a poison record skipped, and records resent by a
/// producer recognised by their place in the ingest session and skipped.
extension PostgresStoreTests {
    func testPartitionsStoreWhatTheReplayMadeExactlyOnceThroughACrashAndAZombie() throws {
        let inputs = try captures().filter { $0.contains("_20240808") && !$0.contains("cm-") }
        XCTAssertEqual(inputs.count, 3, "spot BTCUSDT, spot ETHUSDT, USDⓈ-M BTCUSDT")
        let url = try freshDatabase("partitions")
        let out = temporaryFolder("partitions-replay")
        let topic = MemoryTopic(partitions: 3)
        var options = ReplayOptions(inputs: inputs)
        options.outDir = out
        options.sinkFactories = [{ context in TickBusSink(publisher: topic, symbols: context.symbols) }]
        let replay = try runReplay(options)
        let counts = topic.partitions.map(\.count)
        XCTAssertTrue(counts.allSatisfy { $0 > 1_000 }, "every partition holds records: \(counts)")
        // The poison record, in the middle of partition 1.
        topic.partitions[1].insert((Array("BTCUSDT".utf8), Array("not a tick record, but text a producer sent by mistake".utf8)), at: counts[1] / 2)
        // A producer's resend in partition 2 (after a broker restart): the 50 records before the middle, again.
        let middle = counts[2] / 2
        topic.partitions[2].insert(contentsOf: topic.partitions[2][(middle - 50)..<middle], at: middle)

        let connection = try PostgresConnection(url: url)
        try StoreSchema.migrate(connection)
        let configHash = FileHash.sha256(text: options.engine.config.canonicalText)
        func settings(_ worker: String) -> PartitionSettings {
            PartitionSettings(engine: options.engine, postgresURL: url, configHash: configHash, worker: worker,
                              spoolDirectory: temporaryFolder("spool"),
                              logger: TapeLogging.logger(label: "tape.work") { _ in })
        }
        func acquire(_ partition: Int32, _ worker: String) throws -> PartitionWork {
            try PartitionWork(acquired: try WorkerCheckpoints.acquire(connection, group: "g", topic: "tick_data",
                                                                       partition: partition, worker: worker),
                              settings: settings(worker))
        }
        func feed(_ work: PartitionWork, _ partition: Int, from: Int, to: Int, commitEvery: Int = 4_000) -> [PartitionWork.Outcome] {
            var unusual: [PartitionWork.Outcome] = []
            for offset in from..<to {
                let record = topic.partitions[partition][offset]
                let outcome = record.key.withUnsafeBytes { k in record.value.withUnsafeBytes { v in
                    work.handle(offset: Int64(offset), key: k, value: v) } }
                if outcome != .handled { unusual.append(outcome) }
                if work.uncommitted >= commitEvery { XCTAssertTrue(work.commit()) }
            }
            return unusual
        }

        // Partition 0: worker A commits a third, handles more without committing, and dies. Worker B takes
        // the partition (epoch 2), continues from A's checkpoint; A's late commit is fenced.
        let n0 = topic.partitions[0].count
        let a = try acquire(0, "A")
        XCTAssertNil(a.startOffset)
        _ = feed(a, 0, from: 0, to: n0 / 3, commitEvery: .max)
        XCTAssertTrue(a.commit())
        try a.close(commit: true)   // durable: the third is committed
        let zombie = try acquire(0, "A")
        XCTAssertEqual(zombie.startOffset, Int64(n0 / 3))
        _ = feed(zombie, 0, from: n0 / 3, to: n0 / 2, commitEvery: .max)
        let b = try acquire(0, "B")
        XCTAssertEqual(b.startOffset, Int64(n0 / 3), "B continues from the last committed checkpoint")
        zombie.commit()
        XCTAssertThrowsError(try zombie.close(commit: true)) { error in
            XCTAssertTrue("\(error)".contains("another worker took the partition"), "\(error)")
        }
        // B starts one record early, where the checkpoint's last record must be. Here the topic was
        // re-created (another record sits there): B reads the partition from the beginning, and what the
        // checkpoint handled is skipped by its place.
        XCTAssertTrue(b.canCheckFencePost(low: 0))
        b.expectFencePost()
        let other = topic.partitions[0][5]
        XCTAssertEqual(other.key.withUnsafeBytes { k in other.value.withUnsafeBytes { v in
            b.handle(offset: Int64(n0 / 3 - 1), key: k, value: v) } }, .rewind(committed: Int64(n0 / 3)))
        XCTAssertEqual(feed(b, 0, from: 0, to: n0), Array(repeating: .duplicate, count: n0 / 3))
        try b.close(commit: true)
        // The next owner finds the checkpoint's last record where it belongs, and starts after it.
        let d = try acquire(0, "D")
        XCTAssertEqual(d.startOffset, Int64(n0))
        XCTAssertTrue(d.canCheckFencePost(low: 0))
        XCTAssertFalse(d.canCheckFencePost(low: Int64(n0)), "nothing before the committed offset to check")
        d.expectFencePost()
        XCTAssertEqual(feed(d, 0, from: n0 - 1, to: n0), [.fencePost])
        XCTAssertEqual(d.counters.records, 0)
        try d.close(commit: true)

        // Partitions 1 and 2: one worker each, straight through; the poison record is skipped and said.
        for partition in [1, 2] {
            let work = try acquire(Int32(partition), "C")
            let unusual = feed(work, partition, from: 0, to: topic.partitions[partition].count)
            if partition == 1 {
                XCTAssertEqual(unusual.count, 1)
                if case .poison(let detail)? = unusual.first { XCTAssertTrue(detail.contains("not a Tape tick record"), detail) }
                else { XCTFail("\(unusual)") }
                XCTAssertEqual(work.counters.poison, 1)
            } else {
                XCTAssertEqual(unusual, Array(repeating: .duplicate, count: 50), "the resent records are skipped")
                XCTAssertEqual(work.counters.duplicates, 50)
            }
            XCTAssertEqual(work.counters.sessionsEnded, 1, "the end-of-session mark reached the partition")
            try work.close(commit: true)
        }

        try assertStoreEqualsRunFolder(url, runFolder: try sortedRunFolder(out))
        XCTAssertEqual(try connection.query("SELECT count(*) FROM ticks").first?[0], String(replay.summary.ticksDelivered))
        let committed = try WorkerCheckpoints.offsets(connection, group: "g", topic: "tick_data")
        XCTAssertEqual(committed, [0: Int64(n0), 1: Int64(counts[1] + 1), 2: Int64(counts[2] + 50)])
    }
}
