import XCTest
import Foundation
import TapeCore
import TapeGraph
import TapeModel

/// `model/oos_predictions.csv` and `model/feature_importance.csv` against Python's xgboost 3.x
/// (`scripts/model_oos_ref.py`): the same fold rows with the same params give the same predictions,
/// and the saved model's `get_score` gives the same importance.
final class OutOfSampleTests: XCTestCase {
    struct Table {
        var header: [String]
        var rows: [[String]]
        func column(_ name: String) throws -> Int { try XCTUnwrap(header.firstIndex(of: name), "no column \(name)") }
    }

    func table(_ path: String) throws -> Table {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let split = { (line: String) in line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return Table(header: split(lines[0]), rows: lines.dropFirst().map(split))
    }

    func trainedRun(_ name: String) throws -> (Dataset, TrainingConfig, TrainingSummary, URL) {
        let collector = TrainingCollector()
        for output in ModelBench.syntheticOutputs(bars: 3000, seed: 5) { collector.emit(output) }
        let dataset = collector.dataset()
        var config = TrainingConfig()
        config.params.rounds = 30
        config.walkForward.folds = 3
        config.symbolNames = ["", "BTCUSDT"]
        let directory = Support.tempDir(name)
        let summary = try TrainingRun.run(dataset: dataset, config: config, outDir: directory.path)
        return (dataset, config, summary, directory)
    }

    func testOutOfSamplePredictionsEqualPythonXGBoostOnTheSameFolds() throws {
        let (dataset, config, summary, directory) = try trainedRun("oos")
        let tape = try table(summary.outOfSamplePath)
        XCTAssertEqual(tape.header, ["symbol", "end_ns", "fold", "prediction", "target"])
        XCTAssertEqual(tape.rows.count, summary.evaluation.overall.nTest, "every test-fold row, once")
        let symbol = try tape.column("symbol"), end = try tape.column("end_ns"), fold = try tape.column("fold")
        let prediction = try tape.column("prediction"), target = try tape.column("target")
        // Each row sits in its fold's test window and carries the dataset's target for that bar.
        let targetByEnd = Dictionary(uniqueKeysWithValues: dataset.rows.indices.map { (dataset.rows[$0].end, dataset.targets[$0]) })
        for row in tape.rows {
            let window = summary.evaluation.folds[Int(row[fold])!]
            let time = Int64(row[end])!
            XCTAssertTrue(time >= window.testStart && time < window.testEnd, "row \(row) outside fold \(row[fold])")
            XCTAssertEqual(Double(row[target])!, targetByEnd[time]!)
            XCTAssertEqual(row[symbol], "BTCUSDT")
        }
        // The fold predictions are those the evaluation's metrics were computed from.
        let predictions = tape.rows.map { Double($0[prediction])! }, targets = tape.rows.map { Double($0[target])! }
        let metrics = EvalMetrics(predictions: predictions, targets: targets, costPerTrade: config.walkForward.costPerTrade)
        XCTAssertEqual(metrics, summary.evaluation.overall.metrics)

        // Python: the same rows, its own fold selection from the documented rule, the same params.
        var data = "symbol,end_ns,target_end_ns," + FeatureBuilder.featureNames.joined(separator: ",") + ",target\n"
        for (index, row) in dataset.rows.enumerated() {
            let values = row.values.map { $0.isNaN ? "" : "\($0)" }.joined(separator: ",")
            let label = dataset.targets[index]
            data += "BTCUSDT,\(row.end),\(dataset.targetEnds[index]),\(values),\(label.isNaN ? "" : "\(label)")\n"
        }
        let dataPath = directory.appendingPathComponent("data.csv").path
        try data.write(toFile: dataPath, atomically: true, encoding: .utf8)
        var params: [(String, JSONValue)] = config.params.xgboostParams.map { ($0.0, .string($0.1)) }
        params.append(("rounds", .int(Int64(config.params.rounds))))
        let paramsPath = directory.appendingPathComponent("params.json").path
        try JSONValue.object(params).render().write(toFile: paramsPath, atomically: true, encoding: .utf8)
        let pythonPath = directory.appendingPathComponent("python_oos.csv").path
        _ = try Support.python("model_oos_ref.py", ["oos", dataPath, summary.evaluationPath, paramsPath, pythonPath])
        let python = try table(pythonPath)
        XCTAssertEqual(python.rows.count, tape.rows.count)
        let pythonPrediction = try python.column("prediction")
        // The two libraries (1.7.4 here, 3.x in Python) grow the same trees; the float32 sum of the leaf
        // values may round differently in the last bits, which matters only for predictions near 0. So:
        // 1e-6 relative, or within 4 float32 ulps of the largest prediction (seen: about 1e-11 apart).
        let largest = tape.rows.map { abs(Double($0[prediction])!) }.max() ?? 0
        let absolute = 4 * Double(Float(largest).ulp)
        var mismatches: [String] = []
        var exact = 0
        for (ours, theirs) in zip(tape.rows, python.rows) {
            XCTAssertEqual([ours[symbol], ours[end], ours[fold]], Array(theirs[0..<3]))
            let a = Double(ours[prediction])!, b = Double(theirs[pythonPrediction])!
            if Support.close(a, b, rel: 1e-6, abs: 1e-12) { exact += 1 }
            if !Support.close(a, b, rel: 1e-6, abs: absolute) { mismatches.append("\(ours[end]): tape \(a) python \(b)") }
        }
        print("out-of-sample vs Python: \(exact) of \(tape.rows.count) within 1e-6 relative; absolute tolerance \(absolute)")
        XCTAssertGreaterThan(Double(exact), 0.99 * Double(tape.rows.count))
        XCTAssertEqual(mismatches.count, 0, "\(mismatches.count) of \(tape.rows.count): " + mismatches.prefix(3).joined(separator: "; "))
    }

    func testFeatureImportanceEqualsPythonGetScore() throws {
        let (_, _, summary, directory) = try trainedRun("importance")
        let tape = try table(summary.importancePath)
        XCTAssertEqual(tape.header, ["feature", "gain", "weight", "cover"])
        XCTAssertEqual(tape.rows.map { $0[0] }, FeatureBuilder.featureNames, "every feature, in model order")
        XCTAssertGreaterThan(tape.rows.filter { Double($0[2])! > 0 }.count, 0, "the model splits on something")
        let pythonPath = directory.appendingPathComponent("python_importance.csv").path
        _ = try Support.python("model_oos_ref.py", ["importance", summary.modelPath, pythonPath])
        let python = try table(pythonPath)
        XCTAssertEqual(python.header, tape.header)
        XCTAssertEqual(python.rows.count, tape.rows.count)
        for (ours, theirs) in zip(tape.rows, python.rows) {
            XCTAssertEqual(ours[0], theirs[0])
            for column in 1...3 {
                let a = Double(ours[column])!, b = Double(theirs[column])!
                XCTAssertTrue(Support.close(a, b, rel: 1e-6), "\(ours[0]) \(tape.header[column]): tape \(a) python \(b)")
            }
        }
        // The weight of a feature is its number of splits: an integer.
        for row in tape.rows { XCTAssertEqual(Double(row[2])!.rounded(), Double(row[2])!) }
    }
}
