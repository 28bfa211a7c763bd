import XCTest
import Foundation
import TapeCore
import TapeGraph
import TapeModel

final class ModelTests: XCTestCase {
    func syntheticDataset(bars: Int = 4000, seed: UInt64 = 7) -> Dataset {
        let c = TrainingCollector()
        for o in ModelBench.syntheticOutputs(bars: bars, seed: seed) { c.emit(o) }
        return c.dataset()
    }

    func smallParams(rounds: Int = 40) -> ModelParams {
        var p = ModelParams(); p.rounds = rounds; return p
    }

    func writeFeatures(_ rows: [FeatureRow], _ path: String, targets: [Double]? = nil, names: [String] = FeatureBuilder.featureNames) throws {
        var s = names.joined(separator: ",") + (targets == nil ? "" : ",target") + "\n"
        for (i, r) in rows.enumerated() {
            s += r.values.map { $0.isNaN ? "" : "\($0)" }.joined(separator: ",")
            if let t = targets { s += ",\(t[i])" }
            s += "\n"
        }
        try s.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func readPredictions(_ path: String) throws -> [Double] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { Double(String($0))! }
    }

    func testTargetsAndLabelledRows() {
        let ds = syntheticDataset(bars: 50)
        XCTAssertEqual(ds.count, 50)
        for i in 0..<49 { XCTAssertEqual(ds.targets[i], log(ds.rows[i + 1].close / ds.rows[i].close), accuracy: 1e-15) }
        XCTAssertTrue(ds.targets[49].isNaN)
        XCTAssertEqual(ds.labelled.count, 49)
        let ds3 = Dataset(rows: ds.rows, target: TargetSpec(horizon: 3))
        XCTAssertEqual(ds3.targets[10], log(ds.rows[13].close / ds.rows[10].close), accuracy: 1e-15)
        XCTAssertEqual(ds3.targetEnds[10], ds.rows[13].end)
        XCTAssertEqual(ds3.labelled.count, 47)
    }

    func testTrainingIsByteIdentical() throws {
        let ds = syntheticDataset()
        let a = Support.tempDir("detA"), b = Support.tempDir("detB")
        var cfg = TrainingConfig(); cfg.params = smallParams(); cfg.walkForward.folds = 3
        let sa = try TrainingRun.run(dataset: ds, config: cfg, outDir: a.path)
        _ = try TrainingRun.run(dataset: syntheticDataset(), config: cfg, outDir: b.path)
        for f in ["model.json", "model.meta.json", "evaluation.csv"] {
            let da = try Data(contentsOf: a.appendingPathComponent(f)), db = try Data(contentsOf: b.appendingPathComponent(f))
            XCTAssertGreaterThan(da.count, 100)
            XCTAssertEqual(da, db, "\(f) differs between two identical runs")
        }
        let csv = try String(contentsOf: a.appendingPathComponent("evaluation.csv"), encoding: .utf8).split(separator: "\n")
        // The header as docs/model.md documents evaluation.csv.
        XCTAssertEqual(String(csv[0]), "fold,train_start_ns,train_end_ns,test_start_ns,test_end_ns,n_train,n_test,rmse,"
                       + "rmse_baseline,mae,mae_baseline,directional_accuracy,ic,cum_return,cum_return_after_cost")
        XCTAssertEqual(csv.count, 5)
        XCTAssertTrue(csv[4].hasPrefix("overall,"))
        XCTAssertEqual(sa.evaluation.overall.nTest, sa.evaluation.folds.reduce(0) { $0 + $1.nTest })
        // The meta file names what the model expects.
        let meta = try ModelMeta.load(path: sa.metaPath)
        XCTAssertEqual(meta.featureNames, ["ret_1", "ret_2", "ret_3", "ret_5", "ret_10", "bb_pos", "rsi", "macd_hist",
                                           "sma_dev", "ema_dev", "log_vol_ratio", "range", "tod_sin", "tod_cos"])
        XCTAssertEqual(meta.target, TargetSpec(timeframe: Timeframe(seconds: 60), horizon: 1))
        // Different seed + subsample -> a different model (the seed is really used).
        var cfg2 = cfg; cfg2.params.seed = 43
        let c = Support.tempDir("detC")
        _ = try TrainingRun.run(dataset: ds, config: cfg2, outDir: c.path)
        XCTAssertNotEqual(try Data(contentsOf: a.appendingPathComponent("model.json")), try Data(contentsOf: c.appendingPathComponent("model.json")))
    }

    func testWalkForwardWindowsArePurgedAndOrdered() throws {
        let ds = Dataset(rows: syntheticDataset(bars: 3000).rows, target: TargetSpec(horizon: 5))
        var wf = WalkForwardConfig(folds: 4, trainSpan: 600 * 60_000_000_000)
        wf.costPerTrade = 0.0002
        let r = try WalkForward.evaluate(ds, params: smallParams(rounds: 10), config: wf)
        XCTAssertEqual(r.folds.count, 4)
        for (k, f) in r.folds.enumerated() {
            XCTAssertEqual(f.trainEnd, f.testStart)
            XCTAssertEqual(f.testStart - f.trainStart, 600 * 60_000_000_000)
            if k > 0 { XCTAssertEqual(f.testStart, r.folds[k - 1].testEnd) }
            // rows in [trainStart, testStart) minus the last 5 whose target reaches into the test window
            let inWindow = ds.labelled.filter { ds.rows[$0].end >= f.trainStart && ds.rows[$0].end < f.testStart }.count
            // purged: rows whose 5-bar target resolves after testStart (bars are 1 minute apart here)
            let purged = ds.labelled.filter { ds.rows[$0].end < f.testStart && ds.rows[$0].end + 5 * 60_000_000_000 > f.testStart }.count
            XCTAssertGreaterThanOrEqual(purged, 4)
            XCTAssertEqual(f.nTrain, inWindow - purged)
        }
    }

    /// A Tape-trained model gives the same predictions in Python's xgboost 3.x.
    func testTapeModelLoadsInPython() throws {
        let ds = syntheticDataset()
        let b = try ModelTrainer.train(rows: ds.rows, targets: ds.targets, params: smallParams())
        let dir = Support.tempDir("topy")
        let model = dir.appendingPathComponent("m.json").path, feats = dir.appendingPathComponent("f.csv").path
        let out = dir.appendingPathComponent("p.csv").path
        try b.save(to: model)
        let rows = Array(ds.rows.prefix(1500))  // includes the early rows with NaN features
        try writeFeatures(rows, feats)
        _ = try Support.python("model_py_predict.py", [model, feats, out])
        let py = try readPredictions(out)
        let tape = try ModelTrainer.predict(b, rows: rows)
        XCTAssertEqual(py.count, tape.count)
        let spread = (tape.max()! - tape.min()!)
        XCTAssertGreaterThan(spread, 0)  // not a constant model
        let ens = try TreeEnsemble(json: b.saveJSON())
        XCTAssertEqual(ens.numTrees, 40)
        for i in tape.indices {
            XCTAssertTrue(Support.close(tape[i], py[i], rel: 1e-6, abs: 1e-12), "row \(i): tape \(tape[i]) python \(py[i])")
            // the single-row inference paths too: XGBoost in-place and the Swift evaluator (bit-exact)
            XCTAssertEqual(try b.predict(row: rows[i].values), tape[i])
            XCTAssertEqual(ens.predict(row: rows[i].values), tape[i], "row \(i)")
        }
    }

    /// A model trained by Python's xgboost 3.x loads in Tape (base_score fixed) with the same predictions.
    func testPythonModelLoadsInTapeWithBaseScoreFix() throws {
        let ds = syntheticDataset(bars: 3000, seed: 11)
        let lab = ds.labelled
        let rows = lab.map { ds.rows[$0] }
        // Scaled target so 3.x's estimated base_score is far from 1.7.4's 0.5 fallback.
        let y = lab.map { ds.targets[$0] * 100 + 2 }
        let dir = Support.tempDir("frompy")
        let train = dir.appendingPathComponent("t.csv").path, model = dir.appendingPathComponent("m.json").path
        let pred = dir.appendingPathComponent("p.csv").path
        try writeFeatures(rows, train, targets: y)
        _ = try Support.python("model_py_train.py", [train, model, pred, "30"])
        let py = try readPredictions(pred)
        let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: model)))
        XCTAssertTrue(String(decoding: raw, as: UTF8.self).contains("\"base_score\":\"["), "Python 3.x no longer writes a bracketed base_score?")
        let fix = try ModelJSON.fixBaseScore(raw)
        XCTAssertTrue(fix.fixed)
        XCTAssertEqual(fix.baseScore!, y.reduce(0, +) / Double(y.count), accuracy: 1e-3)

        let fixed = try Booster.load(path: model)
        let tape = try ModelTrainer.predict(fixed, rows: rows)
        for i in tape.indices {
            XCTAssertTrue(Support.close(tape[i], py[i], rel: 1e-6, abs: 1e-9), "row \(i): tape \(tape[i]) python \(py[i])")
        }
        // The Swift evaluator reads the 3.x JSON (bracketed base_score) directly and agrees bit for bit.
        let ens = try TreeEnsemble(json: raw)
        for i in tape.indices { XCTAssertEqual(ens.predict(row: rows[i].values), tape[i], "row \(i)") }
        // Without the fix libxgboost 1.7.4 silently uses base_score 0.5: every prediction is off by (b - 0.5).
        let unfixed = try Booster.load(path: model, fixBaseScore: false)
        let bad = try ModelTrainer.predict(unfixed, rows: rows)
        if xgboostVersion().hasPrefix("1.") {
            for i in 0..<50 { XCTAssertEqual(bad[i] - py[i], 0.5 - fix.baseScore!, accuracy: 1e-3, "row \(i)") }
        }
    }

    func testInferenceNodeEmitsPredictionsAndRefusesMismatchedFeatures() throws {
        let ds = syntheticDataset()
        let dir = Support.tempDir("node")
        var cfg = TrainingConfig(); cfg.params = smallParams(); cfg.walkForward.folds = 2
        let s = try TrainingRun.run(dataset: ds, config: cfg, outDir: dir.path)
        let node = try InferenceNode(modelPath: s.modelPath)
        var preds: [PredictionOutput] = []
        let outs = ModelBench.syntheticOutputs(bars: 4000)
        for o in outs { node.process(o) { if case .prediction(let p) = $0 { preds.append(p) } } }
        XCTAssertEqual(preds.count, ds.count)
        let batch = try ModelTrainer.predict(Booster.load(path: s.modelPath), rows: ds.rows)
        for i in preds.indices {
            XCTAssertEqual(preds[i].end, ds.rows[i].end)
            XCTAssertEqual(preds[i].timeframe, Timeframe(seconds: 60))
            XCTAssertEqual(preds[i].prediction, batch[i])
        }
        XCTAssertEqual(node.errors, 0)
        XCTAssertNotNil(node.ensemble)
        // The XGBoost in-place path gives the same values.
        let node2 = try InferenceNode(modelPath: s.modelPath, useEnsemble: false)
        XCTAssertNil(node2.ensemble)
        var preds2: [Double] = []
        for o in outs { node2.process(o) { if case .prediction(let p) = $0 { preds2.append(p.prediction) } } }
        XCTAssertEqual(preds2, preds.map(\.prediction))

        var names = FeatureBuilder.featureNames
        names.removeAll { $0 == "rsi" }
        names.append("vix")
        XCTAssertThrowsError(try InferenceNode(booster: node.booster, meta: ModelMeta(featureNames: names, target: TargetSpec()))) { e in
            let m = (e as! ModelError).message
            XCTAssertTrue(m.contains("missing features") && m.contains("rsi"), m)
            XCTAssertTrue(m.contains("extra features") && m.contains("vix"), m)
        }
        XCTAssertThrowsError(try InferenceNode(booster: node.booster,
                                               meta: ModelMeta(featureNames: FeatureBuilder.featureNames.reversed(), target: TargetSpec()))) { e in
            XCTAssertTrue((e as! ModelError).message.contains("different order"))
        }
    }

    /// A model whose embedded feature names differ is refused even when its meta claims the right ones.
    func testInferenceNodeChecksFeatureNamesInsideTheModel() throws {
        let ds = syntheticDataset(bars: 500)
        let lab = ds.labelled
        let dir = Support.tempDir("names")
        let train = dir.appendingPathComponent("t.csv").path, model = dir.appendingPathComponent("m.json").path
        var names = FeatureBuilder.featureNames
        names[3] = "ret_4"
        try writeFeatures(lab.map { ds.rows[$0] }, train, targets: lab.map { ds.targets[$0] }, names: names)
        _ = try Support.python("model_py_train.py", [train, model, dir.appendingPathComponent("p.csv").path, "5"])
        let b = try Booster.load(path: model)
        XCTAssertThrowsError(try InferenceNode(booster: b, meta: ModelMeta(featureNames: FeatureBuilder.featureNames, target: TargetSpec()))) { e in
            let m = (e as! ModelError).message
            XCTAssertTrue(m.contains("missing features") && m.contains("ret_5") && m.contains("extra features") && m.contains("ret_4"), m)
        }
    }

    func testXGBoostErrorsBecomeSwiftErrors() throws {
        XCTAssertThrowsError(try Booster.load(json: Array("{\"learner\": {\"learner_model_param\": {\"base_score\": \"0.5\"}}}".utf8))) { e in
            XCTAssertTrue((e as! ModelError).message.contains("XGBoost"), "\(e)")
        }
        let d = try DMatrix(rows: [[1, 2], [3, 4]], labels: [0, 1])
        let b = try Booster(training: [d])
        try b.setParam("tree_method", "no_such_method_xyz")
        XCTAssertThrowsError(try b.updateOneIter(0, d)) { e in
            XCTAssertTrue((e as! ModelError).message.contains("no_such_method_xyz"), "\(e)")
        }
    }
}
