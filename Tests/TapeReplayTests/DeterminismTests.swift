import Crypto
import Foundation
import XCTest
import TapeCore
import TapeGraph
import TapeReplay
import TapeEngine
import TapeSinks
import TapeIO
import TapeSources

/// The promise: same input ⇒ same output, bit for bit, on every run and at every speed.
final class DeterminismTests: XCTestCase {
    func replay(_ inputs: [String], speed: ReplaySpeed = .max, from: Nanos? = nil, to: Nanos? = nil,
                config: PipelineConfig = PipelineConfig(), name: String = "run") throws -> ReplaySummary {
        var o = ReplayOptions(inputs: inputs)
        o.speed = speed
        o.engine.from = from
        o.engine.to = to
        o.engine.config = config
        o.outDir = Paths.tempDir(name)
        o.messagePrinter = { _ in }
        return try runReplay(o)
    }

    func testEveryCaptureGivesTheSameDigestOnRepeatedRunsAndAtPacedSpeed() throws {
        for file in try Paths.captures() {
            let a = try replay([file], name: "a")
            let b = try replay([file], name: "b")
            // 5 minutes of capture at 1000x ≈ 0.3 s of pacing: a real paced run, not the max path.
            let c = try replay([file], speed: .factor(1000), name: "c")
            XCTAssertGreaterThan(a.eventsOut, 0, file)
            XCTAssertEqual(a.digest, b.digest, "repeat run differs: \(file)")
            XCTAssertEqual(a.digest, c.digest, "paced run differs: \(file)")
            XCTAssertEqual(a.eventsOutByKind, c.eventsOutByKind, file)
            for f in ["bars.csv", "indicators.csv", "anomalies.csv"] {
                XCTAssertEqual(try String(contentsOfFile: a.runDir + "/" + f, encoding: .utf8),
                               try String(contentsOfFile: c.runDir + "/" + f, encoding: .utf8), "\(file) \(f)")
            }
        }
    }

    func testBarFilesGiveTheSameDigestOnRepeatedRunsAndAtPacedSpeed() throws {
        for file in try Paths.barFiles() {
            let a = try replay([file], name: "bars-a")
            let b = try replay([file], name: "bars-b")
            // A month of minutes at 1e7 x ≈ 0.27 s of pacing.
            let c = try replay([file], speed: .factor(10_000_000), name: "bars-c")
            XCTAssertGreaterThan(a.eventsOut, 0, file)
            XCTAssertEqual(a.digest, b.digest, file)
            XCTAssertEqual(a.digest, c.digest, file)
        }
    }

    func testMergedFilesAreDeterministic() throws {
        let caps = try Paths.captures()
        let spot = caps.first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        let usdm = caps.first { $0.hasSuffix("usdm-btcusdt_20240808.gz") }!
        let a = try replay([spot, usdm], name: "m-a")
        let b = try replay([spot, usdm], speed: .factor(1000), name: "m-b")
        XCTAssertEqual(a.digest, b.digest)
        XCTAssertEqual(a.ticksIn, 9757 + 28040 + 21313 + 66089)
    }

    func testSpeed10OnATwoSecondSliceTakesAboutAFifthOfASecond() throws {
        let spot = try Paths.captures().first { $0.hasSuffix("spot-btcusdt_20240808.gz") }!
        // The capture spans receive time 2024-08-08T23:54:14Z..23:59:59Z; take 2 s of event time in the middle.
        let from = TimeUtil.parseDateTime("2024-08-08T23:57:00Z")!
        let to = from + 2_000_000_000
        let fast = try replay([spot], from: from, to: to, name: "slice-max")
        let t0 = Date()
        let paced = try replay([spot], speed: .factor(10), from: from, to: to, name: "slice-10")
        let wall = Date().timeIntervalSince(t0)
        XCTAssertEqual(fast.digest, paced.digest)
        XCTAssertGreaterThan(paced.ticksIn, 0)
        // Pacing follows receive time. A 2 s event-time slice spans a little more receive time here,
        // because trade exchange times run ~1.25 s ahead of receive time in these captures while
        // spot quotes carry their receive time: the paced duration is that span / 10 (~0.2–0.3 s).
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: paced.runDir + "/summary.json"))) as! [String: Any]
        let lastR = try XCTUnwrap(summary["last_receive_ns"] as? Int), firstR = try XCTUnwrap(summary["first_receive_ns"] as? Int)
        let span = Double(lastR - firstR) / 1e9
        XCTAssertGreaterThanOrEqual(span, 1.9)
        XCTAssertLessThan(span, 3.5)
        XCTAssertGreaterThan(wall, span / 10 * 0.95, "paced replay finished too early")
        XCTAssertLessThan(wall, span / 10 + 0.25, "paced replay far slower than 10x")
    }
}

/// Per-symbol digests of a real run (the 8 captures merged, several symbols interleaved) against an
/// independent reference: SHA-256 (swift-crypto, directly) over each symbol's lines `<kind>,<row>`
/// taken from the run's CSV files, put back in emission order with the kinds seen by a collecting sink.
final class PerSymbolDigestTests: XCTestCase {
    func testPerSymbolDigestsOfTheMergedCapturesMatchAnIndependentHash() throws {
        var options = ReplayOptions(inputs: try Paths.captures())
        let collected = CollectingSink()
        options.extraSinks = [collected]
        options.outDir = Paths.tempDir("per-symbol")
        options.hashInputs = false
        options.messagePrinter = { _ in }
        let summary = try runReplay(options)
        var rowsByKind: [String: ArraySlice<Substring>] = [:]
        for kind in Set(collected.outputs.map(\.kindName)) {
            let text = try String(contentsOfFile: "\(summary.runDir)/\(kind).csv", encoding: .utf8)
            rowsByKind[kind] = text.split(separator: "\n").dropFirst()
        }
        var linesBySymbol: [String: String] = [:]
        var all = ""
        for output in collected.outputs {
            let kind = output.kindName
            let row = try XCTUnwrap(rowsByKind[kind]!.popFirst(), "one CSV row per output")
            let name = String(row.prefix { $0 != "," })
            let line = "\(kind),\(row)\n"
            linesBySymbol[name, default: ""] += line
            all += line
        }
        XCTAssertTrue(rowsByKind.values.allSatisfy(\.isEmpty), "no CSV row without an output")
        XCTAssertGreaterThanOrEqual(linesBySymbol.count, 5, "several symbols interleave")
        XCTAssertEqual(Hex.encode(Array(SHA256.hash(data: Array(all.utf8)))), summary.digest)
        XCTAssertEqual(Set(summary.digestsBySymbol.keys), Set(linesBySymbol.keys))
        for (name, lines) in linesBySymbol {
            XCTAssertEqual(summary.digestsBySymbol[name], Hex.encode(Array(SHA256.hash(data: Array(lines.utf8)))), name)
        }
    }
}
