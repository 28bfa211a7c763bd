import Foundation
import XCTest
import TapeTestSupport

/// Determinism across processes: Swift seeds its hashing per process, so a `Dictionary` or `Set`
/// iterated in hash order gives another order in another process. Two runs inside one test process
/// share the seed and cannot see that; two runs of the built `tape` binary can.
final class CrossProcessDeterminismTests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }

    /// Runs `tape replay` in its own process with per-process hash seeding on; returns summary.json.
    func replay(_ inputs: [String], _ extra: [String], out: String) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = ["replay"] + inputs + extra + ["--out", out, "--quiet", "--no-report"]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "SWIFT_DETERMINISTIC_HASHING")
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "tape replay \(extra)")
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func assertSameOutputs(_ a: [String: Any], _ b: [String: Any], _ what: String) {
        let digest = a["digest"] as? String
        XCTAssertEqual(digest?.count, 64, what)
        XCTAssertEqual(digest, b["digest"] as? String, "\(what): digest")
        XCTAssertEqual(a["events_out_by_kind"] as? [String: Int], b["events_out_by_kind"] as? [String: Int], what)
        // Per-symbol digests, once summary.json has them.
        if a["digests_by_symbol"] != nil || b["digests_by_symbol"] != nil {
            let perSymbolA = a["digests_by_symbol"] as? [String: String]
            XCTAssertNotNil(perSymbolA, "\(what): digests_by_symbol")
            XCTAssertEqual(perSymbolA, b["digests_by_symbol"] as? [String: String], "\(what): digests_by_symbol")
        }
    }

    func testThreeMergedCapturesGiveTheSameDigestsInTwoProcessesAndAtAnotherSpeed() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let captures = try Paths.captures()
        let names = ["spot-btcusdt_20240808.gz", "usdm-btcusdt_20240808.gz", "cm-btcusd_perp_20240808.gz"]
        let inputs = try names.map { name in try XCTUnwrap(captures.first { $0.hasSuffix("/" + name) }, name) }
        let directory = Paths.tempDir("cross-process")
        // Short timeframes: about 600 outputs over these five minutes, interleaved across three symbols.
        let config = directory + "/short-timeframes.yaml"
        try "timeframes: [5s, 15s, 1m]\n".write(toFile: config, atomically: true, encoding: .utf8)
        let first = try replay(inputs, ["--config", config], out: directory + "/first")
        let second = try replay(inputs, ["--config", config], out: directory + "/second")
        assertSameOutputs(first, second, "two processes, full speed")
        XCTAssertGreaterThan(first["events_out"] as? Int ?? 0, 500)

        // A 15-second slice across a minute boundary (bars close in it), paced at 50x (about 0.3 s),
        // against the same slice at full speed.
        let slice = ["--from", "2024-08-08T23:56:55Z", "--to", "2024-08-08T23:57:10Z"]
        let fast = try replay(inputs, ["--config", config] + slice, out: directory + "/slice-max")
        let paced = try replay(inputs, ["--config", config] + slice + ["--speed", "50"], out: directory + "/slice-50x")
        assertSameOutputs(fast, paced, "slice at max vs 50x")
        XCTAssertEqual(paced["speed"] as? String, "50")
        XCTAssertGreaterThan(fast["events_out"] as? Int ?? 0, 0)
        XCTAssertNotEqual(fast["digest"] as? String, first["digest"] as? String, "the slice is a different input")
    }
}
