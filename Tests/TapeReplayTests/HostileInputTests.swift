import Foundation
import XCTest
import TapeTestSupport

/// Issue 9, defects 3, 4, 7, 12 and 13: inputs that were dropped, lost, or reported in junk, through
/// the `tape` executable. Damaged copies are built at run time in temporary folders; expected counts
/// come from `gzip -dc | grep -c`, never from Tape. `TAPE_BINARY` runs them against another build.
final class HostileInputTests: XCTestCase {
    var tape: String {
        ProcessInfo.processInfo.environment["TAPE_BINARY"]
            ?? Paths.packageRoot.appendingPathComponent(".build/release/tape").path
    }

    /// The spot capture, its trade and quote count counted by grep (the ticks a replay takes in).
    func spotCapture() throws -> (path: String, ticks: Int) {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let spot = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        return (spot, try count("gzip -dc '\(spot)'"))
    }

    /// Trades and quotes in the text a command prints, counted by grep.
    func count(_ producer: String) throws -> Int {
        let (_, out, _) = try sh("\(producer) | grep -c -E '\"stream\":\"[a-z_]*@(trade|bookTicker)\"'")
        return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// `ticks in` from a replay's stdout.
    func ticksIn(_ stdout: String) -> Int? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("ticks in") }) else { return nil }
        return Int(line.split(separator: " ").last ?? "")
    }

    func replay(_ inputs: String, _ out: String, _ extra: String = "") throws -> (Int32, String, String) {
        try sh("'\(tape)' replay \(inputs) --out '\(out)' --no-report \(extra)")
    }

    // MARK: 3. Whole inputs dropped with exit 0 and no reject

    func testHeaderWithUnmatchedQuoteIsRejectedAndUnusable() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let dir = Paths.tempDir("quote")
        let file = dir + "/bars.csv"
        try "timestamp,\"open,high,low,close\n2024-01-01T00:00:00Z,1,2,0.5,1.5\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let (rc, _, err) = try replay("'\(file)' --format bars", dir + "/out")
        XCTAssertEqual(rc, 4, err)
        XCTAssertTrue(err.contains("\(file):1: unknown_header"), err)
    }

    func testFormatForcedOnARawCaptureIsRejectedAndUnusable() throws {
        let (spot, _) = try spotCapture()
        for format in ["bars", "tick-csv", "tardis-trades", "polygon-trades"] {
            let out = Paths.tempDir("forced-\(format)")
            let (rc, _, err) = try replay("'\(spot)' --format \(format)", out)
            XCTAssertEqual(rc, 4, "\(format): \(err)")
            XCTAssertTrue(err.contains("\(spot):1: unknown_header"), "\(format): \(err)")
            XCTAssertTrue(err.contains("no event read"), "\(format): \(err)")
        }
    }

    // MARK: 4. Stdin, FIFOs, process substitution

    func testFIFOStandardInputAndProcessSubstitutionLoseNothing() throws {
        let (spot, ticks) = try spotCapture()
        XCTAssertGreaterThan(ticks, 30_000)
        let dir = Paths.tempDir("pipes")
        // A FIFO fed by a background cat of the gzip file.
        let fifo = dir + "/feed.gz"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        var (rc, out, err) = try sh("cat '\(spot)' > '\(fifo)' & '\(tape)' replay '\(fifo)' --out '\(dir)/fifo' "
                                    + "--no-report --quiet; status=$?; wait; exit $status")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
        // A FIFO fed decompressed text by gzip -dc.
        let plainFIFO = dir + "/feed.txt"
        XCTAssertEqual(mkfifo(plainFIFO, 0o600), 0)
        (rc, out, err) = try sh("gzip -dc '\(spot)' > '\(plainFIFO)' & '\(tape)' replay '\(plainFIFO)' "
                                + "--out '\(dir)/plain' --no-report --quiet; status=$?; wait; exit $status")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
        // Standard input.
        (rc, out, err) = try sh("gzip -dc '\(spot)' | '\(tape)' replay - --out '\(dir)/stdin' --no-report --quiet")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
        // Process substitution.
        (rc, out, err) = try sh("'\(tape)' replay <(zcat '\(spot)') --out '\(dir)/subst' --no-report --quiet")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
    }

    func testFIFOWithoutAWriterSaysWhatItWaitsFor() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let dir = Paths.tempDir("nowriter")
        let fifo = dir + "/nobody.gz"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let (rc, _, err) = try sh("timeout -s KILL 6 '\(tape)' replay '\(fifo)' --out '\(dir)/out' --no-report")
        // `timeout -s KILL` kills its process group: the shell reports 137, or the shell itself is killed (9).
        XCTAssertTrue(rc == 137 || rc == 9, "killed by the timeout (it waits for a writer), got \(rc)")
        XCTAssertTrue(err.contains("waiting for a writer on \(fifo)"), err)
    }

    // MARK: 7. Unbounded line length

    func testAGibibyteLineIsRejectedWithFlatMemory() throws {
        let (spot, _) = try spotCapture()
        let dir = Paths.tempDir("longline")
        let head = dir + "/head.txt", tail = dir + "/tail.txt", file = dir + "/long.gz"
        try sh("gzip -dc '\(spot)' | head -n 3000 > '\(head)'; gzip -dc '\(spot)' | sed -n 3001,6000p > '\(tail)'")
        let expected = try count("cat '\(head)' '\(tail)'")
        XCTAssertGreaterThan(expected, 1000)
        // 1 GiB of 'a' streamed through zlib (never in memory), between two runs of valid lines.
        let generator = """
            import sys, zlib
            out = open(sys.argv[1], 'wb'); z = zlib.compressobj(9, zlib.DEFLATED, 31)
            out.write(z.compress(open(sys.argv[2], 'rb').read()))
            out.write(z.compress(b'1723075200000000000 {'))
            block = b'a' * (1 << 20)
            for _ in range(1024): out.write(z.compress(block))
            out.write(z.compress(b'\\n' + open(sys.argv[3], 'rb').read())); out.write(z.flush())
            """
        try generator.write(toFile: dir + "/gen.py", atomically: true, encoding: .utf8)
        var (rc, out, err) = try sh("python3 '\(dir)/gen.py' '\(file)' '\(head)' '\(tail)'")
        XCTAssertEqual(rc, 0, err)
        (rc, out, err) = try sh("/usr/bin/time -f 'peak_kb=%M' '\(tape)' replay '\(file)' --out '\(dir)/out' "
                                + "--no-report")
        XCTAssertEqual(rc, 3, err)
        XCTAssertTrue(err.contains("\(file):3001: line_too_long: line of 1073741845 bytes"), String(err.prefix(2000)))
        XCTAssertEqual(ticksIn(out), expected, out)
        let peak = err.split(separator: "\n").first { $0.hasPrefix("peak_kb=") }.flatMap { Int($0.dropFirst(8)) }
        XCTAssertNotNil(peak)
        XCTAssertLessThan(peak ?? .max, 200_000, "peak RSS in KB")
        // The limit is configurable.
        // Every line of the capture is longer than 100 bytes: nothing can be read from it, exit 4.
        (rc, _, err) = try replay("'\(spot)'", dir + "/small", "--max-line-bytes 100")
        XCTAssertEqual(rc, 4, err)
        XCTAssertTrue(err.contains("line_too_long"), err)
    }

    // MARK: 12. Messages

    func testControlBytesAreEscapedInMessagesAndTheRejectLog() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let dir = Paths.tempDir("nul")
        let file = dir + "/nul.txt"
        let bytes = Array("1723075200000000000 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"tr\u{0}ade\"}}\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let (rc, _, err) = try replay("'\(file)'", dir + "/out")
        XCTAssertNotEqual(rc, 0, err)  // 4 after the fix: the only line is refused, nothing could be read
        XCTAssertFalse(err.utf8.contains(0), "no NUL on stderr")
        let rejectLine = err.split(separator: "\n").first { $0.contains("\(file):1:") }
        XCTAssertNotNil(rejectLine, err)
        XCTAssertTrue(rejectLine?.contains("tr\\x00ade") ?? false, err)
        let (_, log, _) = try sh("gzip -dc '\(dir)/out/rejects.csv.gz'")
        XCTAssertFalse(log.utf8.contains(0), "no NUL in rejects.csv.gz")
        XCTAssertTrue(log.contains("tr\\x00ade"), log)
    }

    func testDamagedMagicDirectoryBOMAndZeroPadding() throws {
        let (spot, ticks) = try spotCapture()
        let dir = Paths.tempDir("messages")
        // A damaged gzip magic: named in hex, not printed as junk.
        var data = try Data(contentsOf: URL(fileURLWithPath: spot))
        data[1] = 0x8c
        try data.write(to: URL(fileURLWithPath: dir + "/magic.gz"))
        var (rc, out, err) = try replay("'\(dir)/magic.gz'", dir + "/magic")
        XCTAssertEqual(rc, 4, err)
        XCTAssertTrue(err.contains("not gzip or text: first bytes 1f 8c 08"), err)
        // A folder stands for its recordings (NoSilentRunTests); one without any is named, exit 4.
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        (rc, _, err) = try replay("'\(dir)/empty'", dir + "/directory")
        XCTAssertEqual(rc, 4, err)
        XCTAssertTrue(err.contains("\(dir)/empty: no recordings in the folder"), err)
        // A byte order mark before a raw capture is accepted.
        try sh("{ printf '\\xef\\xbb\\xbf'; gzip -dc '\(spot)'; } | gzip -1 > '\(dir)/bom.gz'")
        (rc, out, err) = try replay("'\(dir)/bom.gz'", dir + "/bom", "--quiet")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
        // Zero padding after the last member is counted as a skip.
        try sh("{ cat '\(spot)'; head -c 4096 /dev/zero; } > '\(dir)/padded.gz'")
        (rc, out, err) = try replay("'\(dir)/padded.gz'", dir + "/padded", "--quiet")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
        XCTAssertTrue(out.contains("trailing_zero_bytes=4096"), out)
    }

    // MARK: 13. `tape record` output replays with a glob

    func testReplayOfRecordOutputGlob() throws {
        let (spot, ticks) = try spotCapture()
        let dir = Paths.tempDir("record")
        var (rc, out, err) = try sh("'\(tape)' record --from-replay '\(spot)' --out '\(dir)/out' --quiet")
        XCTAssertEqual(rc, 0, err)
        (rc, out, err) = try sh("'\(tape)' replay '\(dir)'/out/*.gz --out '\(dir)/replay' --no-report --quiet")
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(ticksIn(out), ticks, out + err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/rejects/rejects.csv.gz"))
    }
}
