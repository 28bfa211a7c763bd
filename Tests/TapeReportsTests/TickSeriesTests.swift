import XCTest
import TapeTestSupport
import TapeCore
import TapeGraph
import TapeClock
import TapeReplay
import TapeSinks
import Foundation
import TapeReports

/// The tick view's data (`tick_series.csv`, `TickSeriesSink`): its buckets against a recomputation
/// straight from the raw capture lines (not from the collector), a bounded bucket count, the same bytes
/// from two processes; volumes without float noise; and the report's cost on a month of 1-minute bars.
final class TickSeriesTests: XCTestCase {
    var root: URL {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { url = url.deletingLastPathComponent() }
        return url
    }
    var shared: URL { root.deletingLastPathComponent().appendingPathComponent("shared/data") }
    var capture: String { shared.appendingPathComponent("binance-feed/spot-btcusdt_20240808.gz").path }

    /// The rows of a CSV file as dictionaries by column name.
    func rows(_ path: String) throws -> [[String: String]] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return lines.dropFirst().map { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(fields.count, header.count, line)
            return Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
    }

    func gunzip(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// What one bucket must hold, computed from the capture's own lines: `<receive ns> <JSON>`, the
    /// `@trade` (`p`, `q`) and `@bookTicker` (`b`, `a`) messages, bucketed by receive time at the width
    /// the file states. Quantities are summed as `Decimal`: exact.
    struct Expected {
        var trades = 0, quotes = 0
        var volume = Decimal(0)
        var first: Double? = nil, low = Double.infinity, high = -Double.infinity, last: Double? = nil
        var bidLow = Double.infinity, askHigh = -Double.infinity, bidLast: Double? = nil, askLast: Double? = nil
        var spreadLow = Double.infinity, spreadHigh = -Double.infinity
    }

    func recompute(width: Int64) throws -> (buckets: [Int64: Expected], volume: Decimal) {
        var buckets: [Int64: Expected] = [:]
        var total = Decimal(0)
        for line in try gunzip(capture).split(separator: "\n") {
            guard let space = line.firstIndex(of: " "), let received = Int64(line[..<space]) else { continue }
            guard let json = try? JSONSerialization.jsonObject(with: Data(line[line.index(after: space)...].utf8)) as? [String: Any],
                  let stream = json["stream"] as? String, let data = json["data"] as? [String: Any] else { continue }
            let start = received - received % width
            if stream.hasSuffix("@trade"), let p = data["p"] as? String, let q = data["q"] as? String {
                let price = Double(p)!
                var bucket = buckets[start] ?? Expected()
                bucket.trades += 1
                bucket.volume += Decimal(string: q)!
                total += Decimal(string: q)!
                if bucket.first == nil { bucket.first = price }
                bucket.low = min(bucket.low, price)
                bucket.high = max(bucket.high, price)
                bucket.last = price
                buckets[start] = bucket
            } else if stream.hasSuffix("@bookTicker"), let b = data["b"] as? String, let a = data["a"] as? String {
                let bid = Double(b)!, ask = Double(a)!
                var bucket = buckets[start] ?? Expected()
                bucket.quotes += 1
                bucket.bidLow = min(bucket.bidLow, bid)
                bucket.askHigh = max(bucket.askHigh, ask)
                bucket.bidLast = bid
                bucket.askLast = ask
                bucket.spreadLow = min(bucket.spreadLow, ask - bid)
                bucket.spreadHigh = max(bucket.spreadHigh, ask - bid)
                buckets[start] = bucket
            }
        }
        return (buckets, total)
    }

    func replayCapture(_ name: String) throws -> ReplaySummary {
        var options = ReplayOptions(inputs: [capture])
        options.outDir = NSTemporaryDirectory() + "tape-ticks-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: options.outDir!)
        options.messagePrinter = { _ in }
        return try runReplay(options)
    }

    func testBucketsAgreeWithTheCaptureLines() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: capture), "real data at \(capture)")
        let run = try replayCapture("agree")
        XCTAssertEqual(run.ticksRejected, 0)
        let file = try rows(run.runDir + "/" + TickSeriesSink.fileName)
        XCTAssertGreaterThan(file.count, 100)
        XCTAssertLessThanOrEqual(file.count, TickSeriesSink.bucketsPerSymbolMax)
        let width = Int64(file[0]["width_ns"]!)!
        XCTAssertEqual(width % TickSeriesSink.widthStartNanos, 0)
        XCTAssertEqual((width / TickSeriesSink.widthStartNanos).nonzeroBitCount, 1, "width = 1 ms × 2^k")
        let (expected, totalVolume) = try recompute(width: width)
        XCTAssertEqual(file.count, expected.count, "one row per bucket that had a trade or a quote")
        func number(_ text: String?) -> Double? { text.flatMap { $0.isEmpty ? nil : Double($0) } }
        for row in file {
            XCTAssertEqual(row["symbol"], "spot:BTCUSDT")
            XCTAssertEqual(Int64(row["width_ns"]!), width)
            let start = Int64(row["start_ns"]!)!
            guard let want = expected[start] else { XCTFail("no trade or quote in bucket \(start)"); continue }
            XCTAssertEqual(Int(row["trades"]!), want.trades, "trades at \(start)")
            XCTAssertEqual(Int(row["quotes"]!), want.quotes, "quotes at \(start)")
            if want.trades > 0 {
                // Exactly the decimal sum, as text: no float noise.
                XCTAssertEqual(Decimal(string: row["volume"]!), want.volume, "volume at \(start): \(row["volume"]!)")
                XCTAssertEqual(number(row["price_first"]), want.first)
                XCTAssertEqual(number(row["price_low"]), want.low)
                XCTAssertEqual(number(row["price_high"]), want.high)
                XCTAssertEqual(number(row["price_last"]), want.last)
            } else {
                XCTAssertEqual(row["volume"], "")
                XCTAssertEqual(row["price_last"], "")
            }
            if want.quotes > 0 {
                XCTAssertEqual(number(row["bid_low"]), want.bidLow)
                XCTAssertEqual(number(row["ask_high"]), want.askHigh)
                XCTAssertEqual(number(row["bid_last"]), want.bidLast)
                XCTAssertEqual(number(row["ask_last"]), want.askLast)
                XCTAssertEqual(number(row["spread_low"])!, want.spreadLow, accuracy: 1e-9)
                XCTAssertEqual(number(row["spread_high"])!, want.spreadHigh, accuracy: 1e-9)
                XCTAssertFalse(row["spread_low"]!.count > 12, "spread printed without float noise: \(row["spread_low"]!)")
            }
        }
        // The bars' and the summary's volumes are exact decimal sums too: the 1m bars hold every trade.
        let summary = try rows(run.runDir + "/bars.csv")
        let oneMinute = summary.filter { $0["timeframe"] == "1m" }
        XCTAssertEqual(oneMinute.reduce(Decimal(0)) { $0 + Decimal(string: $1["volume"]!)! }, totalVolume)
        for bar in summary { XCTAssertLessThanOrEqual(bar["volume"]!.split(separator: ".").last!.count, 8, "bar volume \(bar["volume"]!)") }
        try ReportWriter.write(runDir: run.runDir)
        let summaryRows = try rows(run.runDir + "/summary.csv")
        XCTAssertEqual(summaryRows.first { $0["timeframe"] == "1m" }?["volume"], "\(totalVolume)", "summary.csv volume")
        let page = try String(contentsOfFile: run.runDir + "/index.html", encoding: .utf8)
        XCTAssertTrue(page.contains("<div class=\"tickview\" data-sym=\"spot:BTCUSDT\">"), "the tick view")
        XCTAssertTrue(page.contains("<h2>Ticks per symbol</h2>") && page.contains("<td>\(totalVolume)</td>"), "exact volume \(totalVolume)")
    }

    /// Hours of synthetic ticks with gaps: never more than `bucketsPerSymbolMax` buckets, widths 1 ms × 2^k,
    /// starts aligned and increasing, every tick counted.
    func testBucketCountIsBounded() throws {
        let directory = NSTemporaryDirectory() + "tape-ticks-bounded-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let symbols = SymbolTable()
        let a = symbols.intern("test:A"), b = symbols.intern("test:B")
        let sink = TickSeriesSink(directory: directory, symbols: symbols)
        var time: Int64 = 1_700_000_000_000_000_000
        var trades = [0, 0], quotes = [0, 0]
        var generator = SystemRandomNumberGenerator()
        for step in 0..<300_000 {
            time += Int64(step % 1000 == 0 ? 600_000_000_000 : Int.random(in: 1...50_000_000, using: &generator))
            let symbol = step % 3 == 0 ? b : a
            let index = symbol == a ? 0 : 1
            if step % 2 == 0 {
                sink.record(.trade(eventTime: time, receiveTime: time, symbol: symbol, price: 100 + Double(step % 17), size: 0.1))
                trades[index] += 1
            } else {
                sink.record(.quote(eventTime: time, receiveTime: time, symbol: symbol, bid: 99.5, bidSize: 1, ask: 100.5, askSize: 1))
                quotes[index] += 1
            }
        }
        try sink.close()
        let file = try rows(directory + "/" + TickSeriesSink.fileName)
        for (index, name) in ["test:A", "test:B"].enumerated() {
            let mine = file.filter { $0["symbol"] == name }
            XCTAssertLessThanOrEqual(mine.count, TickSeriesSink.bucketsPerSymbolMax, name)
            XCTAssertGreaterThan(mine.count, TickSeriesSink.bucketsPerSymbolMax / 4, "\(name): merging keeps a useful number")
            let width = Int64(mine[0]["width_ns"]!)!
            XCTAssertEqual((width / TickSeriesSink.widthStartNanos).nonzeroBitCount, 1)
            let starts = mine.map { Int64($0["start_ns"]!)! }
            XCTAssertTrue(starts.allSatisfy { $0 % width == 0 }, "aligned")
            XCTAssertEqual(starts, starts.sorted(), "in time order")
            XCTAssertEqual(Set(starts).count, starts.count, "no two buckets share a start")
            XCTAssertEqual(mine.reduce(0) { $0 + Int($1["trades"]!)! }, trades[index])
            XCTAssertEqual(mine.reduce(0) { $0 + Int($1["quotes"]!)! }, quotes[index])
        }
    }

    /// Two `tape replay` processes of the same capture write byte-identical tick_series.csv.
    func testSameBytesFromTwoProcesses() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: capture), "real data at \(capture)")
        let tape = root.appendingPathComponent(".build/release/tape").path
        try requireOrSkip(FileManager.default.fileExists(atPath: tape), "the release binary at \(tape)")
        var files: [Data] = []
        for index in 0..<2 {
            let out = NSTemporaryDirectory() + "tape-ticks-process\(index)-\(getpid())"
            try? FileManager.default.removeItem(atPath: out)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tape)
            process.arguments = ["replay", capture, "--out", out, "--quiet", "--no-report"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            files.append(try Data(contentsOf: URL(fileURLWithPath: out + "/" + TickSeriesSink.fileName)))
        }
        XCTAssertGreaterThan(files[0].count, 10_000)
        XCTAssertEqual(files[0], files[1])
    }

    /// Sums of decimal quantities print as the decimal: 0.1 + 0.2 is 0.3, in the bars the graph closes too.
    func testVolumesWithoutFloatNoise() throws {
        XCTAssertEqual(ExactSum.of([0.1, 0.2]).text, "0.3")
        XCTAssertEqual(ExactSum.of([0.1, 0.2]).value, 0.3)
        XCTAssertEqual(ExactSum.of([0.1, 0.2, .nan, 5]).text, "5.3")
        XCTAssertEqual(ExactSum.of([]).text, "0")
        XCTAssertEqual(ExactSum.of([0.005, 0.005]).text, "0.01")
        XCTAssertEqual(ExactSum.of([-1.25, 0.5]).text, "-0.75")
        XCTAssertEqual(ExactSum.of(Array(repeating: 0.001, count: 710_971)).text, "710.971")
        // Beyond what a Double holds: 45,000 volumes of 2,300,413.7295 (4 places, 1.0e11 in all).
        XCTAssertEqual(ExactSum.of(Array(repeating: 2_300_413.7295, count: 45_000)).text, "103518617827.5")
        XCTAssertEqual(ExactSum.of([1.0 / 3, 1]).text, "1.3333333333333333", "the shortest text of 1/3, plus 1")
        XCTAssertFalse(ExactSum.of([1e-30, 1]).exact, "beyond 20 places: the Double sum")
        // Values with many places (a vendor's own float noise, as in the real BTC file) still sum exactly.
        XCTAssertEqual(ExactSum.of([218102.59507500002, 119923152467.5, 2300413.7295]).text, "119925670983.82457500002")
        XCTAssertEqual(ExactSum.of([218102.59507500002, 119923152467.5, 2300413.7295]).text(significantDigitsMax: 15), "119925670983.825")
        XCTAssertEqual(ExactSum.of([0.125, 0.25]).text(significantDigitsMax: 2), "0.38")
        XCTAssertEqual(ExactSum.of([123456.5]).text(significantDigitsMax: 3), "123457", "the integer part stays whole")
        let symbols = SymbolTable()
        let id = symbols.intern("test:X")
        var config = PipelineConfig()
        config.timeframes = [Timeframe(seconds: 60)]
        final class Collect: GraphSink {
            var bars: [BarOutput] = []
            func emit(_ output: GraphOutput) { if case .bar(let bar) = output { bars.append(bar) } }
        }
        let collect = Collect()
        let clock = SimulatedClock(start: 0)
        let graph = Graph(config: config, clock: clock, symbols: symbols, sink: collect)
        for (index, size) in [0.1, 0.2].enumerated() {
            let time = Int64(index + 1) * 1_000_000_000
            clock.advance(to: time)
            graph.onEvent(.trade(eventTime: time, receiveTime: time, symbol: id, price: 100, size: size))
        }
        graph.finish()
        XCTAssertEqual(collect.bars.count, 1)
        XCTAssertEqual(Numbers.format(collect.bars[0].volume), "0.3")
    }

    /// The report of a month of 1-minute bars (45,031 in) builds in well under the replay's own time,
    /// measured in the same test (generous to noise: under half); a bar-file run has no tick view.
    func testReportOfAMonthOfBarsIsCheap() throws {
        let bars = shared.appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        var options = ReplayOptions(inputs: [bars])
        options.outDir = NSTemporaryDirectory() + "tape-ticks-report-\(getpid())"
        try? FileManager.default.removeItem(atPath: options.outDir!)
        options.messagePrinter = { _ in }
        let run = try runReplay(options)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.runDir + "/" + TickSeriesSink.fileName), "no ticks, no file")
        var best = Double.infinity
        for _ in 0..<3 {
            let started = Date()
            try ReportWriter.write(runDir: run.runDir)
            best = min(best, Date().timeIntervalSince(started))
        }
        let size = (try FileManager.default.attributesOfItem(atPath: run.runDir + "/index.html")[.size] as? Int) ?? 0
        print("report of \(run.ticksIn) bars: \(String(format: "%.3f", best)) s (best of 3), replay \(String(format: "%.3f", run.wallSeconds)) s, index.html \(size) bytes")
        XCTAssertLessThan(best, run.wallSeconds / 2, "report \(best) s against replay \(run.wallSeconds) s")
        let page = try String(contentsOfFile: run.runDir + "/index.html", encoding: .utf8)
        XCTAssertFalse(page.contains("class=\"tickview\""), "no tick view without ticks")
        // summary.csv's volume is the exact decimal sum of the bars' volumes as bars.csv prints them (the
        // input file itself has values like 218102.59507500002: those digits stay), summed here as Decimal.
        let oneMinute = try rows(run.runDir + "/bars.csv").filter { $0["timeframe"] == "1m" }
        let total = oneMinute.reduce(Decimal(0)) { $0 + Decimal(string: $1["volume"]!)! }
        let summaryVolume = try rows(run.runDir + "/summary.csv").first { $0["timeframe"] == "1m" }?["volume"]
        XCTAssertEqual(summaryVolume.flatMap { Decimal(string: $0) }, total, "\(summaryVolume ?? "")")
        XCTAssertEqual(summaryVolume, "119923370570.20744999989")
        XCTAssertTrue(page.contains("<td>119,923,370,570.207</td>"), "the table: 15 significant digits, grouped")
        XCTAssertTrue(page.contains("const TICKS={};"))
    }
}

final class DisplayNumbersTests: XCTestCase {
    func text(_ x: Double, _ digits: Int) -> String {
        var out: [UInt8] = []
        DisplayNumbers.appendSignificant(x, digits: digits, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The page's numbers: `digits` significant digits, like printf's `%.*g` read back, as short text.
    func testSignificantDigits() {
        XCTAssertEqual(text(61837.63, 7), "61837.63")
        XCTAssertEqual(text(710.9709999999974, 7), "710.971")
        XCTAssertEqual(text(0.000123456789, 7), "0.0001234568")
        XCTAssertEqual(text(-12, 7), "-12")
        XCTAssertEqual(text(1234567890, 7), "1234568000")
        XCTAssertEqual(text(0, 7), "0")
        XCTAssertEqual(text(.nan, 7), "null")
        XCTAssertEqual(text(9.9999999, 7), "10")
        XCTAssertEqual(text(1e-20, 7), "1e-20")
        XCTAssertEqual(text(1.5e20, 8), "1.5e20")
        var generator = SystemRandomNumberGenerator()
        var differing = 0
        let count = 200_000
        for _ in 0..<count {
            let x = Double.random(in: 1...10, using: &generator) * pow(10, Double(Int.random(in: -12...12, using: &generator)))
                * (Bool.random(using: &generator) ? 1 : -1)
            let digits = Int.random(in: 6...8, using: &generator)
            let mine = Double(text(x, digits))!
            let reference = Double(String(format: "%.\(digits)g", x))!
            if mine != reference {
                differing += 1
                // Only at a tie hidden by the scaling's rounding: one unit of the last digit at most.
                XCTAssertLessThanOrEqual(abs(mine - reference), abs(reference) * 1.01 * pow(10, Double(1 - digits)), "\(x)")
            }
        }
        XCTAssertLessThan(differing, count / 1000, "\(differing) of \(count) differ from %g")
    }
}
