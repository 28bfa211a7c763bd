import Foundation
import TapeLogging
import XCTest

/// The log handler's two formats, its level, and `/ready`'s readiness report: in-process, no server.
final class TapeLoggingTests: XCTestCase {
    /// Lines a logger wrote (any thread).
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        func append(_ line: String) { lock.withLock { stored.append(line) } }
        var all: [String] { lock.withLock { stored } }
    }

    func testTheTextFormatIsTheHumanLineAlone() {
        let lines = Lines()
        let logger = TapeLogging.logger(label: "tape.work") { lines.append($0) }
        logger.info("tape work: w1 took tick_data[0] at offset 42", metadata: ["partition": .stringConvertible(0)])
        logger.warning("tape: postgres 127.0.0.1:55432/tape: down (server closed the connection)")
        XCTAssertEqual(lines.all, ["tape work: w1 took tick_data[0] at offset 42",
                                   "tape: postgres 127.0.0.1:55432/tape: down (server closed the connection)"])
    }

    /// ts, level, label, message first, in that order; then the metadata flattened with its keys sorted;
    /// numbers and Booleans given as such stay JSON numbers and Booleans; a reserved key is renamed.
    func testAJSONLineHasTheDocumentedKeysInAStableOrder() throws {
        let line = JSONLogLine.render(
            time: 1_764_140_400_123_456_789, level: .warning, label: "tape.work",
            message: "tape: postgres p: down (\"quoted\"\nsecond line)",
            metadata: ["peer": "127.0.0.1:55432/tape", "partition": .stringConvertible(1), "offset": .stringConvertible(Int64(42)),
                       "down_seconds": .stringConvertible(2.5), "paused": .stringConvertible(true),
                       "store": .dictionary(["kind": "postgres", "epoch": .stringConvertible(3)]),
                       "partitions": .array([.stringConvertible(0), .stringConvertible(1)]), "message": "mine"])
        XCTAssertEqual(line, #"{"ts":"2025-11-26T07:00:00.123Z","level":"warning","label":"tape.work","#
                       + #""message":"tape: postgres p: down (\"quoted\"\nsecond line)","down_seconds":2.5,"#
                       + #""metadata.message":"mine","offset":42,"partition":1,"partitions":[0,1],"paused":true,"#
                       + #""peer":"127.0.0.1:55432/tape","store.epoch":3,"store.kind":"postgres"}"#)
        XCTAssertFalse(line.contains("\n"), "one line")
        struct Decoded: Decodable { let ts: String; let level: String; let label: String; let message: String; let offset: Int }
        let decoded = try JSONDecoder().decode(Decoded.self, from: Data(line.utf8))
        XCTAssertEqual(decoded.message, "tape: postgres p: down (\"quoted\"\nsecond line)")
        XCTAssertEqual(decoded.offset, 42)
    }

    func testTheTimestampIsUTCWithMilliseconds() {
        XCTAssertEqual(JSONLogLine.timestamp(0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(JSONLogLine.timestamp(1_000_999_999), "1970-01-01T00:00:01.000Z")
        XCTAssertEqual(JSONLogLine.timestamp(1_723_161_600_999_000_000), "2024-08-09T00:00:00.999Z")
    }

    func testAJSONLoggerWritesEveryEventAsAnObjectWithItsMetadataAndLoggerMetadata() throws {
        let lines = Lines()
        var logger = TapeLogging.logger(label: "tape.feed", format: .json) { lines.append($0) }
        logger[metadataKey: "feed"] = "binance-spot"
        logger.notice("tape: binance-spot ws://127.0.0.1:1: connected", metadata: ["state": "connected"])
        let line = try XCTUnwrap(lines.all.first)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["level"] as? String, "notice")
        XCTAssertEqual(object["label"] as? String, "tape.feed")
        XCTAssertEqual(object["feed"] as? String, "binance-spot")
        XCTAssertEqual(object["state"] as? String, "connected")
        XCTAssertNotNil(ISO8601DateFormatter().date(from: String((object["ts"] as? String ?? "").prefix(19)) + "Z"))
    }

    /// The process's level applies to every logger, those made before it was set included; a logger's own
    /// level can only be stricter.
    func testTheLevelSuppressesWhatIsBelowIt() {
        let lines = Lines()
        let settings = LogOutput.lines(level: .warning) { lines.append($0) }
        var quiet = Logger(label: "tape.test") { TapeLoggingTests.handler($0, settings) }
        quiet.info("an info line")
        quiet.notice("a notice line")
        quiet.warning("a warning line")
        quiet.logLevel = .trace   // cannot go below the output's level
        quiet.info("still suppressed")
        quiet.logLevel = .error
        quiet.warning("now suppressed too")
        quiet.error("an error line")
        XCTAssertEqual(lines.all, ["a warning line", "an error line"])
    }

    static func handler(_ label: String, _ output: LogOutput) -> TapeLogHandler { TapeLogHandler(label: label, output: output) }

    /// Lines written from many threads at once come out whole, one per event.
    func testLinesFromManyThreadsNeverInterleave() {
        let lines = Lines()
        let logger = TapeLogging.logger(label: "tape.test", format: .json) { lines.append($0) }
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<200 { logger.info(.text("thread \(thread) line \(index) " + String(repeating: "x", count: 300))) }
        }
        XCTAssertEqual(lines.all.count, 1_600)
        XCTAssertTrue(lines.all.allSatisfy { $0.hasPrefix("{\"ts\":") && $0.hasSuffix("\"}") && !$0.contains("\n") })
    }

    func testReadinessIsReadyWhenEveryRequiredDependencyIsUp() {
        let readiness = Readiness()
        let postgres = DependencyTracker(name: "postgres", status: .up, peer: "127.0.0.1:55432/tape")
        let influx = DependencyTracker(name: "influx", status: .up, required: false, peer: "127.0.0.1:58086")
        readiness.register("stores") { [postgres.current, influx.current] }
        XCTAssertTrue(readiness.report().ready)
        influx.set(.down, detail: "connection refused")
        XCTAssertTrue(readiness.report().ready, "a dependency that is not required does not make it not ready")
        XCTAssertTrue(postgres.set(.down, detail: "server closed the connection unexpectedly"))
        XCTAssertFalse(postgres.set(.down, detail: "still"), "no change")
        let (ready, json) = readiness.report()
        XCTAssertFalse(ready)
        let text = json.renderCompact()
        XCTAssertTrue(text.hasPrefix(#"{"status":"not_ready","dependencies":{"postgres":{"status":"down","required":true,"#
                                     + #""server":"127.0.0.1:55432/tape","detail":"still","since":""#), text)
        XCTAssertTrue(text.contains(#""influx":{"status":"down","required":false"#), text)
        readiness.register("stores") { [postgres.current, postgres.current] }
        XCTAssertTrue(readiness.report().json.renderCompact().contains(#""postgres#2":"#), "a name seen twice is told apart")
        readiness.remove("stores")
        XCTAssertEqual(readiness.report().json.renderCompact(), #"{"status":"ready","dependencies":{}}"#)
    }
}
