import Foundation
import TapeMetrics
import TapeTestSupport
import XCTest

/// The writer against the real InfluxDB: batching by size and time, gzip, database creation, rejected
/// batches, and an unreachable server that never blocks the caller.
final class InfluxWriterTests: XCTestCase {
    private func settings(_ database: String, port: Int = InfluxServer.port) -> InfluxWriter.Settings {
        var settings = InfluxWriter.Settings(endpoint: InfluxEndpoint(baseURL: "http://127.0.0.1:\(port)",
                                                                      database: database))
        settings.retryInitialNanoseconds = 10_000_000
        settings.retryMaxNanoseconds = 100_000_000
        return settings
    }

    private func points(_ count: Int, measurement: String = "load", start: Int64 = 1_700_000_000_000_000_000)
        -> [MetricPoint] {
        (0..<count).map {
            MetricPoint(measurement, tags: ["shard": "s\($0 % 4)"],
                        fields: ["value": .integer(Int64($0)), "half": .float(Double($0) / 2)], time: start + Int64($0))
        }
    }

    /// 12 345 points in one write with batches of 5 000: two full batches at once, the rest when the
    /// time limit (1 s) has passed; all of them are in the database, gzip made the bodies smaller, and the
    /// database was created by the writer.
    func testBatchesBySizeThenByTimeAllPointsArrive() throws {
        try InfluxServer.require()
        let database = InfluxServer.freshDatabase("batches")
        defer { InfluxServer.drop(database) }
        var settings = settings(database)
        settings.batchLinesMax = 5_000
        settings.batchIntervalNanoseconds = 1_000_000_000
        let log = CollectedLines()
        let writer = InfluxWriter(settings: settings, logger: log.logger)
        let started = Date()
        writer.write(points(12_345))
        XCTAssertTrue(waitUntil(seconds: 10) { writer.counters.batchesWritten >= 2 })
        XCTAssertEqual(writer.counters.linesWritten, 10_000, "two full batches went out before the time limit")
        XCTAssertTrue(waitUntil(seconds: 10) { writer.counters.linesWritten == 12_345 })
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9, "the remainder waited for the time limit")
        XCTAssertTrue(writer.close())
        let counters = writer.counters
        XCTAssertEqual(counters.batchesWritten, 3)
        XCTAssertEqual(counters.linesDropped, 0)
        XCTAssertEqual(counters.failures, 0)
        XCTAssertTrue(counters.isBalanced, "\(counters)")
        XCTAssertLessThan(counters.bytesCompressed * 3, counters.bytesUncompressed, "gzip bodies")
        let total = try InfluxServer.statement("SELECT count(value), sum(value) FROM load", database: database)
        XCTAssertEqual(total.first?.numbers("count"), [12_345])
        XCTAssertEqual(total.first?.numbers("sum"), [Double(12_344 * 12_345 / 2)])
        XCTAssertEqual(log.all, ["tape: metrics: influx 127.0.0.1:\(InfluxServer.port) (database \(database)): writing"])
    }

    /// A batch the server refuses (a field type conflict: HTTP 400) is counted and dropped, logged once,
    /// and the writer goes on; a database dropped under it is created again.
    func testARejectedBatchIsDroppedAndAMissingDatabaseIsCreatedAgain() throws {
        try InfluxServer.require()
        let database = InfluxServer.freshDatabase("reject")
        defer { InfluxServer.drop(database) }
        let log = CollectedLines()
        let writer = InfluxWriter(settings: settings(database), logger: log.logger)
        writer.write([MetricPoint("conflict", fields: ["value": .integer(1)], time: 1_000)])
        XCTAssertTrue(writer.flush())
        writer.write([MetricPoint("conflict", fields: ["value": .float(1.5)], time: 2_000)])
        XCTAssertTrue(writer.flush())
        XCTAssertEqual(writer.counters.batchesRejected, 1)
        XCTAssertEqual(writer.counters.linesRejected, 1)
        writer.write([MetricPoint("conflict", fields: ["value": .integer(3)], time: 3_000)])
        XCTAssertTrue(writer.flush())
        XCTAssertEqual(writer.counters.linesWritten, 2)

        InfluxServer.drop(database)
        writer.write([MetricPoint("conflict", fields: ["value": .integer(4)], time: 4_000)])
        XCTAssertTrue(waitUntil(seconds: 10) { writer.counters.linesWritten == 3 }, "\(writer.counters)")
        XCTAssertTrue(writer.close())
        let counters = writer.counters
        XCTAssertEqual(counters.failures, 1, "one 404 (database not found), then created again")
        XCTAssertTrue(counters.isBalanced, "\(counters)")
        let values = try InfluxServer.statement("SELECT value FROM conflict", database: database)
        XCTAssertEqual(values.first?.numbers("value"), [4], "the database was created again and written")

        let server = "tape: metrics: influx 127.0.0.1:\(InfluxServer.port) (database \(database)): "
        let lines = log.all
        XCTAssertEqual(lines.count, 6, "\(lines)")
        guard lines.count == 6 else { return }
        XCTAssertEqual(lines[0], server + "writing")
        XCTAssertTrue(lines[1].hasPrefix(server + "rejected a batch of 1 lines (HTTP 400: "), lines[1])
        XCTAssertTrue(lines[1].contains("field type conflict"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix(server + "writing again"), lines[2])
        XCTAssertTrue(lines[3].hasPrefix(server + "not written (HTTP 404: "), lines[3])
        XCTAssertTrue(lines[3].contains("database not found"), lines[3])
        XCTAssertTrue(lines[4].hasPrefix(server + "writing again"), lines[4])
        XCTAssertTrue(lines[5].hasPrefix(server + "closed; 3 lines written, 1 dropped (0 buffer full, 1 rejected"),
                      lines[5])
    }

    /// Nothing listens: `write` returns at once however much is written, the buffer keeps the newest
    /// points and counts the oldest as dropped, one log line names the server (never the password),
    /// and close gives up within its limit with every point accounted for.
    func testAnUnreachableServerNeverBlocksTheCaller() throws {
        let port = closedLoopbackPort()
        var settings = InfluxWriter.Settings(endpoint: try InfluxEndpoint(
            url: "influx://tape:pw-s3cret@127.0.0.1:\(port)/tape"))
        settings.bufferLinesMax = 1_000
        settings.batchLinesMax = 100
        settings.batchIntervalNanoseconds = 10_000_000
        settings.retryInitialNanoseconds = 5_000_000
        settings.retryMaxNanoseconds = 50_000_000
        settings.closeWaitNanosecondsMax = 3_000_000_000
        let log = CollectedLines()
        let writer = InfluxWriter(settings: settings, logger: log.logger)
        var slowestWrite: TimeInterval = 0
        for round in 0..<200 {
            let before = Date()
            writer.write(points(100, start: Int64(round) * 1_000))
            slowestWrite = max(slowestWrite, Date().timeIntervalSince(before))
            usleep(1_000)
        }
        XCTAssertTrue(waitUntil(seconds: 5) { writer.counters.failures >= 3 }, "\(writer.counters)")
        XCTAssertLessThan(slowestWrite, 0.25, "write never waits on the network")
        XCTAssertFalse(writer.flush(), "flush returns at once while the server is failing")
        let closing = Date()
        XCTAssertTrue(writer.close())
        XCTAssertLessThan(Date().timeIntervalSince(closing), 3.5)
        let counters = writer.counters
        XCTAssertEqual(counters.linesAccepted, 20_000)
        XCTAssertEqual(counters.linesWritten, 0)
        XCTAssertEqual(counters.outages, 1)
        XCTAssertGreaterThan(counters.linesDroppedBufferFull, 0)
        XCTAssertEqual(counters.linesDroppedAtClose, 1_000 + 100, "the full buffer and the batch being resent")
        XCTAssertTrue(counters.isBalanced, "\(counters)")
        let lines = log.all
        XCTAssertEqual(lines.count, 2, "\(lines)")
        let server = "tape: metrics: influx 127.0.0.1:\(port) (database tape): "
        XCTAssertTrue(lines.first?.hasPrefix(server + "not written (POST 127.0.0.1:\(port): ") ?? false, "\(lines)")
        XCTAssertTrue(lines.last?.contains("closed; 0 lines written, 20000 dropped") ?? false, "\(lines)")
        XCTAssertFalse(lines.joined().contains("s3cret"))
    }
}
