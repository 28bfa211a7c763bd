import Foundation
import XCTest
import TapeCore
import TapeGraph
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources

/// Bars and indicators from real recordings, through the real readers and graph, against an
/// independent reference: bars aggregated in plain Python and indicators computed by TA-Lib
/// (scripts/talib_reference.py). OHLC and trade counts must be equal; volume/VWAP within 1e-9
/// relative; indicators within 1e-9 relative (1e-12 absolute near zero) at every index where TA-Lib
/// gives a value, and empty exactly where TA-Lib gives none.
final class ReferenceTests: XCTestCase {
    struct Row { var fields: [String: String] }

    func readCSV(_ path: String) throws -> [[String: String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return lines.map { l in
            let f = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(header, f))
        }
    }

    func close(_ a: String, _ b: String, rel: Double, _ what: String) {
        if a.isEmpty || b.isEmpty { XCTAssertEqual(a, b, what); return }
        let x = Double(a)!, y = Double(b)!
        let tol = max(rel * max(abs(x), abs(y)), 1e-12)
        XCTAssertLessThanOrEqual(abs(x - y), tol, "\(what): tape \(a) vs reference \(b)")
    }

    func compare(file: String, timeframes: String, config: PipelineConfig) throws {
        let dir = Paths.tempDir("ref")
        let ref = dir + "/ref.csv"
        let (rc, _, err) = try sh("python3 scripts/talib_reference.py '\(file)' '\(ref)' --timeframes \(timeframes)")
        XCTAssertEqual(rc, 0, err)
        var o = ReplayOptions(inputs: [file])
        o.engine.config = config
        o.outDir = dir + "/run"
        o.messagePrinter = { _ in }
        let s = try runReplay(o)
        XCTAssertEqual(s.rejectsByReason, [:], file)
        let bars = try readCSV(s.runDir + "/bars.csv")
        let inds = try readCSV(s.runDir + "/indicators.csv")
        let expected = try readCSV(ref)
        XCTAssertEqual(bars.count, expected.count, "bar count \(file)")
        XCTAssertGreaterThan(expected.count, 0)
        var byKey: [String: ([String: String], [String: String])] = [:]
        for (b, i) in zip(bars, inds) {
            XCTAssertEqual(b["end_ns"], i["end_ns"]); XCTAssertEqual(b["timeframe"], i["timeframe"])
            byKey[b["timeframe"]! + "@" + b["start_ns"]!] = (b, i)
        }
        var checkedIndicators = 0
        for e in expected {
            let key = e["timeframe"]! + "@" + e["start_ns"]!
            guard let (b, i) = byKey[key] else { XCTFail("missing bar \(key) in \(file)"); continue }
            for k in ["end_ns", "open", "high", "low", "close", "trades"] {
                XCTAssertEqual(Double(b[k]!), Double(e[k]!), "\(file) \(key) \(k)")
            }
            close(b["volume"]!, e["volume"]!, rel: 1e-9, "\(file) \(key) volume")
            close(b["vwap"]!, e["vwap"]!, rel: 1e-9, "\(file) \(key) vwap")
            for k in ["sma", "ema", "rsi", "macd", "macd_signal", "macd_hist", "bb_middle", "bb_upper", "bb_lower"] {
                close(i[k]!, e[k]!, rel: 1e-9, "\(file) \(key) \(k)")
                if !(e[k]!.isEmpty) { checkedIndicators += 1 }
            }
        }
        XCTAssertGreaterThan(checkedIndicators, 0, "no indicator past its lookback in \(file)")
    }

    func testEveryCaptureMatchesPythonBarsAndTALib() throws {
        var c = PipelineConfig()
        c.timeframes = [Timeframe("5s")!, Timeframe("15s")!]
        // Exchange time runs ~1.25 s ahead of receive time in these captures: with 10 s of lateness no
        // trade is late, so bars hold every trade, as the reference does.
        c.allowedLateness = 10_000_000_000
        c.badTick.enabled = false
        for f in try Paths.captures() { try compare(file: f, timeframes: "5s,15s", config: c) }
    }

    func testBarFilesMatchPythonAggregationAndTALib() throws {
        for f in try Paths.barFiles() { try compare(file: f, timeframes: "1m,5m,15m", config: PipelineConfig()) }
    }
}
