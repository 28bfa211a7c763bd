import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeRecordings
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources

final class RecorderTests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }

    /// A capture converted to Tape tick CSV (rotated into several files) replays to the same digest
    /// as the capture itself: the tick CSV loses nothing the graph uses.
    func testTickCSVConversionReplaysToTheSameDigest() throws {
        let caps = try Paths.captures()
        let usdm = caps.first { $0.hasSuffix("usdm-btcusdt_20240808.gz") }!
        let spot = caps.first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        let dir = Paths.tempDir("rec")
        var o = ReplayOptions(inputs: [spot, usdm])
        o.engine.symbols = ["usdm:BTCUSDT"]
        o.messagePrinter = { _ in }
        let r = try recordFromReplay(o, directory: dir, prefix: "t", maxBytes: 400_000, rotateHourly: true, flushEvery: 1000)
        XCTAssertEqual(r.eventsWritten, 21313 + 66089)
        XCTAssertEqual(r.filtered, 9757 + 28040)
        XCTAssertGreaterThan(r.files.count, 2, "size rotation")
        XCTAssertTrue(r.files.allSatisfy { $0.contains("/t-20240808-23") }, "\(r.files)")
        var a = ReplayOptions(inputs: r.files); a.outDir = Paths.tempDir("rec-a"); a.messagePrinter = { _ in }
        var b = ReplayOptions(inputs: [usdm]); b.outDir = Paths.tempDir("rec-b"); b.messagePrinter = { _ in }
        let sa = try runReplay(a), sb = try runReplay(b)
        XCTAssertEqual(sa.ticksIn, sb.ticksIn)
        XCTAssertEqual(sa.digest, sb.digest)
        XCTAssertEqual(sa.rejectsByReason, [:])
    }

    func testHourlyRotationNamesFilesByReceiveHour() throws {
        let dir = Paths.tempDir("hour")
        let symbols = SymbolTable()
        let w = RecordingWriter(directory: dir, prefix: "x", symbols: symbols, rotateHourly: true, flushEvery: 2)
        let s = symbols.intern("A")
        let h0 = TimeUtil.parseDateTime("2024-08-08T23:59:59Z")!
        for (i, t) in [h0, h0 + 500_000_000, h0 + 2_000_000_000, h0 + 3_602_000_000_000].enumerated() {
            try w.write(.trade(eventTime: t, receiveTime: t, symbol: s, price: 100 + Double(i), size: 1, sequence: Int64(i + 1)))
        }
        try w.close()
        XCTAssertEqual(w.files.map { ($0 as NSString).lastPathComponent },
                       ["x-20240808-23.csv.gz", "x-20240809-00.csv.gz", "x-20240809-01.csv.gz"])
        let (_, out, _) = try sh("gzip -dc '\(w.files[1])'")
        // The header as README documents the tick CSV.
        let header = "event_time_ns,receive_time_ns,symbol,kind,price,size,bid,bid_size,ask,ask_size,exchange,"
            + "conditions,sequence"
        XCTAssertEqual(out, header + "\n1723161601000000000,1723161601000000000,A,trade,102,1,,,,,,,3\n")
    }

    /// A recorder killed with SIGKILL mid-run: every completed gzip member reads back; at most the
    /// rows after the last flush are lost, reported as one truncated_gzip reject.
    func testRecorderKilledWithSigkillLeavesReadableFiles() throws {
        let caps = try Paths.captures()
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let dir = Paths.tempDir("kill")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tape)
        p.arguments = ["record", "--from-replay"] + caps + ["--out", dir, "--flush-every", "50", "--no-hourly", "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Wait until some data is on disk, then kill -9.
        let deadline = Date().addingTimeInterval(20)
        var size: Int64 = 0
        while Date() < deadline && size < 300_000 && p.isRunning {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            size = files.filter { $0.hasPrefix("tape-") }.reduce(Int64(0)) {
                $0 + ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + $1)[.size] as? Int64) ?? 0)
            }
            usleep(2000)
        }
        XCTAssertTrue(p.isRunning, "recorder finished before it could be killed; make the input larger")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("tape-") }.sorted().map { dir + "/" + $0 }
        XCTAssertFalse(files.isEmpty)
        var o = ReplayOptions(inputs: files); o.outDir = Paths.tempDir("kill-read"); o.messagePrinter = { _ in }
        let s = try runReplay(o)
        XCTAssertGreaterThan(s.ticksIn, 1000)
        // Only container damage at the cut, never a half row delivered as data.
        XCTAssertTrue(Set(s.rejectsByReason.keys).isSubset(of: ["truncated_gzip"]), "\(s.rejectsByReason)")
        XCTAssertLessThanOrEqual(s.ticksRejected, 1)
    }
}
