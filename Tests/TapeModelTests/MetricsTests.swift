import XCTest
import Foundation
import TapeModel

final class MetricsTests: XCTestCase {
    /// Deterministic pseudo-random data with ties and zeros (the cases where definitions matter).
    func sample(_ n: Int, seed: UInt64) -> ([Double], [Double]) {
        var s = seed
        func u() -> Double { s = s &* 6364136223846793005 &+ 1442695040888963407; return Double(s >> 11) / Double(1 << 53) }
        var p: [Double] = [], y: [Double] = []
        for _ in 0..<n {
            let yy = (u() - 0.5) * 0.01
            y.append(u() < 0.15 ? 0 : (yy * 1e4).rounded() / 1e4)       // zeros and ties
            let pp = 0.3 * yy + (u() - 0.5) * 0.004
            p.append(u() < 0.05 ? 0 : (pp * 1e5).rounded() / 1e5)
        }
        return (p, y)
    }

    func testMetricsAgainstNumpyScipy() throws {
        for (n, seed, cost, h) in [(500, UInt64(1), 0.0005, 1), (2000, UInt64(2), 0.001, 3), (37, UInt64(3), 0.0, 1)] {
            let (p, y) = sample(n, seed: seed)
            let dir = Support.tempDir("metrics\(seed)")
            let csv = dir.appendingPathComponent("py.csv").path
            var text = "p,y\n"
            for i in p.indices { text += "\(p[i]),\(y[i])\n" }
            try text.write(toFile: csv, atomically: true, encoding: .utf8)
            let out = try Support.python("model_metrics_ref.py", [csv, "\(cost)", "\(h)"])
            let ref = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Double]
            let m = EvalMetrics(predictions: p, targets: y, costPerTrade: cost, horizon: h)
            let pairs: [(String, Double)] = [("rmse", m.rmse), ("rmse_baseline", m.rmseBaseline), ("mae", m.mae),
                                             ("mae_baseline", m.maeBaseline), ("directional_accuracy", m.directionalAccuracy),
                                             ("ic", m.ic), ("cum_return", m.cumReturn), ("cum_return_after_cost", m.cumReturnAfterCost)]
            for (k, v) in pairs {
                XCTAssertTrue(Support.close(v, ref[k]!, rel: 1e-10, abs: 1e-14), "\(k): \(v) vs scipy \(ref[k]!) (n=\(n))")
            }
        }
    }

    func testHandValues() {
        // ranks with ties: [10, 20, 20, 30] -> [1, 2.5, 2.5, 4]
        XCTAssertEqual(Metrics.averageRanks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
        // positions +1, +1, -1, 0: turnover 1 + 0 + 2 + 1 = 4; gross 0.01 - 0.02 + 0.03*(-1)... 
        let p = [0.5, 0.2, -0.1, 0], y = [0.01, -0.02, 0.03, 0.05]
        let (g, n) = Metrics.strategyReturns(p, y, costPerTrade: 0.001)
        XCTAssertEqual(g, 0.01 - 0.02 - 0.03, accuracy: 1e-15)
        XCTAssertEqual(n, g - 0.004, accuracy: 1e-15)
        XCTAssertEqual(Metrics.directionalAccuracy(p, y), 0.25)  // only row 0 right; p=0 counts as wrong
    }
}
