import Foundation
import XCTest
import TapeTestSupport
import TapeCore

/// The `tape` executable itself: exit codes, pause/resume by SIGUSR1.
final class CLITests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }

    func run(_ args: [String]) throws -> (Int32, String, String) {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        return try sh(([tape] + args).map { "'\($0)'" }.joined(separator: " "))
    }

    func testExitCodes() throws {
        let spot = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        let out = Paths.tempDir("cli")
        var (rc, stdout, _) = try run(["replay", spot, "--out", out + "/clean", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 0)
        XCTAssertTrue(stdout.contains("digest"))
        (rc, _, _) = try run(["replay", "/nonexistent.gz", "--out", out + "/missing", "--quiet"])
        XCTAssertEqual(rc, 4)
        let bad = out + "/bad.yaml"
        try "indicators:\n  rsi: x\n".write(toFile: bad, atomically: true, encoding: .utf8)
        var err: String
        (rc, _, err) = try run(["replay", spot, "--config", bad, "--out", out + "/badcfg"])
        XCTAssertEqual(rc, 4)
        XCTAssertTrue(err.contains("indicators.rsi"), err)
        // A damaged copy: rejects → exit 3, the message names file and line.
        let data = try Data(contentsOf: URL(fileURLWithPath: spot))
        let cut = out + "/cut.gz"
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        (rc, _, err) = try run(["replay", cut, "--out", out + "/cut", "--no-report"])
        XCTAssertEqual(rc, 3)
        XCTAssertTrue(err.contains(cut + ":") && err.contains("truncated_gzip"), err)
        (rc, _, _) = try run(["replay", spot, "--speed", "fast"])
        XCTAssertEqual(rc, 64)
    }

    /// A full disk (a run-folder file or the reject log pointing at /dev/full, where every write fails
    /// with ENOSPC) ends the replay with exit code 5 and a message naming the file. Before: exit
    /// 0, a digest printed, an empty bars.csv.
    func testFullDiskExitsWithOutputFailed() throws {
        let spot = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        for fileName in ["bars.csv", "rejects.csv.gz"] {
            let out = Paths.tempDir("full-\(fileName)")
            try FileManager.default.createSymbolicLink(atPath: out + "/" + fileName, withDestinationPath: "/dev/full")
            let (rc, stdout, stderr) = try run(["replay", spot, "--out", out, "--quiet", "--no-report"])
            XCTAssertEqual(rc, 5, fileName)
            XCTAssertTrue(stderr.contains("\(out)/\(fileName): write failed: No space left on device"), stderr)
            XCTAssertFalse(stdout.contains("digest"), "no success summary: \(stdout)")
        }
    }

    /// The recorder on a disk that refuses to grow a file (a 64 KiB file-size limit, SIGXFSZ ignored so
    /// write(2) fails with EFBIG): exit 5 naming its file. Before: exit 4 (reported as unusable input).
    /// (/dev/full cannot stand in here: the recorder never opens an existing name, it appends -1, -2.)
    func testRecorderStopsWithOutputFailedWhenItsFileCannotGrow() throws {
        guard FileManager.default.isExecutableFile(atPath: tape) else { throw XCTSkip("tape not built") }
        let spot = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        let out = Paths.tempDir("record-limit")
        let (rc, _, stderr) = try sh("trap '' XFSZ; ulimit -f 64; exec '\(tape)' record --from-replay '\(spot)' "
                                     + "--out '\(out)' --quiet")
        XCTAssertEqual(rc, 5, stderr)
        let expected = "output failed (recorder): \(out)/tape-20240808-23.csv.gz: write failed: File too large"
        XCTAssertTrue(stderr.contains(expected), stderr)
    }

    func testSIGUSR1PausesAndResumes() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let spot = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        let out = Paths.tempDir("pause")
        // 4 s of the capture at 10x: ~0.5 s unpaused.
        let args = ["replay", spot, "--from", "2024-08-08T23:57:00Z", "--to", "2024-08-08T23:57:04Z", "--speed", "10",
                    "--quiet", "--no-report", "--out"]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tape)
        p.arguments = args + [out + "/paused"]
        p.standardOutput = FileHandle.nullDevice
        let t0 = Date()
        try p.run()
        usleep(200_000)
        kill(p.processIdentifier, SIGUSR1)   // pause
        usleep(1_000_000)
        kill(p.processIdentifier, SIGUSR1)   // resume
        p.waitUntilExit()
        let paused = Date().timeIntervalSince(t0)
        XCTAssertEqual(p.terminationStatus, 0)
        let t1 = Date()
        let (rc, _, _) = try run(args + [out + "/straight"])
        let straight = Date().timeIntervalSince(t1)
        XCTAssertEqual(rc, 0)
        XCTAssertGreaterThan(paused, straight + 0.7, "paused \(paused) s vs straight \(straight) s")
        // Pausing changes nothing in the output.
        let d1 = try String(contentsOfFile: out + "/paused/summary.json", encoding: .utf8).split(separator: "\n").first { $0.contains("\"digest\"") }
        let d2 = try String(contentsOfFile: out + "/straight/summary.json", encoding: .utf8).split(separator: "\n").first { $0.contains("\"digest\"") }
        XCTAssertEqual(d1, d2)
    }
}
