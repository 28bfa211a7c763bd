import Foundation
import XCTest
import TapeTestSupport
import TapeCore

/// Checkpoints across processes: `tape replay --stop-at T --snapshot-out F` then `tape replay
/// --snapshot-in F` (two more processes) give, kind by kind, exactly the rows of one uninterrupted run:
/// part 1's rows followed by part 2's. (The in-process `GraphSnapshotTests` check the exact emission
/// order across kinds; this checks the CLI, the input position and a fresh process's symbol table.)
final class SnapshotReplayTests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }
    let kinds = ["bars", "indicators", "anomalies", "late_ticks"]

    func run(_ args: [String]) throws -> (Int32, String, String) {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        return try sh(([tape] + args).map { "'\($0)'" }.joined(separator: " "))
    }

    func rows(_ runDir: String, _ kind: String) throws -> [String] {
        try String(contentsOfFile: runDir + "/" + kind + ".csv", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    func summary(_ runDir: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: runDir + "/summary.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Splits `inputs` at each fraction of their receive-time span and checks part 1 ++ part 2 = whole.
    func checkSplits(_ inputs: [String], fractions: [Double], extra: [String] = [], name: String) throws {
        let directory = Paths.tempDir("snap-\(name)")
        var (code, _, error) = try run(["replay"] + inputs + extra + ["--quiet", "--no-report", "--out", directory + "/whole"])
        XCTAssertTrue(code == 0 || code == 3, "\(name): \(error)")
        let whole = try summary(directory + "/whole")
        let first = try XCTUnwrap(whole["first_receive_ns"] as? Int64)
        let last = try XCTUnwrap(whole["last_receive_ns"] as? Int64)
        for fraction in fractions {
            let split = first + Int64(Double(last - first) * fraction)
            let checkpoint = directory + "/at-\(fraction).ckpt"
            let part1 = directory + "/part1-\(fraction)", part2 = directory + "/part2-\(fraction)"
            (code, _, error) = try run(["replay"] + inputs + extra + [
                "--quiet", "--no-report", "--out", part1, "--stop-at", String(split), "--snapshot-out", checkpoint])
            XCTAssertTrue(code == 0 || code == 3, "\(name) part 1 at \(fraction): \(error)")
            (code, _, error) = try run(["replay"] + inputs + extra + [
                "--quiet", "--no-report", "--out", part2, "--snapshot-in", checkpoint])
            XCTAssertTrue(code == 0 || code == 3, "\(name) part 2 at \(fraction): \(error)")
            XCTAssertEqual(try summary(part1)["stop"] as? String, "stop_time", "\(name) at \(fraction)")
            for kind in kinds {
                let expected = try rows(directory + "/whole", kind)
                let part1Rows = try rows(part1, kind), part2Rows = try rows(part2, kind)
                XCTAssertEqual(part1Rows.first, expected.first, "header")
                XCTAssertEqual(part1Rows + part2Rows.dropFirst(), expected, "\(name) \(kind) split at \(fraction)")
            }
            let delivered = (try summary(part1)["ticks_delivered"] as? Int ?? -1)
            XCTAssertGreaterThan(delivered, 0, "\(name): part 1 delivered nothing at \(fraction)")
            XCTAssertEqual(try summary(part2)["ticks_delivered"] as? Int, whole["ticks_delivered"] as? Int,
                           "\(name): the continued run's counters carry on from the checkpoint")
        }
    }

    func testEveryCaptureSplitAcrossProcesses() throws {
        for capture in try Paths.captures() {
            try checkSplits([capture], fractions: [0.1, 0.5, 0.9],
                            name: ((capture as NSString).lastPathComponent as NSString).deletingPathExtension)
        }
    }

    func testMergedCapturesAndABarFileSplitAcrossProcesses() throws {
        let captures = try Paths.captures()
        try checkSplits(captures, fractions: [0.33, 0.77], name: "all-captures")
        let bars = try XCTUnwrap(try Paths.barFiles().first { $0.contains("btc-perp") })
        try checkSplits([bars], fractions: [0.5], extra: ["--symbol", "BTC-PERP"], name: "bars")
    }

    /// A checkpoint that is not one, or taken on other inputs, is refused with exit 4 and a message
    /// naming the file: never a crash, never a run that silently starts from the beginning.
    func testBadCheckpointsAreRefused() throws {
        let captures = try Paths.captures()
        let spot = try XCTUnwrap(captures.first { $0.hasSuffix("spot-btcusdt_20240808.gz") })
        let usdm = try XCTUnwrap(captures.first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let directory = Paths.tempDir("snap-bad")
        let checkpoint = directory + "/c.ckpt"
        var (code, _, error) = try run(["replay", spot, usdm, "--quiet", "--no-report", "--out", directory + "/a",
                                        "--stop-at", "2024-08-09T00:03:00Z", "--snapshot-out", checkpoint])
        XCTAssertEqual(code, 0, error)
        // Damaged: one byte flipped in the middle.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: directory + "/damaged.ckpt"))
        (code, _, error) = try run(["replay", spot, usdm, "--quiet", "--no-report", "--out", directory + "/b",
                                    "--snapshot-in", directory + "/damaged.ckpt"])
        XCTAssertEqual(code, 4)
        XCTAssertTrue(error.contains("damaged.ckpt"), error)
        // Truncated.
        try bytes.prefix(100).write(to: URL(fileURLWithPath: directory + "/short.ckpt"))
        (code, _, error) = try run(["replay", spot, usdm, "--quiet", "--no-report", "--out", directory + "/c",
                                    "--snapshot-in", directory + "/short.ckpt"])
        XCTAssertEqual(code, 4)
        // Another config (a changed RSI period): refused, naming the config.
        let config = directory + "/other.yaml"
        try "indicators:\n  rsi: 7\n".write(toFile: config, atomically: true, encoding: .utf8)
        (code, _, error) = try run(["replay", spot, usdm, "--quiet", "--no-report", "--out", directory + "/d",
                                    "--config", config, "--snapshot-in", checkpoint])
        XCTAssertEqual(code, 4)
        XCTAssertTrue(error.contains("config"), error)
        // Fewer inputs than the checkpoint's position covers.
        (code, _, error) = try run(["replay", spot, "--quiet", "--no-report", "--out", directory + "/e",
                                    "--snapshot-in", checkpoint])
        XCTAssertEqual(code, 4)
        XCTAssertTrue(error.contains("inputs"), error)
    }
}
