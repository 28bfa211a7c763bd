import XCTest
import TapeCore
import TapeGraph
import TapeModel

final class FeatureTests: XCTestCase {
    func testFeatureNamesFixed() {
        XCTAssertEqual(FeatureBuilder.featureNames, ["ret_1", "ret_2", "ret_3", "ret_5", "ret_10", "bb_pos", "rsi", "macd_hist",
                                                     "sma_dev", "ema_dev", "log_vol_ratio", "range", "tod_sin", "tod_cos"])
    }

    /// Features of real BTC 1m bars (TA-Lib indicators) against an independent numpy computation.
    func testFeaturesMatchNumpyOnRealBars() throws {
        let ref = try Support.reference(maxRows: 5000)
        let fb = FeatureBuilder()
        var rows: [FeatureRow] = []
        for o in ref.outputs { if let r = fb.consume(o) { rows.append(r) } }
        XCTAssertEqual(rows.count, ref.expected.count)
        var compared = 0
        for (i, r) in rows.enumerated() {
            XCTAssertEqual(r.end, ref.ends[i])
            for j in 0..<FeatureBuilder.featureCount {
                let ok = Support.close(r.values[j], ref.expected[i][j], rel: 1e-9, abs: 1e-15)
                if !ok { XCTFail("row \(i) \(FeatureBuilder.featureNames[j]): \(r.values[j]) vs \(ref.expected[i][j])"); return }
                if !r.values[j].isNaN { compared += 1 }
            }
        }
        XCTAssertGreaterThan(compared, 5000 * 13)
        // NaN while undefined: the first row has no returns, no indicators, no volume ratio.
        XCTAssertTrue(rows[0].values[0].isNaN && rows[0].values[6].isNaN && rows[0].values[10].isNaN)
        XCTAssertFalse(rows[0].values[11].isNaN)
    }

    /// No look-ahead: altering every output after bar t leaves the rows up to t unchanged.
    func testNoLookAhead() {
        let outs = ModelBench.syntheticOutputs(bars: 300)
        func rows(_ o: [GraphOutput]) -> [FeatureRow] {
            let fb = FeatureBuilder()
            return o.compactMap { fb.consume($0) }
        }
        let base = rows(outs)
        for tBar in [0, 15, 25, 100, 250] {
            var altered = outs
            for k in (2 * (tBar + 1))..<altered.count {
                switch altered[k] {
                case .bar(var b): b.close *= 1.37; b.high *= 1.5; b.low *= 0.5; b.volume *= 9; altered[k] = .bar(b)
                case .indicators(var i): i.rsi = 3; i.sma *= 2; i.ema *= 0.5; i.macdHist = 42; i.bbUpper *= 3; altered[k] = .indicators(i)
                default: break
                }
            }
            let alt = rows(altered)
            XCTAssertEqual(alt.count, base.count)
            for i in 0...tBar { XCTAssertTrue(alt[i].bitwiseEqual(base[i]), "row \(i) changed when bars after \(tBar) changed") }
            XCTAssertFalse(alt[tBar + 1].bitwiseEqual(base[tBar + 1]))
        }
    }

    func testRowOnlyWhenIndicatorsFollowBarAndTimeframeFilter() {
        let tf1 = Timeframe(seconds: 60), tf5 = Timeframe(seconds: 300)
        let fb = FeatureBuilder(timeframes: [tf1])
        let b5 = BarOutput(symbol: 1, timeframe: tf5, start: 0, end: 300_000_000_000, open: 1, high: 1, low: 1, close: 1, volume: 1, vwap: 1, trades: 1)
        XCTAssertNil(fb.consume(.bar(b5)))
        XCTAssertNil(fb.consume(.indicators(IndicatorOutput(symbol: 1, timeframe: tf5, end: b5.end))))
        let b1 = BarOutput(symbol: 1, timeframe: tf1, start: 0, end: 60_000_000_000, open: 1, high: 2, low: 1, close: 2, volume: .nan, vwap: .nan, trades: 1)
        XCTAssertNil(fb.consume(.bar(b1)))
        XCTAssertNil(fb.consume(.indicators(IndicatorOutput(symbol: 1, timeframe: tf1, end: 0))))  // wrong bar
        let r = fb.consume(.indicators(IndicatorOutput(symbol: 1, timeframe: tf1, end: b1.end)))
        XCTAssertNotNil(r)
        XCTAssertEqual(r?.values[11], 0.5)               // (2-1)/2
        XCTAssertTrue(r!.values[10].isNaN)                // no volume
        XCTAssertEqual(r!.values[12], sin(2 * Double.pi / 1440), accuracy: 1e-15)  // 00:01 UTC
        XCTAssertNil(fb.consume(.indicators(IndicatorOutput(symbol: 1, timeframe: tf1, end: b1.end))))  // once only
    }
}
