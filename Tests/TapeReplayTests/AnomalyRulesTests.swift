import Foundation
import XCTest
import TapeCore
import TapeGraph
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources

/// The four anomaly rules on real data: where they fire and where they must not, checked against an
/// independent recomputation from the bars the run wrote (or from the known damage).
final class AnomalyRulesTests: XCTestCase {
    func run(_ inputs: [String], _ edit: (inout PipelineConfig) -> Void = { _ in }) throws -> (ReplaySummary, [[String]], [[String]]) {
        var o = ReplayOptions(inputs: inputs)
        edit(&o.engine.config)
        o.outDir = Paths.tempDir("anom")
        o.messagePrinter = { _ in }
        let s = try runReplay(o)
        func rows(_ f: String) throws -> [[String]] {
            try String(contentsOfFile: s.runDir + "/" + f, encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }
        return (s, try rows("bars.csv"), try rows("anomalies.csv"))
    }

    func testPriceAndVolumeSpikesFireExactlyWhereAnIndependentRecomputationSays() throws {
        let file = try Paths.barFiles().first { $0.contains("btc-perp") }!
        let (_, bars, anomalies) = try run([file])
        let oneMinute = bars.filter { $0[1] == "1m" }
        let closes = oneMinute.map { Double($0[7])! }, volumes = oneMinute.map { Double($0[8])! }, ends = oneMinute.map { $0[3] }
        var expectPrice: [String] = [], expectVolume: [String] = []
        var rets: [Double] = []
        for i in 1..<closes.count {
            let r = log(closes[i] / closes[i - 1])
            if rets.count >= 20 {
                let w = rets.suffix(20), m = w.reduce(0, +) / 20
                let sd = (w.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 19).squareRoot()
                if sd > 0 && abs((r - m) / sd) > 4 { expectPrice.append(ends[i]) }
            }
            rets.append(r)
        }
        for i in 20..<volumes.count {
            let w = volumes[(i - 20)..<i].sorted(), med = (w[9] + w[10]) / 2
            if med > 0 && volumes[i] > 5 * med { expectVolume.append(ends[i]) }
        }
        let gotPrice = anomalies.filter { $0[2] == "price_spike" }.map { $0[1] }
        let gotVolume = anomalies.filter { $0[2] == "volume_spike" }.map { $0[1] }
        XCTAssertGreaterThan(expectPrice.count, 10)
        XCTAssertEqual(gotPrice, expectPrice)
        XCTAssertGreaterThan(expectVolume.count, 10)
        XCTAssertEqual(gotVolume, expectVolume)
        // A quiet stretch: the first three hours of the file have no |z| > 4 bar.
        let quietEnd = Int64(ends[180])!
        XCTAssertTrue(gotPrice.allSatisfy { Int64($0)! > quietEnd } || expectPrice.contains { Int64($0)! <= quietEnd })
        XCTAssertTrue(anomalies.allSatisfy { $0[2] != "stale_feed" && $0[2] != "bad_tick" }, "continuous 1m bars: no stale feed, bars have no ticks")
    }

    func testBadTickFiresOnAnInjectedPriceAndBarsStayAsWithoutIt() throws {
        let src = try Paths.captures().first { $0.hasSuffix("spot-ethusdt_20240808.gz") }!
        let dir = Paths.tempDir("badtick")
        let damaged = dir + "/spot-ethusdt_20240808.gz"
        // Multiply the price of the 1000th trade by 1.2 (a fat-finger print) in a copy of the capture.
        let py = """
        import gzip,re,sys
        n=0; out=[]
        for line in gzip.open(sys.argv[1],'rt'):
            if '@trade' in line:
                n+=1
                if n==1000:
                    m=re.search(r'"p":"([0-9.]+)"',line); p=float(m.group(1))
                    line=line.replace(m.group(0),'"p":"%.2f"'%(p*1.2)); print(p*1.2)
            out.append(line)
        gzip.open(sys.argv[2],'wt').write(''.join(out))
        """
        let (rc, out, err) = try sh("python3 -c '\(py.replacingOccurrences(of: "'", with: "'\\''"))' '\(src)' '\(damaged)'")
        XCTAssertEqual(rc, 0, err)
        let (_, cleanBars, cleanAnoms) = try run([src])
        let (s, bars, anoms) = try run([damaged])
        XCTAssertEqual(cleanAnoms.filter { $0[2] == "bad_tick" }.count, 0, "real feed: no bad tick")
        let bad = anoms.filter { $0[2] == "bad_tick" }
        XCTAssertEqual(bad.count, 1)
        XCTAssertEqual(Double(bad[0][3])!, 20, accuracy: 0.05)
        XCTAssertEqual(s.ticksRejected, 0)
        // The bad print is kept out of the bars: OHLC equal the clean run's; the trade count one less in one bar.
        XCTAssertEqual(bars.count, cleanBars.count)
        for (a, b) in zip(bars, cleanBars) { XCTAssertEqual(Array(a[0..<8]), Array(b[0..<8])) }
        XCTAssertFalse(bars.contains { $0[5] == out.trimmingCharacters(in: .whitespacesAndNewlines) })
    }

    func testStaleFeedFiresWhenOneFeedStopsWhileTheClockGoesOn() throws {
        let caps = try Paths.captures()
        // The COIN-M ETH feed ends at midnight; the spot ETH capture of the next file runs five more minutes.
        let cm = caps.first { $0.hasSuffix("cm-ethusd_perp_20240808.gz") }!
        let spot = caps.first { $0.hasSuffix("spot-ethusdt_20240809.gz") }!
        let (_, _, alone) = try run([cm])
        XCTAssertEqual(alone.filter { $0[2] == "stale_feed" }.count, 0, "a continuous feed is never stale")
        let (_, _, merged) = try run([cm, spot])
        let stale = merged.filter { $0[2] == "stale_feed" }
        XCTAssertEqual(stale.count, 1)
        XCTAssertEqual(stale[0][0], "cm:ETHUSD_PERP")
        // Fired by the clock timer 120 s after the feed's last message, with no further input for it.
        let (_, lastLine, _) = try sh("gzip -dc '\(cm)' | grep -v '@depth' | tail -1 | cut -d' ' -f1")  // depth is skipped, not an event
        XCTAssertEqual(Int64(stale[0][1])!, Int64(lastLine.trimmingCharacters(in: .whitespacesAndNewlines))! + 120_000_000_000)
        XCTAssertEqual(stale[0][3], "120")
    }
}
