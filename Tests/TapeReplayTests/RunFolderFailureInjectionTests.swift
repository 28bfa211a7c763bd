import Foundation
import XCTest
import TapeTestSupport

/// Issue 9, "make it stay fixed": the real `tape replay` with the writes of one run-folder file failing
/// at a chosen byte, as on a full disk (`TAPE_FAIL_WRITES=name@byte`, `WriteFaults` in TapeIO). Whatever
/// the file and the byte, the run ends with exit 5 (the documented `outputFailed`), the message names the
/// file and the system's reason, the file holds exactly the bytes before the failure, and summary.json —
/// when it is not the file that failed — says exit_code 5 and names the failed file.
final class RunFolderFailureInjectionTests: XCTestCase {
    var tape: String {
        ProcessInfo.processInfo.environment["TAPE_BINARY"]
            ?? Paths.packageRoot.appendingPathComponent(".build/release/tape").path
    }

    /// A tick CSV of two hours of trades (a random walk, seeded) with three broken lines: every run-folder
    /// file gets rows (bars, indicators, rejects) and is big enough for the offsets below.
    func input(in folder: String) throws -> String {
        var random = SplitMix(state: 42)
        var lines = ["event_time_ns,receive_time_ns,symbol,kind,price,size,bid,bid_size,ask,ask_size,"
                     + "exchange,conditions,sequence"]
        var price = 61_000.0
        let start: Int64 = 1_723_161_600_000_000_000
        for index in 0..<12_000 {
            let time = start + Int64(index) * 600_000_000
            price = max(1, price + Double(Int(random.next() % 2001) - 1000) / 100)
            let size = Double(random.next() % 1000 + 1) / 1000
            lines.append("\(time),\(time + 1_000_000),spot:BTCUSDT,trade,\(price),\(size),,,,,binance,,\(index + 1)")
            if index % 4_000 == 17 { lines.append("\(time),\(time),spot:BTCUSDT,trade,not-a-price,1,,,,,binance,,0") }
        }
        let path = folder + "/ticks.csv"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testEveryRunFolderFileFailingAtAChosenByteEndsWithExit5NamingIt() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let folder = Paths.tempDir("fail-writes")
        let ticks = try input(in: folder)
        // Baseline: without injection the run is complete (exit 3: the broken lines are rejects).
        let (cleanCode, _, cleanError) = try sh("'\(tape)' replay '\(ticks)' --out '\(folder)/clean'")
        XCTAssertEqual(cleanCode, 3, cleanError)
        let cases: [(file: String, byte: Int)] = [
            ("bars.csv", 0), ("bars.csv", 777), ("bars.csv", 5_000),
            ("indicators.csv", 1), ("indicators.csv", 4_109),
            ("anomalies.csv", 10),
            ("rejects.csv.gz", 0), ("rejects.csv.gz", 15),
        ]
        for (file, byte) in cases {
            let runDirectory = "\(folder)/run-\(file)-\(byte)"
            let cleanSize = try XCTUnwrap(size("\(folder)/clean/\(file)"), "\(file) in a clean run")
            XCTAssertGreaterThan(cleanSize, byte, "\(file): the clean run writes past byte \(byte)")
            let (code, _, standardError) = try sh("TAPE_FAIL_WRITES='\(file)@\(byte)' '\(tape)' replay '\(ticks)' "
                                                   + "--out '\(runDirectory)'")
            XCTAssertEqual(code, 5, "\(file)@\(byte): \(standardError)")
            XCTAssertTrue(standardError.contains("\(runDirectory)/\(file): write failed: No space left on device"),
                          "\(file)@\(byte): \(standardError)")
            XCTAssertEqual(size("\(runDirectory)/\(file)"), byte, "\(file): the bytes before the failure, no more")
            let summary = try XCTUnwrap(JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: runDirectory + "/summary.json"))) as? [String: Any])
            XCTAssertEqual(summary["exit_code"] as? Int, 5, "\(file)@\(byte)")
            let failures = "\(summary["sink_failures"] ?? "none")"
            XCTAssertTrue(failures.contains("\(runDirectory)/\(file): write failed"), "\(file)@\(byte): \(failures)")
        }
    }

    /// summary.json is written to `summary.json.tmp`, synced and renamed: a failure at any byte of it
    /// leaves no summary.json and no `.tmp`, and the message names summary.json.
    func testSummaryFailingAtAChosenByteEndsWithExit5NamingIt() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let folder = Paths.tempDir("fail-summary")
        let ticks = try input(in: folder)
        for byte in [0, 1, 200, 1_000] {
            let runDirectory = "\(folder)/run-\(byte)"
            let (code, _, standardError) = try sh("TAPE_FAIL_WRITES='summary.json.tmp@\(byte)' '\(tape)' replay "
                                                   + "'\(ticks)' --out '\(runDirectory)'")
            XCTAssertEqual(code, 5, "summary.json@\(byte): \(standardError)")
            XCTAssertTrue(standardError.contains("\(runDirectory)/summary.json: write failed: No space left on device"),
                          "summary.json@\(byte): \(standardError)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory + "/summary.json"))
            XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory + "/summary.json.tmp"))
            XCTAssertNotNil(size(runDirectory + "/bars.csv"), "the other outputs are there")
        }
    }

    func size(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
    }
}

/// SplitMix64, seeded: the same input every run.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
