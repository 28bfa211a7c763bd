import XCTest
import Foundation
import TapeCore
import TapeGraph
import TapeModel

/// End to end on the real BTC perpetual 1-minute bars (2021-12-31 .. 2022-02-01, 45,031 bars):
/// `.bar`/`.indicators` outputs (indicators from TA-Lib via scripts/model_ref_features.py) ->
/// TrainingCollector -> TrainingRun (walk-forward + final model) -> InferenceNode.
final class EndToEndTests: XCTestCase {
    func testTrainEvaluateInferOnRealBTCBars() throws {
        let ref = try Support.reference()
        XCTAssertEqual(ref.expected.count, 45_031)
        let collector = TrainingCollector()
        for o in ref.outputs { collector.emit(o) }
        let ds = collector.dataset()
        XCTAssertEqual(ds.count, 45_031)
        XCTAssertEqual(ds.labelled.count, 45_030)

        let dir = Support.tempDir("e2e")
        var cfg = TrainingConfig()
        cfg.inputDigests = ["btc-perp-20211231-20220201_1m.csv.gz": "reference rows via scripts/model_ref_features.py"]
        let t0 = Date()
        let s = try TrainingRun.run(dataset: ds, config: cfg, outDir: dir.path)
        let secs = Date().timeIntervalSince(t0)
        let csv = try String(contentsOfFile: s.evaluationPath, encoding: .utf8)
        print("E2E real BTC 1m: \(ds.labelled.count) labelled rows, run (5 folds + final, \(cfg.params.rounds) rounds) \(String(format: "%.2f", secs)) s")
        print(csv)
        let lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.count, 1 + 5 + 1)
        let o = s.evaluation.overall.metrics
        // Sanity on real data (not a performance claim): finite metrics, sane ranges, baselines positive.
        XCTAssertEqual(o.n, s.evaluation.folds.reduce(0) { $0 + $1.nTest })
        XCTAssertGreaterThan(o.n, 35_000)
        for v in [o.rmse, o.rmseBaseline, o.mae, o.maeBaseline, o.ic, o.cumReturn, o.cumReturnAfterCost] { XCTAssertTrue(v.isFinite) }
        XCTAssertTrue((0.3...0.7).contains(o.directionalAccuracy))
        XCTAssertLessThan(o.rmse, o.rmseBaseline * 1.1)
        // Baseline RMSE is the RMS of realised 1m log returns: the same figure computed from the reference closes.
        let testRows = ds.labelled.filter { ds.rows[$0].end >= s.evaluation.overall.testStart }
        let rms = (testRows.map { ds.targets[$0] * ds.targets[$0] }.reduce(0, +) / Double(testRows.count)).squareRoot()
        XCTAssertEqual(o.rmseBaseline, rms, accuracy: 1e-15)

        // Independent check: xgboost 3.x in Python, same folds/params/purging, on numpy-built features.
        let py = try JSONSerialization.jsonObject(with: Data(try Support.python("model_walkforward_ref.py",
                    [ref.csvPath, s.evaluationPath, "\(cfg.walkForward.costPerTrade)"]).utf8)) as! [String: Double]
        print("E2E python xgboost 3.x walk-forward: \(py)")
        XCTAssertEqual(Int(py["n"]!), o.n)
        XCTAssertEqual(py["rmse"]!, o.rmse, accuracy: o.rmse * 1e-4)
        XCTAssertEqual(py["mae"]!, o.mae, accuracy: o.mae * 1e-4)
        XCTAssertEqual(py["directional_accuracy"]!, o.directionalAccuracy, accuracy: 2e-3)
        XCTAssertEqual(py["ic"]!, o.ic, accuracy: 5e-3)

        // The saved model in a graph node: one prediction per 1m bar, equal to the batch prediction.
        let node = try InferenceNode(modelPath: s.modelPath)
        var preds: [Double] = []
        let t1 = Date()
        for out in ref.outputs { node.process(out) { if case .prediction(let p) = $0 { preds.append(p.prediction) } } }
        let perBar = Date().timeIntervalSince(t1) / Double(ds.count) * 1e9
        print("E2E inference: \(preds.count) bars, \(String(format: "%.0f", perBar)) ns/bar (features + Swift tree evaluator, 200 trees)")
        XCTAssertEqual(preds.count, ds.count)
        let batch = try ModelTrainer.predict(node.booster, rows: ds.rows)
        XCTAssertEqual(preds, batch)
        // Steady-state cost of the hot path (second pass, fresh node state, model already loaded).
        let node2 = try InferenceNode(booster: node.booster, meta: node.meta)
        var n2 = 0
        let t2 = Date()
        for out in ref.outputs { node2.process(out) { _ in n2 += 1 } }
        let perBar2 = Date().timeIntervalSince(t2) / Double(n2) * 1e9
        print("E2E inference (2nd pass): \(n2) bars, \(String(format: "%.0f", perBar2)) ns/bar; trees: \(node.ensemble!.numTrees)")
    }
}
