import Foundation
import TapeTestSupport
import XCTest

/// `tape diff` end to end: run folders written by the real `tape replay` on a real capture of
/// ../shared/data/binance-feed, compared by the real binary. Expectations come from the run folders'
/// CSVs read with Python's csv module (independent of TapeDiff), never from the diff's own output.
final class DiffCommandTests: XCTestCase {
    static let packageRoot: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()

    static let ethereumCapture = "spot-ethusdt_20240808.gz"
    static let bitcoinCapture = "spot-btcusdt_20240808.gz"
    static let ethereumSymbol = "spot:ETHUSDT"
    /// The run folder's output kinds (CSV stems), as the README lists them.
    static let kinds = ["bars", "indicators", "anomalies", "late_ticks", "predictions"]

    var tape: String { Self.packageRoot.appendingPathComponent(".build/release/tape").path }

    func requireTape() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape),
                          "the built tape binary at \(tape) (swift build -c release)")
    }

    func capture(_ name: String) throws -> String {
        let path = Self.packageRoot.deletingLastPathComponent()
            .appendingPathComponent("shared/data/binance-feed/\(name)").path
        try requireOrSkip(FileManager.default.fileExists(atPath: path), "real capture at \(path)")
        return path
    }

    func requirePython() throws {
        let (status, _, _) = try run("/usr/bin/env", ["python3", "-c", "import csv, json, gzip"])
        try requireOrSkip(status == 0, "python3 with csv, json, gzip")
    }

    func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "tape-diff-tests-\(getpid())/\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `executable` with `arguments` in the package root; (status, stdout, stderr).
    func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = Self.packageRoot
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self),
                String(decoding: errorData, as: UTF8.self))
    }

    /// `tape replay` into a new folder; the run must end cleanly (0) or with counted rejects (3).
    func replay(_ inputs: [String], name: String, extra: [String] = []) throws -> String {
        let out = temporaryDirectory(name)
        let (status, _, errors) = try run(tape, ["replay"] + inputs + ["--out", out, "--quiet", "--no-report"] + extra)
        XCTAssertTrue(status == 0 || status == 3, "replay exited \(status): \(errors)")
        return out
    }

    func diff(_ arguments: [String]) throws -> (Int32, String, String) { try run(tape, ["diff"] + arguments) }

    /// Runs a Python script (arguments in sys.argv[1:]) and decodes its stdout as JSON.
    func python(_ script: String, _ arguments: [String]) throws -> Any {
        let (status, output, errors) = try run("/usr/bin/env", ["python3", "-c", script] + arguments)
        XCTAssertEqual(status, 0, errors)
        return try JSONSerialization.jsonObject(with: Data(output.utf8), options: .fragmentsAllowed)
    }

    func decodeJSON(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    // MARK: - same input twice

    func testSameInputTwiceIsEqualWithoutReadingCSVs() throws {
        try requireTape()
        let input = try capture(Self.ethereumCapture)
        let runA = try replay([input], name: "same-a")
        let runB = try replay([input], name: "same-b")
        // Independent fact: every CSV of the two runs is byte for byte the same.
        for kind in Self.kinds where FileManager.default.fileExists(atPath: "\(runA)/\(kind).csv") {
            XCTAssertEqual(FileManager.default.contents(atPath: "\(runA)/\(kind).csv"),
                           FileManager.default.contents(atPath: "\(runB)/\(kind).csv"), kind)
        }
        let (status, output, errors) = try diff([runA, runB])
        XCTAssertEqual(status, 0, output + errors)
        XCTAssertTrue(output.contains("equal: per-symbol digests of 1 symbols are equal, CSVs not read"), output)
        let (jsonStatus, json, _) = try diff([runA, runB, "--json"])
        XCTAssertEqual(jsonStatus, 0)
        let document = try decodeJSON(json)
        XCTAssertEqual(document["equal"] as? Bool, true)
        XCTAssertEqual(document["digests_equal"] as? Bool, true)
        XCTAssertEqual((document["kinds"] as? [Any])?.count, 0)
    }

    // MARK: - one trade price changed

    /// Writes a copy of `source` (same file name, so the venue is inferred the same) with the price of
    /// its `tradeNumber`-th trade message raised by `delta`; returns the copy's path and the changed line.
    func copyWithChangedTrade(_ source: String, tradeNumber: Int, delta: String) throws -> String {
        let directory = temporaryDirectory("changed-capture")
        let copy = "\(directory)/\((source as NSString).lastPathComponent)"
        let script = """
            import gzip, json, sys, re
            from decimal import Decimal
            source, copy, wanted, delta = sys.argv[1], sys.argv[2], int(sys.argv[3]), Decimal(sys.argv[4])
            seen, changed = 0, None
            with gzip.open(source, 'rt') as reader, gzip.open(copy, 'wt') as writer:
                for line in reader:
                    if '@trade"' in line:
                        seen += 1
                        if seen == wanted:
                            match = re.search(r'"p":"([0-9.]+)"', line)
                            price = Decimal(match.group(1)) + delta
                            line = line[:match.start(1)] + str(price) + line[match.end(1):]
                            changed = line.strip()
                    writer.write(line)
            print(json.dumps(changed))
            """
        let changed = try python(script, [source, copy, String(tradeNumber), delta])
        XCTAssertNotNil(changed as? String, "the capture has a trade number \(tradeNumber)")
        return copy
    }

    /// Per kind: the symbol's rows in each run (raw CSV lines, in file order), read with Python's csv.
    static let rowsBySymbolScript = """
        import csv, json, os, sys
        run_a, run_b, symbol = sys.argv[1], sys.argv[2], sys.argv[3]
        result = {}
        for kind in sys.argv[4:]:
            sides = []
            for run in (run_a, run_b):
                path = os.path.join(run, kind + '.csv')
                rows = []
                if os.path.exists(path):
                    with open(path, newline='') as handle:
                        reader = csv.reader(handle)
                        next(reader)
                        rows = [','.join(row) for row in reader if row[0] == symbol]
                sides.append(rows)
            result[kind] = sides
        print(json.dumps(result))
        """

    func testChangedTradePriceIsReportedWithSymbolKindAndRow() throws {
        try requireTape()
        try requirePython()
        let input = try capture(Self.ethereumCapture)
        let changedInput = try copyWithChangedTrade(input, tradeNumber: 5_000, delta: "0.5")
        let runA = try replay([input], name: "price-a")
        let runB = try replay([changedInput], name: "price-b")
        let maxRows = 3

        let facts = try XCTUnwrap(try python(Self.rowsBySymbolScript, [runA, runB, Self.ethereumSymbol] + Self.kinds)
                                  as? [String: [[String]]])
        let barsA = try XCTUnwrap(facts["bars"]?[0])
        let barsB = try XCTUnwrap(facts["bars"]?[1])
        XCTAssertEqual(barsA.count, barsB.count, "a 0.5 change moves values, not bar windows")
        let differingBars = zip(barsA, barsB).filter { $0 != $1 }
        XCTAssertFalse(differingBars.isEmpty, "the changed trade changes at least one bar (its VWAP)")

        let (status, output, errors) = try diff([runA, runB, "--max-rows", String(maxRows)])
        XCTAssertEqual(status, 1, output + errors)
        XCTAssertTrue(output.contains("bars \(Self.ethereumSymbol): \(differingBars.count) differing rows "
                                      + "(A \(barsA.count) rows, B \(barsB.count) rows)"), output)
        XCTAssertTrue(output.contains("    A: \(differingBars[0].0)\n    B: \(differingBars[0].1)\n"), output)

        let (jsonStatus, json, _) = try diff([runA, runB, "--json", "--max-rows", String(maxRows)])
        XCTAssertEqual(jsonStatus, 1)
        let document = try decodeJSON(json)
        XCTAssertEqual(document["equal"] as? Bool, false)
        XCTAssertEqual(document["differing_symbols"] as? [String], [Self.ethereumSymbol])
        let kinds = try XCTUnwrap(document["kinds"] as? [[String: Any]])
        for kind in Self.kinds {
            let rowsA = try XCTUnwrap(facts[kind]?[0])
            let rowsB = try XCTUnwrap(facts[kind]?[1])
            let reported = kinds.first { $0["kind"] as? String == kind }
            guard rowsA != rowsB else {
                XCTAssertNil(reported, "\(kind) rows are equal: not reported")
                continue
            }
            let entry = try XCTUnwrap(reported, "\(kind) differs and is reported")
            XCTAssertEqual(entry["symbol"] as? String, Self.ethereumSymbol)
            XCTAssertEqual(entry["rows_a"] as? Int, rowsA.count)
            XCTAssertEqual(entry["rows_b"] as? Int, rowsB.count)
            if rowsA.count == rowsB.count {
                let differing = zip(rowsA, rowsB).filter { $0 != $1 }
                XCTAssertEqual(entry["differing_rows"] as? Int, differing.count, kind)
                let shown = try XCTUnwrap(entry["rows"] as? [[String: Any]])
                XCTAssertEqual(shown.count, min(maxRows, differing.count), kind)
                XCTAssertEqual(shown.first?["row_a"] as? String, differing[0].0, kind)
                XCTAssertEqual(shown.first?["row_b"] as? String, differing[0].1, kind)
            }
        }
        let bars = try XCTUnwrap(kinds.first { $0["kind"] as? String == "bars" })
        let firstBar = try XCTUnwrap((bars["rows"] as? [[String: Any]])?.first)
        XCTAssertTrue((firstBar["columns"] as? [String])?.contains("vwap") == true, "\(firstBar)")
    }

    // MARK: - a symbol in one run only

    func testSymbolFilteredOutInOneRunIsReportedAsPresentInOneOnly() throws {
        try requireTape()
        try requirePython()
        let inputs = [try capture(Self.bitcoinCapture), try capture(Self.ethereumCapture)]
        let runA = try replay(inputs, name: "both-symbols")
        let runB = try replay(inputs, name: "bitcoin-only", extra: ["--symbols", "spot:BTCUSDT"])
        let countScript = """
            import csv, json, os, sys
            run, symbol = sys.argv[1], sys.argv[2]
            count = 0
            for kind in sys.argv[3:]:
                path = os.path.join(run, kind + '.csv')
                if os.path.exists(path):
                    with open(path, newline='') as handle:
                        count += sum(1 for row in csv.DictReader(handle) if row['symbol'] == symbol)
            print(json.dumps(count))
            """
        let ethereumOutputs = try XCTUnwrap(try python(countScript, [runA, Self.ethereumSymbol] + Self.kinds) as? Int)
        XCTAssertGreaterThan(ethereumOutputs, 0)
        let ethereumInB = try XCTUnwrap(try python(countScript, [runB, Self.ethereumSymbol] + Self.kinds) as? Int)
        XCTAssertEqual(ethereumInB, 0)

        let (status, output, errors) = try diff([runA, runB])
        XCTAssertEqual(status, 1, output + errors)
        XCTAssertTrue(output.contains("only in A: \(Self.ethereumSymbol) (\(ethereumOutputs) outputs)"), output)
        XCTAssertFalse(output.contains("only in B:"), output)
        let document = try decodeJSON(try diff([runA, runB, "--json"]).1)
        let onlyInA = try XCTUnwrap(document["only_in_a"] as? [[String: Any]])
        XCTAssertEqual(onlyInA.count, 1)
        XCTAssertEqual(onlyInA.first?["symbol"] as? String, Self.ethereumSymbol)
        XCTAssertEqual(onlyInA.first?["outputs"] as? Int, ethereumOutputs)
        XCTAssertEqual((document["only_in_b"] as? [Any])?.count, 0)
        XCTAssertEqual(document["equal"] as? Bool, false)
    }

    // MARK: - not a run folder, usage

    func testNotARunFolderExitsFourNamingThePath() throws {
        try requireTape()
        let input = try capture(Self.ethereumCapture)
        let run = try replay([input], name: "real-run")
        let empty = temporaryDirectory("empty")
        let broken = temporaryDirectory("broken")
        try Data("{\"digest\": 1}".utf8).write(to: URL(fileURLWithPath: "\(broken)/summary.json"))
        let missing = "\(empty)/no-such-run"
        for (path, reason) in [(empty, "no summary.json"), (broken, "summary.json is not a run summary"),
                               (missing, "no such folder")] {
            for arguments in [[run, path], [path, run]] {
                let (status, output, errors) = try diff(arguments)
                XCTAssertEqual(status, 4, output + errors)
                XCTAssertTrue(errors.contains("tape: \(path): not a run folder: \(reason)"), errors)
            }
        }
    }

    func testBadMaxRowsIsAUsageError() throws {
        try requireTape()
        let (status, _, errors) = try diff(["a", "b", "--max-rows", "20000"])
        XCTAssertEqual(status, 64)
        XCTAssertTrue(errors.contains("--max-rows 20000"), errors)
    }
}
