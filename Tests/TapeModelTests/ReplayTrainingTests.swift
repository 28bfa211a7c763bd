import XCTest
import Foundation
import TapeCore
import TapeGraph
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources
import TapeModel

/// The same pipeline through the real replay driver and Graph (bars + indicators from the graph itself).
final class ReplayTrainingTests: XCTestCase {
    func testTrainAndInferThroughRealReplay() throws {
        let bars = try Support.requireBTC().path
        let collector = TrainingCollector()
        var o = ReplayOptions(inputs: [bars])
        o.symbol = "BTC-PERP"
        o.outDir = Support.tempDir("replay-train").path
        o.hashInputs = false
        o.extraSinks = [collector]
        _ = try runReplay(o)
        XCTAssertGreaterThan(collector.rows.count, 44_000)
        XCTAssertLessThanOrEqual(collector.rows.count, 45_031)

        let ds = collector.dataset()
        let dir = Support.tempDir("replay-model")
        let s = try TrainingRun.run(dataset: ds, config: TrainingConfig(), outDir: dir.path)
        print("REPLAY real graph walk-forward:\n" + s.evaluation.csv)
        let m = s.evaluation.overall.metrics
        for v in [m.rmse, m.rmseBaseline, m.mae, m.maeBaseline, m.directionalAccuracy, m.ic, m.cumReturn] { XCTAssertTrue(v.isFinite) }

        // Replay again with the model in the graph: one prediction per 1m bar close, equal to the batch prediction.
        let collect = CollectingSink()
        var o2 = ReplayOptions(inputs: [bars])
        o2.symbol = "BTC-PERP"
        o2.outDir = Support.tempDir("replay-infer").path
        o2.hashInputs = false
        o2.engine.extraNodes = [try InferenceNode(modelPath: s.modelPath)]
        o2.extraSinks = [collect]
        _ = try runReplay(o2)
        let preds: [PredictionOutput] = collect.outputs.compactMap { if case .prediction(let p) = $0 { return p }; return nil }
        XCTAssertEqual(preds.count, ds.count)
        let batch = try ModelTrainer.predict(Booster.load(path: s.modelPath), rows: ds.rows)
        for i in 0..<min(preds.count, ds.count) {
            XCTAssertEqual(preds[i].end, ds.rows[i].end)
            XCTAssertEqual(preds[i].prediction, batch[i])
        }
        let csv = try String(contentsOfFile: o2.outDir! + "/predictions.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, preds.count + 1)
    }
}
