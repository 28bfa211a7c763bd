import Foundation
import XCTest
import TapeTestSupport
import TapeCore

/// Issue 9, defect 1, through the `tape` executable: values that trapped (`--from 9999-01-01T00:00:00Z`,
/// `--speed 1e-300`, …) are usage errors (exit 64) naming the flag and the accepted range; inputs whose
/// times overflow are rejects (exit 3) in `replay` and `record`, never a crash (exit 132/133 before).
final class HostileValueCLITests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }

    func run(_ arguments: [String]) throws -> (Int32, String, String) {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        return try sh(([tape] + arguments).map { "'\($0)'" }.joined(separator: " "))
    }

    /// A tardis `trades` file (µs) with one row whose `timestamp` overflows Int64 in ns.
    func hostileTrades(_ directory: String) throws -> String {
        let path = directory + "/binance_trades_2024-08-08_BTCUSDT.csv"
        try """
        exchange,symbol,timestamp,local_timestamp,id,side,price,amount
        binance,BTCUSDT,1723118400000000,1723118400000000,1,sell,61837.63,0.02
        binance,BTCUSDT,9300000000000000,1723118400000001,2,sell,61837.63,0.02
        binance,BTCUSDT,1723118460000000,1723118460000000,3,buy,61837.64,0.5

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testOutOfRangeFlagsAreUsageErrors() throws {
        let directory = Paths.tempDir("hostile-flags")
        let input = try hostileTrades(directory)
        let cases: [([String], String)] = [
            (["--from", "9999-01-01T00:00:00Z"], "--from '9999-01-01T00:00:00Z': expected ISO-8601 UTC or integer ns in "
                + TimeUtil.acceptedRangeText),
            (["--to", "1000-01-01T00:00:00Z"], "--to '1000-01-01T00:00:00Z': expected ISO-8601 UTC or integer ns in "
                + TimeUtil.acceptedRangeText),
            (["--from", "9223372036854775807"], "--from '9223372036854775807'"),
            (["--speed", "1e-300"], "--speed '1e-300': expected `max` or a number in 0.001 ... 1000000.0"),
            (["--speed", "1e300"], "--speed '1e300'"),
            (["--backwards-tolerance-ms", "99999999999999999"],
             "--backwards-tolerance-ms 99999999999999999: expected 0 ... 86400000"),
        ]
        for (flags, message) in cases {
            let (code, _, stderr) = try run(["replay", input, "--out", directory + "/run", "--quiet", "--no-report"] + flags)
            XCTAssertEqual(code, 64, "\(flags): \(stderr)")
            XCTAssertTrue(stderr.contains(message), "\(flags): \(stderr)")
        }
        let (code, _, stderr) = try run(["record", "--from-replay", input, "--out", directory + "/record",
                                         "--backwards-tolerance-ms", "99999999999999999"])
        XCTAssertEqual(code, 64, stderr)
    }

    func testOverflowingTimesAreRejectsInReplayAndRecord() throws {
        let directory = Paths.tempDir("hostile-input")
        let input = try hostileTrades(directory)
        var (code, _, stderr) = try run(["replay", input, "--out", directory + "/run", "--no-report"])
        XCTAssertEqual(code, 3, stderr)
        XCTAssertTrue(stderr.contains("\(input):3: bad_timestamp: timestamp '9300000000000000' is outside"), stderr)
        (code, _, stderr) = try run(["record", "--from-replay", input, "--out", directory + "/record"])
        XCTAssertFalse([132, 133, 134, 139].contains(code), "crashed: \(code) \(stderr)")
        XCTAssertTrue(stderr.contains("bad_timestamp"), stderr)
    }
}
