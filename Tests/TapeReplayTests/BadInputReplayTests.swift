import Foundation
import XCTest
import TapeCore
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources

/// Bad input end to end: the run goes on, rejects are counted per reason in summary.json and kept in
/// rejects.csv.gz with file and line, and the exit code says so.
final class BadInputReplayTests: XCTestCase {
    func run(_ inputs: [String], name: String) throws -> (ReplaySummary, [String: Any], [String]) {
        var o = ReplayOptions(inputs: inputs)
        o.outDir = Paths.tempDir(name)
        var messages: [String] = []
        o.quiet = false      // per-reject messages on (the CLI's default)
        o.messagePrinter = { messages.append($0) }
        let s = try runReplay(o)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.runDir + "/summary.json"))) as! [String: Any]
        return (s, json, messages)
    }

    func testTruncatedCaptureIsProcessedUpToTheCutAndReported() throws {
        let src = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        let dir = Paths.tempDir("trunc")
        let damaged = dir + "/spot-btcusdt_20240808.gz"
        let data = try Data(contentsOf: URL(fileURLWithPath: src))
        try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: damaged))
        let (s, json, messages) = try run([damaged], name: "trunc-run")
        XCTAssertEqual(s.exitCode, TapeExit.inputRejected)
        XCTAssertEqual(s.rejectsByReason["truncated_gzip"], 1)
        XCTAssertGreaterThan(s.ticksIn, 10_000)
        XCTAssertLessThan(s.ticksIn, 9757 + 28040)
        XCTAssertEqual((json["ticks_rejected_by_reason"] as! [String: Int])["truncated_gzip"], 1)
        XCTAssertTrue(messages.contains { $0.contains(damaged) && $0.contains("truncated_gzip") }, "\(messages)")
        // rejects.csv.gz holds the record with file and line.
        let (rc, out, _) = try sh("gzip -dc '\(s.runDir)/rejects.csv.gz' 2>/dev/null || cat '\(s.runDir)/rejects.csv.gz'")
        XCTAssertEqual(rc, 0)
        let rows = out.split(separator: "\n")
        XCTAssertEqual(rows.first, "file,line,reason,detail")
        XCTAssertEqual(rows.count, 2)
        XCTAssertTrue(rows[1].hasPrefix("\(damaged),"))
        XCTAssertTrue(rows[1].contains(",truncated_gzip,"))
    }

    func testMissingFileIsUnusableInput() throws {
        var o = ReplayOptions(inputs: ["/nonexistent/capture.gz"])
        o.outDir = Paths.tempDir("missing")
        XCTAssertThrowsError(try runReplay(o)) { e in
            XCTAssertTrue(e is UnusableInput)
            XCTAssertTrue("\(e)".contains("/nonexistent/capture.gz"))
        }
    }

    func testCleanRunExitsZeroAndSummaryHasTheDocumentedKeys() throws {
        let src = try Paths.captures().first { $0.hasSuffix("cm-ethusd_perp_20240808.gz") }!
        let (s, json, _) = try run([src], name: "clean")
        XCTAssertEqual(s.exitCode, TapeExit.clean)
        for k in ["ticks_in", "ticks_rejected", "ticks_rejected_by_reason", "events_out", "digest", "wall_seconds",
                  "ticks_per_second", "inputs", "config_hash", "skipped", "events_out_by_kind"] {
            XCTAssertNotNil(json[k], k)
        }
        XCTAssertEqual(json["ticks_in"] as? Int, 1732 + 15812)
        XCTAssertEqual((json["skipped"] as! [String: Int])["depth"], 22909)
        let inputs = json["inputs"] as! [[String: Any]]
        let (_, sha, _) = try sh("sha256sum '\(src)' | cut -d' ' -f1")
        XCTAssertEqual(inputs[0]["sha256"] as? String, sha.trimmingCharacters(in: .whitespacesAndNewlines))
        // The digest is 64 lowercase hex digits (its value is checked against goldens and across runs).
        let digest = try XCTUnwrap(json["digest"] as? String)
        XCTAssertEqual(digest.count, 64)
        XCTAssertTrue(digest.allSatisfy { "0123456789abcdef".contains($0) }, digest)
    }
}
