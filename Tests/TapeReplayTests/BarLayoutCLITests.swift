import Foundation
import XCTest
import TapeTestSupport
import TapeEngine

/// `tape replay` on bar files in vendor and platform layouts (written at run time from the real BTC
/// file by bar_layouts.py): the same digest as the canonical layout, the decisions stated on stderr and
/// in summary.json, an unreadable header is exit 4 naming it, bad bar options are usage errors.
final class BarLayoutCLITests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }

    /// The layouts of the first 3000 rows of the real BTC file, once per test process.
    static let layouts = Result { () throws -> String in
        let source = Paths.sharedData.appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path
        guard FileManager.default.fileExists(atPath: source) else {
            throw MissingRequirement(description: "real data at \(source)")
        }
        let directory = Paths.tempDir("bar-layouts")
        let script = Paths.packageRoot.appendingPathComponent("Tests/TapeRecordingsTests/bar_layouts.py").path
        let (status, _, errors) = try sh("python3 '\(script)' '\(source)' '\(directory)' 3000")
        guard status == 0 else { throw MissingRequirement(description: "python3 to write the bar layouts: \(errors)") }
        return directory
    }

    func layouts() throws -> String {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        switch Self.layouts {
        case .success(let directory): return directory
        case .failure(let error): try skipOrFail(missing: "\(error)")
        }
    }

    func replay(_ arguments: String, out: String) throws -> (Int32, String, String) {
        try sh("'\(tape)' replay \(arguments) --out '\(out)' --no-report")
    }

    func summary(_ out: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    func testLayoutsReplayToTheCanonicalDigest() throws {
        let directory = try layouts()
        let out = Paths.tempDir("bar-layout-cli")
        var (status, _, errors) = try replay("'\(directory)/canonical.csv' --symbol BTC --quiet",
                                             out: out + "/canonical")
        XCTAssertEqual(status, 0, errors)
        let digest = try summary(out + "/canonical")["digest"] as? String
        XCTAssertNotNil(digest)
        let cases: [(String, String, String)] = [
            ("histdata.csv", "", "YYYYMMDD HHMMSS"),
            ("metatrader.csv", "", "YYYY.MM.DD + HH:MM"),
            ("epoch-ms.csv", "", "epoch ms"),
            ("crlf-bom.csv", "", "YYYY-MM-DD + HH:MM:SS"),
            ("bar-close.csv", "--bar-time close", "YYYY-MM-DDTHH:MM:SSZ"),
            ("columns-named.csv", "--columns time=a,open=b,high=c,low=d,close=e,volume=f", "YYYY-MM-DD HH:MM:SS"),
        ]
        for (index, (name, options, timeFormat)) in cases.enumerated() {
            let run = out + "/\(index)"
            (status, _, errors) = try replay("'\(directory)/\(name)' --symbol BTC \(options)", out: run)
            XCTAssertEqual(status, 0, "\(name): \(errors)")
            let written = try summary(run)
            XCTAssertEqual(written["digest"] as? String, digest, name)
            let inputs = written["inputs"] as? [[String: Any]]
            let layout = inputs?.first?["layout"] as? [String: Any]
            XCTAssertEqual(layout?["time_format"] as? String, timeFormat, name)
            XCTAssertEqual(layout?["bar_length"] as? String, "1m", name)
            XCTAssertEqual(layout?["bar_length_source"] as? String, "detected", name)
            // Said once on stderr, with the file's name.
            let statements = errors.split(separator: "\n").filter { $0.contains("\(name): bars: ") }
            XCTAssertEqual(statements.count, 1, "\(name): \(errors)")
            XCTAssertTrue(statements.first?.contains("time \(timeFormat)") ?? false, errors)
        }
    }

    /// One file with a `symbol` column and two symbols replays as the two files of one symbol each.
    func testTwoSymbolsInOneFileReplayAsTwoFiles() throws {
        let directory = try layouts()
        let out = Paths.tempDir("bar-two-symbols")
        var (status, _, errors) = try replay("'\(directory)/a.csv' '\(directory)/b.csv' --quiet", out: out + "/apart")
        XCTAssertEqual(status, 0, errors)
        (status, _, errors) = try replay("'\(directory)/two-symbols.csv' --quiet", out: out + "/together")
        XCTAssertEqual(status, 0, errors)
        let apart = try summary(out + "/apart"), together = try summary(out + "/together")
        XCTAssertEqual(together["digest"] as? String, apart["digest"] as? String)
        XCTAssertEqual((together["events_out_by_symbol"] as? [String: Int])?.keys.sorted(), ["A", "B"])
    }

    /// 5-minute bars: the length detected and stated; the graph's 1m timeframe cannot be built from them,
    /// which is said.
    func testLongerBarsAreStatedAndWarnedAbout() throws {
        let directory = try layouts()
        let out = Paths.tempDir("bar-5m")
        let config = out + "/pipeline.yaml"
        try "timeframes: [1m, 5m, 15m]\n".write(toFile: config, atomically: true, encoding: .utf8)
        let (status, _, errors) = try replay("'\(directory)/bars-5m.csv' --config '\(config)'", out: out + "/run")
        XCTAssertEqual(status, 0, errors)
        XCTAssertTrue(errors.contains("bar length 5m (detected: "), errors)
        XCTAssertTrue(errors.contains("warning: \(directory)/bars-5m.csv: bars of 5m: the graph's timeframes 1m are "
                                      + "not multiples of it"), errors)
        XCTAssertFalse(errors.contains("15m are"), errors)
    }

    /// Nothing recognisable: exit 4, the header seen and what was expected — never a run of 0 rows.
    func testAnUnreadableHeaderIsExit4NamingIt() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let out = Paths.tempDir("bar-unreadable")
        let file = out + "/kurse.csv"
        try "Zeit;Eröffnung;Hoch;Tief;Schluss\n2022-01-01 00:00;1;2;0.5;1.5\n".write(toFile: file, atomically: true,
                                                                                 encoding: .utf8)
        var (status, _, errors) = try replay("'\(file)'", out: out + "/detected")
        XCTAssertEqual(status, 4, errors)
        XCTAssertTrue(errors.contains("first line: Zeit;Eröffnung;Hoch;Tief;Schluss"), errors)
        XCTAssertTrue(errors.contains("expected a bar file (a time column (timestamp"), errors)
        // Forced to bars: the bar reader says which columns are missing, even with --quiet.
        (status, _, errors) = try replay("'\(file)' --format bars --quiet", out: out + "/forced")
        XCTAssertEqual(status, 4, errors)
        XCTAssertTrue(errors.contains("header seen: 'Zeit;Eröffnung;Hoch;Tief;Schluss' (separator ';'); missing a time "
                                      + "column, open, high, low, close"), errors)
        XCTAssertEqual(try summary(out + "/forced")["ticks_in"] as? Int, 0)
        XCTAssertEqual(try summary(out + "/forced")["exit_code"] as? Int, 4)
        // --columns name it: read.
        let columns = "time=Zeit,open=Eröffnung,high=Hoch,low=Tief,close=Schluss"
        (status, _, errors) = try replay("'\(file)' --columns \(columns)", out: out + "/named")
        XCTAssertEqual(status, 0, errors)
        XCTAssertEqual(try summary(out + "/named")["ticks_in"] as? Int, 1)
        // --columns naming a column the header lacks.
        (status, _, errors) = try replay("'\(file)' --columns time=Datum", out: out + "/wrong")
        XCTAssertEqual(status, 4, errors)
        XCTAssertTrue(errors.contains("--columns time=Datum: no such column; header seen: 'Zeit;Eröffnung"), errors)
    }

    func testBadBarOptionsAreUsageErrors() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let out = Paths.tempDir("bar-options")
        for (option, message) in [("--bar-time middle", "--bar-time 'middle': expected open or close"),
                                  ("--bar-length 0m", "--bar-length '0m'"),
                                  ("--bar-length 2y", "--bar-length '2y'"),
                                  ("--columns price=3", "unknown role 'price'"),
                                  ("--columns open=0", "columns are counted from 1")] {
            let (status, _, errors) = try replay("/nonexistent.csv \(option)", out: out)
            XCTAssertEqual(status, 64, option)
            XCTAssertTrue(errors.contains(message), "\(option): \(errors)")
        }
    }

    func testVersion() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let (status, output, _) = try sh("'\(tape)' --version")
        XCTAssertEqual(status, 0)
        XCTAssertEqual(output, tapeVersion + "\n")
    }
}
