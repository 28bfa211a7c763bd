import XCTest
import TapeTestSupport
import Foundation
import TapeCore
import TapeClock
import TapeGraph

private func packageRoot() -> URL {
    var u = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while u.path != "/" {
        if FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) { return u }
        u = u.deletingLastPathComponent()
    }
    return u
}
private func dataDir() throws -> URL {
    let d = packageRoot().appendingPathComponent("../shared/data").standardizedFileURL
    try requireOrSkip(FileManager.default.fileExists(atPath: d.path), "real data at \(d.path)")
    return d
}
private func runReference(_ input: URL, timeframes: String) throws -> URL {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("tape-graph-ref-\(UUID().uuidString)")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", packageRoot().appendingPathComponent("scripts/graph_reference.py").path,
                   input.path, out.path, "--timeframes", timeframes]
    try p.run(); p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw NSError(domain: "graph_reference.py", code: Int(p.terminationStatus),
                      userInfo: [NSLocalizedDescriptionKey: "scripts/graph_reference.py failed on \(input.lastPathComponent)"])
    }
    return out
}
private func csv(_ u: URL) throws -> [[String]] {
    let s = try String(contentsOf: u, encoding: .utf8)
    return s.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
}
private func d(_ s: String) -> Double { s.isEmpty ? .nan : Double(s)! }
private func close(_ a: Double, _ b: Double, rel: Double = 1e-9, abs: Double = 1e-12) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    return Swift.abs(a - b) <= Swift.max(abs, rel * Swift.max(Swift.abs(a), Swift.abs(b)))
}

private func runGraph(_ events: [MarketEvent], _ cfg: PipelineConfig, _ syms: SymbolTable) -> (CollectingSink, Graph) {
    let clock = SimulatedClock(start: events.first?.receiveTime ?? 0)
    let sink = CollectingSink()
    let g = Graph(config: cfg, clock: clock, symbols: syms, sink: sink)
    for e in events { clock.advance(to: e.receiveTime); g.onEvent(e) }
    g.finish()
    return (sink, g)
}

private func loadTrades(_ u: URL, _ sym: SymbolID) throws -> [MarketEvent] {
    try csv(u).map { r in
        MarketEvent.trade(eventTime: Int64(r[0])!, receiveTime: Int64(r[1])!, symbol: sym, price: Double(r[2])!, size: Double(r[3])!)
    }
}

private func compare(_ outs: [GraphOutput], ref: URL, file: StaticString = #filePath, line: UInt = #line) throws {
    let bars = outs.compactMap { if case .bar(let b) = $0 { return b } else { return nil } }
    let inds = outs.compactMap { if case .indicators(let i) = $0 { return i } else { return nil } }
    let rb = try csv(ref.appendingPathComponent("bars.csv"))
    let ri = try csv(ref.appendingPathComponent("indicators.csv"))
    for tfName in Set(rb.map { $0[0] }).sorted() {
        let tf = Timeframe(tfName)!
        let mb = bars.filter { $0.timeframe == tf }, eb = rb.filter { $0[0] == tfName }
        XCTAssertEqual(mb.count, eb.count, "bar count \(tfName)", file: file, line: line)
        var badBars = 0
        for (b, r) in zip(mb, eb) {
            let ok = b.start == Int64(r[1])! && [b.open, b.high, b.low, b.close] == [d(r[3]), d(r[4]), d(r[5]), d(r[6])]
                && close(b.volume, d(r[7])) && close(b.vwap, d(r[8])) && b.trades == Int(r[9])!
            if !ok { badBars += 1; if badBars < 4 { XCTFail("bar \(b) vs \(r)", file: file, line: line) } }
        }
        XCTAssertEqual(badBars, 0, "bar mismatches \(tfName)", file: file, line: line)
        let mi = inds.filter { $0.timeframe == tf }, ei = ri.filter { $0[0] == tfName }
        XCTAssertEqual(mi.count, ei.count, file: file, line: line)
        var bad = 0
        for (i, r) in zip(mi, ei) {
            let mine = [i.sma, i.ema, i.rsi, i.macd, i.macdSignal, i.macdHist, i.bbMiddle, i.bbUpper, i.bbLower]
            for k in 0..<9 where !close(mine[k], d(r[2 + k])) {
                bad += 1
                if bad < 5 { XCTFail("\(tfName) end \(i.end) col \(k): \(mine[k]) vs \(r[2 + k])", file: file, line: line) }
            }
        }
        XCTAssertEqual(bad, 0, "indicator mismatches \(tfName)", file: file, line: line)
    }
}

final class GraphReferenceTests: XCTestCase {
    func testRawCapturesAgainstTalib() throws {
        let dir = try dataDir().appendingPathComponent("binance-feed")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".gz") }.sorted()
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let ref = try runReference(dir.appendingPathComponent(f), timeframes: "5s,15s")
            defer { try? FileManager.default.removeItem(at: ref) }
            let syms = SymbolTable(); let s = syms.intern("X")
            let trades = try loadTrades(ref.appendingPathComponent("trades.csv"), s)
            var cfg = PipelineConfig()
            cfg.timeframes = [Timeframe("5s")!, Timeframe("15s")!]
            cfg.allowedLateness = 120 * TimeUtil.nsPerSecond   // no trade late: compare pure aggregation
            cfg.badTick.enabled = false
            let (sink, g) = runGraph(trades, cfg, syms)
            XCTAssertEqual(g.counters.lateTicks, 0, f)
            try compare(sink.outputs, ref: ref)
        }
    }

    func testBarFilesAgainstTalib() throws {
        let dir = try dataDir().appendingPathComponent("bars")
        for f in ["btc-perp-20211231-20220201_1m.csv.gz", "fxcm-gbpusd-m1-bid-2012.csv.gz"] {
            let ref = try runReference(dir.appendingPathComponent(f), timeframes: "1m,5m,15m")
            defer { try? FileManager.default.removeItem(at: ref) }
            // Rebuild the 1m input bars from the reference's 1m bar rows (independent of other readers).
            let syms = SymbolTable(); let s = syms.intern("B")
            let rows = try csv(ref.appendingPathComponent("bars.csv")).filter { $0[0] == "1m" }
            let events = rows.map { r in
                MarketEvent.bar(endTime: Int64(r[2])!, receiveTime: Int64(r[2])!, symbol: s, open: d(r[3]), high: d(r[4]),
                                low: d(r[5]), close: d(r[6]), volume: d(r[7]))
            }
            var cfg = PipelineConfig(); cfg.staleFeed.enabled = false
            let (sink, _) = runGraph(events, cfg, syms)
            try compare(sink.outputs, ref: ref)
        }
    }
}

final class GraphBehaviourTests: XCTestCase {
    let sec = TimeUtil.nsPerSecond
    func testLateTickAndTimerClose() {
        let syms = SymbolTable(); let s = syms.intern("A")
        var cfg = PipelineConfig(); cfg.timeframes = [Timeframe("5s")!]; cfg.allowedLateness = 2 * sec
        cfg.staleFeed.enabled = false
        let clock = SimulatedClock(start: 0); let sink = CollectingSink()
        let g = Graph(config: cfg, clock: clock, symbols: syms, sink: sink)
        func tr(_ t: Int64, _ p: Double) { clock.advance(to: t); g.onEvent(.trade(eventTime: t, receiveTime: t, symbol: s, price: p, size: 1)) }
        tr(1 * sec, 100); tr(4 * sec, 101)
        clock.advance(to: 6 * sec)
        XCTAssertTrue(sink.outputs.isEmpty)
        clock.advance(to: 7 * sec)   // end 5s + lateness 2s: timer closes the bar with no further tick
        guard case .bar(let b)? = sink.outputs.first else { return XCTFail("no bar") }
        XCTAssertEqual([b.open, b.high, b.low, b.close, b.volume], [100, 101, 100, 101, 2]); XCTAssertEqual(b.vwap, 100.5)
        clock.advance(to: 8 * sec)
        g.onEvent(.trade(eventTime: 3 * sec, receiveTime: 8 * sec, symbol: s, price: 99, size: 1))
        guard case .lateTick(let l)? = sink.outputs.last else { return XCTFail("no late tick") }
        XCTAssertEqual(l.watermark, 6 * sec); XCTAssertEqual(g.counters.lateTicks, 1)
    }

    func testStaleFeedFiresFromTimerOnce() {
        let syms = SymbolTable(); let s = syms.intern("A")
        var cfg = PipelineConfig(); cfg.staleFeed.after = 10 * sec
        let clock = SimulatedClock(start: 0); let sink = CollectingSink()
        let g = Graph(config: cfg, clock: clock, symbols: syms, sink: sink)
        clock.advance(to: sec); g.onEvent(.trade(eventTime: sec, receiveTime: sec, symbol: s, price: 1, size: 1))
        clock.advance(to: 5 * sec); g.onEvent(.trade(eventTime: 5 * sec, receiveTime: 5 * sec, symbol: s, price: 1, size: 1))
        clock.advance(to: 14 * sec)
        XCTAssertFalse(sink.outputs.contains { if case .anomaly = $0 { return true } else { return false } })
        clock.advance(to: 100 * sec)
        let st = sink.outputs.compactMap { o -> AnomalyOutput? in if case .anomaly(let a) = o, a.rule == "stale_feed" { return a } else { return nil } }
        XCTAssertEqual(st.count, 1); XCTAssertEqual(st.first?.time, 15 * sec)
    }

    func testFinishClosesOpenWindowsAndSilencesTimers() {
        let syms = SymbolTable(); let s = syms.intern("A")
        var cfg = PipelineConfig(); cfg.timeframes = [Timeframe("5s")!, Timeframe("1m")!]; cfg.staleFeed.after = 10 * sec
        let clock = SimulatedClock(start: 0); let sink = CollectingSink()
        let g = Graph(config: cfg, clock: clock, symbols: syms, sink: sink)
        clock.advance(to: sec); g.onEvent(.trade(eventTime: sec, receiveTime: sec, symbol: s, price: 10, size: 2))
        clock.advance(to: 2 * sec); g.onEvent(.trade(eventTime: 2 * sec, receiveTime: 2 * sec, symbol: s, price: 10.3, size: 1))
        XCTAssertTrue(sink.outputs.isEmpty, "\(sink.outputs)")
        g.finish()
        let bars = sink.outputs.compactMap { o -> BarOutput? in if case .bar(let b) = o { return b } else { return nil } }
        XCTAssertEqual(bars.map { $0.timeframe }, [Timeframe("5s")!, Timeframe("1m")!])
        XCTAssertEqual(bars.first?.vwap ?? 0, 30.3 / 3, accuracy: 1e-12)
        let n = sink.outputs.count
        clock.advance(to: 1000 * sec)   // stale-feed timer would be due: must not fire after end of input
        XCTAssertEqual(sink.outputs.count, n)
    }

    func testBadTickInjectedIntoRealTrades() throws {
        let dir = try dataDir().appendingPathComponent("binance-feed")
        let ref = try runReference(dir.appendingPathComponent("spot-btcusdt_20240808.gz"), timeframes: "5s")
        defer { try? FileManager.default.removeItem(at: ref) }
        let syms = SymbolTable(); let s = syms.intern("X")
        var trades = try loadTrades(ref.appendingPathComponent("trades.csv"), s)
        var cfg = PipelineConfig(); cfg.timeframes = [Timeframe("5s")!]; cfg.allowedLateness = 120 * sec
        let (clean, _) = runGraph(trades, cfg, syms)
        XCTAssertFalse(clean.outputs.contains { if case .anomaly(let a) = $0, a.rule == "bad_tick" { return true } else { return false } })
        var bad = trades[5000]; bad.price *= 1.2
        trades.insert(bad, at: 5001)
        let (dirty, g) = runGraph(trades, cfg, syms)
        XCTAssertEqual(g.counters.badTicks, 1)
        let b1 = clean.outputs.filter { if case .bar = $0 { return true } else { return false } }
        let b2 = dirty.outputs.filter { if case .bar = $0 { return true } else { return false } }
        XCTAssertEqual(b1, b2)   // the bad tick is kept out of the bars
    }

    func testDeterminism() throws {
        let syms = SymbolTable(); let s = syms.intern("A")
        var evs: [MarketEvent] = []
        var p = 100.0
        for i in 0..<20000 { p *= 1 + 0.001 * sin(Double(i) * 0.37); evs.append(.trade(eventTime: Int64(i) * 37_000_000, receiveTime: Int64(i) * 37_000_000, symbol: s, price: p, size: 1 + Double(i % 7))) }
        var cfg = PipelineConfig(); cfg.timeframes = [Timeframe("5s")!, Timeframe("1m")!]
        let a = runGraph(evs, cfg, syms).0.outputs.map { $0.canonicalLine(symbols: syms) }
        let b = runGraph(evs, cfg, syms).0.outputs.map { $0.canonicalLine(symbols: syms) }
        XCTAssertEqual(a, b); XCTAssertGreaterThan(a.count, 100)
    }
}

final class PipelineConfigReferenceTests: XCTestCase {
    func testDefaultsFileAndErrors() throws {
        let y = try String(contentsOf: packageRoot().appendingPathComponent("config/pipeline.yaml"), encoding: .utf8)
        let c = try PipelineConfig.load(yaml: y, source: "config/pipeline.yaml")
        XCTAssertEqual(c, PipelineConfig())
        XCTAssertThrowsError(try PipelineConfig.load(yaml: "indicators: {rsi: x}", source: "config/pipeline.yaml")) { e in
            XCTAssertEqual("\(e)", "config/pipeline.yaml: indicators.rsi: expected a positive integer, got \"x\"")
        }
        XCTAssertThrowsError(try PipelineConfig.load(yaml: "anomalies: {bad_tick: {foo: 1}}", source: "s.yaml")) { e in
            XCTAssertTrue("\(e)".hasPrefix("s.yaml: anomalies.bad_tick.foo"), "\(e)")
        }
        // The spike rules must name configured timeframes (config validation refuses 1m here).
        let overrides = "timeframes: [5s, 15s]\nallowed_lateness: 500ms\n"
            + "anomalies: {price_spike: {timeframe: 5s}, volume_spike: {timeframe: 15s}}"
        let m = try c.merged(overrides: overrides, source: "scn")
        XCTAssertEqual(m.timeframes, [Timeframe(seconds: 5), Timeframe(seconds: 15)])
        XCTAssertEqual(m.allowedLateness, 500_000_000); XCTAssertEqual(m.rsiPeriod, 14)
        XCTAssertNotEqual(m.canonicalText, c.canonicalText)
    }
}

final class GraphSpikeTests: XCTestCase {
    private func realTrades() throws -> (SymbolTable, [MarketEvent]) {
        let dir = try dataDir().appendingPathComponent("binance-feed")
        let ref = try runReference(dir.appendingPathComponent("usdm-btcusdt_20240808.gz"), timeframes: "5s")
        defer { try? FileManager.default.removeItem(at: ref) }
        let syms = SymbolTable(); let s = syms.intern("X")
        return (syms, try loadTrades(ref.appendingPathComponent("trades.csv"), s))
    }
    private func anomalies(_ o: [GraphOutput], _ rule: String) -> [AnomalyOutput] {
        o.compactMap { if case .anomaly(let a) = $0, a.rule == rule { return a } else { return nil } }
    }

    func testPriceAndVolumeSpikes() throws {
        let (syms, trades) = try realTrades()
        var cfg = PipelineConfig(); cfg.timeframes = [Timeframe("5s")!]; cfg.allowedLateness = 120 * TimeUtil.nsPerSecond
        cfg.priceSpike.timeframe = Timeframe("5s")!; cfg.volumeSpike.timeframe = Timeframe("5s")!
        cfg.priceSpike.z = 50; cfg.volumeSpike.k = 1000   // real stretch, thresholds no real bar reaches
        XCTAssertTrue(anomalies(runGraph(trades, cfg, syms).0.outputs, "price_spike").isEmpty)
        XCTAssertTrue(anomalies(runGraph(trades, cfg, syms).0.outputs, "volume_spike").isEmpty)
        // Inject a +3% trade and a 10000-lot trade in one late 5s window (both then stay in the bars).
        var t = trades; cfg.badTick.enabled = false
        var i = t.count * 3 / 4   // the last trade of a 5s window, so the spike is the bar's close
        while t[i].eventTime / 5_000_000_000 == t[i + 1].eventTime / 5_000_000_000 { i += 1 }
        var spike = t[i]; spike.price *= 1.03; spike.size = 1_000_000
        t.insert(spike, at: i + 1)
        let out = runGraph(t, cfg, syms).0.outputs
        let ps = anomalies(out, "price_spike"), vs = anomalies(out, "volume_spike")
        XCTAssertEqual(ps.count, 1); XCTAssertGreaterThan(ps.first?.value ?? 0, 50)
        XCTAssertEqual(vs.count, 1); XCTAssertGreaterThan(vs.first?.value ?? 0, 1_000_000)
    }
}
