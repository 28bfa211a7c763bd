import Foundation
import XCTest
import TapeTestSupport

/// Mistakes that used to end in an empty or wrong run with exit 0 (issue 12, part 2): each now gives a
/// clear warning, and a distinct exit where the run produced nothing.
final class NoSilentRunTests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }

    func run(_ args: [String]) throws -> (Int32, String, String) {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        return try sh(([tape] + args).map { "'\($0)'" }.joined(separator: " "))
    }

    private func digest(_ runFolder: String) throws -> String? {
        let data = try Data(contentsOf: URL(fileURLWithPath: runFolder + "/summary.json"))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["digest"] as? String
    }

    /// `tape replay DIR` reads the recordings in the folder, in name order, and never a run folder's files.
    func testAFolderIsReadAsItsRecordingsAndARunFolderIsNotAnInput() throws {
        let captures = try Paths.captures().filter { $0.contains("spot-btcusdt") }
        XCTAssertEqual(captures.count, 2)
        let out = Paths.tempDir("folder")
        let folder = out + "/in"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for capture in captures {
            try FileManager.default.copyItem(atPath: capture, toPath: folder + "/" + (capture as NSString).lastPathComponent)
        }
        var (rc, _, err) = try run(["replay"] + captures + ["--out", out + "/files", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 0, err)
        // A previous run's folder inside it: its files are not inputs.
        (rc, _, err) = try run(["replay", captures[0], "--out", folder + "/old-run", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 0, err)
        try FileManager.default.copyItem(atPath: folder + "/old-run/rejects.csv.gz", toPath: folder + "/rejects.csv.gz")
        try FileManager.default.copyItem(atPath: folder + "/old-run/bars.csv", toPath: folder + "/bars.csv")
        try FileManager.default.copyItem(atPath: folder + "/old-run/tick_series.csv", toPath: folder + "/tick_series.csv")
        (rc, _, err) = try run(["replay", folder, "--out", out + "/folder", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(try digest(out + "/folder"), try digest(out + "/files"), "the folder's two captures, nothing else")
        (rc, _, err) = try run(["replay", folder + "/old-run", "--out", out + "/none", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 4)
        XCTAssertTrue(err.contains("no recordings in the folder") && err.contains("bars.csv"), err)
    }

    /// Two captures of BTCUSDT, Binance spot and USDⓈ-M futures, in files whose names do not tell the
    /// market (`a.gz`, `b.gz`): kept apart by what their messages tell, with a warning, and each equal to
    /// the run of the same files under market names. Two spot days of one symbol are still one symbol.
    func testCapturesOfOneSymbolFromDifferentMarketsAreKeptApart() throws {
        let captures = try Paths.captures()
        let spot = try XCTUnwrap(captures.first { $0.hasSuffix("spot-btcusdt_20240808.gz") })
        let spot2 = try XCTUnwrap(captures.first { $0.hasSuffix("spot-btcusdt_20240809.gz") })
        let usdm = try XCTUnwrap(captures.first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let out = Paths.tempDir("markets")
        for (from, to) in [(spot, "a.gz"), (usdm, "b.gz"), (spot2, "c.gz")] {
            try FileManager.default.copyItem(atPath: from, toPath: out + "/" + to)
        }
        func symbolDigests(_ folder: String) throws -> [String: String] {
            let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/summary.json"))
            return try XCTUnwrap((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["digests_by_symbol"]
                as? [String: String])
        }
        var (rc, _, err) = try run(["replay", out + "/a.gz", out + "/b.gz", "--out", out + "/unnamed", "--no-report"])
        XCTAssertEqual(rc, 0, err)
        XCTAssertTrue(err.contains("BTCUSDT from different markets") && err.contains("Binance spot")
                      && err.contains("Binance USDⓈ-M futures") && err.contains("kept apart as spot:BTCUSDT, usdm:BTCUSDT"), err)
        (rc, _, err) = try run(["replay", spot, usdm, "--out", out + "/named", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 0, err)
        let named = try symbolDigests(out + "/named")
        XCTAssertEqual(Set(named.keys), ["spot:BTCUSDT", "usdm:BTCUSDT"])
        XCTAssertEqual(try symbolDigests(out + "/unnamed"), named, "the same two symbols, the same outputs")
        // Same market, two days: one symbol, no warning.
        (rc, _, err) = try run(["replay", out + "/a.gz", out + "/c.gz", "--out", out + "/days", "--no-report"])
        XCTAssertEqual(rc, 0, err)
        XCTAssertFalse(err.contains("different markets"), err)
        XCTAssertEqual(Set(try symbolDigests(out + "/days").keys), ["BTCUSDT"])
        // --venue names them all: the user chose, nothing is sniffed.
        (rc, _, err) = try run(["replay", out + "/a.gz", out + "/b.gz", "--venue", "x", "--out", out + "/venue", "--no-report"])
        XCTAssertFalse(err.contains("different markets"), err)
    }

    /// Timeframes a bar file cannot make, and a lateness of 0 on bar input.
    func testBarFileTimeframesAndLatenessAreWarnedAndAnEmptyRunExits8() throws {
        let bars = try XCTUnwrap(try Paths.barFiles().first { $0.contains("btc-perp") })
        let out = Paths.tempDir("bar-warnings")
        try "timeframes: [10s, 1m]\n".write(toFile: out + "/ten.yaml", atomically: true, encoding: .utf8)
        var (rc, _, err) = try run(["replay", bars, "--config", out + "/ten.yaml", "--out", out + "/ten", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 0, "1m bars were produced")
        XCTAssertTrue(err.contains("timeframe 10s produced no bars"), err)
        try """
            timeframes: [90s]
            anomalies:
              price_spike: {enabled: false}
              volume_spike: {enabled: false}
            """.write(toFile: out + "/ninety.yaml", atomically: true, encoding: .utf8)
        (rc, _, err) = try run(["replay", bars, "--config", out + "/ninety.yaml", "--out", out + "/ninety", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 8, err)
        XCTAssertTrue(err.contains("timeframe 90s produced no bars") && err.contains("whole multiple"), err)
        try "allowed_lateness: 0s\n".write(toFile: out + "/late.yaml", atomically: true, encoding: .utf8)
        (rc, _, err) = try run(["replay", bars, "--config", out + "/late.yaml", "--out", out + "/late", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 8, err)
        XCTAssertTrue(err.contains("input bars were late ticks") && err.contains("allowed_lateness"), err)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/late/summary.json"))) as? [String: Any]
        XCTAssertEqual(summary?["exit_code"] as? Int, 8)
    }

    /// `tape record` on a bar file writes nothing: said, exit 8. `tape train` on too little data: refused,
    /// the minimum stated.
    func testRecordOnBarsAndTrainOnTooFewRowsSaySo() throws {
        let bars = try XCTUnwrap(try Paths.barFiles().first { $0.contains("btc-perp") })
        let capture = try XCTUnwrap(try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") })
        let out = Paths.tempDir("record-train")
        var (rc, _, err) = try run(["record", "--from-replay", bars, "--out", out + "/rec"])
        XCTAssertEqual(rc, 8, err)
        XCTAssertTrue(err.contains("nothing written") && err.contains("45031 bars"), err)
        (rc, _, err) = try run(["train", capture, "--out", out + "/train", "--quiet", "--no-report"])
        XCTAssertEqual(rc, 4, err)
        XCTAssertTrue(err.contains("at least 50 are needed"), err)
    }
}
