import XCTest
import TapeTestSupport
import Foundation
import TapeCore
import TapeGraph
import TapeModel

enum Support {
    /// The package root: the directory above `#filePath` holding Package.swift.
    static func packageRoot(_ file: String = #filePath) -> URL {
        var u = URL(fileURLWithPath: file).deletingLastPathComponent()
        while u.path != "/" {
            if FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) { return u }
            u = u.deletingLastPathComponent()
        }
        fatalError("no Package.swift above \(file)")
    }

    static var btcBars: URL { packageRoot().appendingPathComponent("../shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz").standardized }

    static func requireBTC() throws -> URL {
        let u = btcBars
        try requireOrSkip(FileManager.default.fileExists(atPath: u.path), "real data at \(u.path)")
        return u
    }

    static func tempDir(_ name: String) -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tape-model-tests-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: u)
        try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    /// Runs `python3 scripts/<script> args...`; returns stdout; fails the test on a non-zero exit.
    static func python(_ script: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", packageRoot().appendingPathComponent("scripts/\(script)").path] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { try skipOrFail(missing: "python3 (\(error))") }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            let msg = String(decoding: e, as: UTF8.self)
            try requireOrSkip(!msg.contains("ModuleNotFoundError"), "a Python module: \(msg)")
            XCTFail("\(script) failed (\(p.terminationStatus)): \(msg)")
        }
        return String(decoding: o, as: UTF8.self)
    }

    static func cell(_ s: Substring) -> Double { s.isEmpty ? .nan : Double(String(s))! }

    /// Reference CSV from scripts/model_ref_features.py: graph outputs to feed, and expected features.
    struct Reference {
        var outputs: [GraphOutput] = []
        var expected: [[Double]] = []
        var ends: [Nanos] = []
        var csvPath = ""
    }

    static func reference(maxRows: Int? = nil) throws -> Reference {
        let bars = try requireBTC()
        let dir = tempDir("ref\(maxRows ?? 0)")
        let csv = dir.appendingPathComponent("ref.csv").path
        _ = try python("model_ref_features.py", [bars.path, csv] + (maxRows.map { [String($0)] } ?? []))
        let text = try String(contentsOfFile: csv, encoding: .utf8)
        var ref = Reference()
        ref.csvPath = csv
        let tf = Timeframe(seconds: 60)
        for line in text.split(separator: "\n").dropFirst() {
            let c = line.split(separator: ",", omittingEmptySubsequences: false)
            let end = Int64(c[0])!
            let v = c.dropFirst().map(cell)
            ref.outputs.append(.bar(BarOutput(symbol: 1, timeframe: tf, start: end - tf.nanos, end: end, open: v[0], high: v[1],
                                              low: v[2], close: v[3], volume: v[4], vwap: .nan, trades: 1)))
            var ind = IndicatorOutput(symbol: 1, timeframe: tf, end: end)
            ind.sma = v[5]; ind.ema = v[6]; ind.rsi = v[7]; ind.macd = v[8]; ind.macdSignal = v[9]; ind.macdHist = v[10]
            ind.bbUpper = v[11]; ind.bbMiddle = v[12]; ind.bbLower = v[13]
            ref.outputs.append(.indicators(ind))
            ref.expected.append(Array(v[14...]))
            ref.ends.append(end)
        }
        return ref
    }

    static func close(_ a: Double, _ b: Double, rel: Double, abs absTol: Double = 0) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        return Swift.abs(a - b) <= max(absTol, rel * max(Swift.abs(a), Swift.abs(b)))
    }
}
