import TapeCore
import TapeGraph
import Foundation

/// `<model>.meta.json`: what the model expects and how it was made. Meta path for `x/model.json` is
/// `x/model.meta.json`.
public struct ModelMeta: Sendable, Equatable {
    public var featureNames: [String]
    public var target: TargetSpec
    public init(featureNames: [String], target: TargetSpec) { self.featureNames = featureNames; self.target = target }

    public static func metaPath(forModel path: String) -> String {
        (path.hasSuffix(".json") ? String(path.dropLast(5)) : path) + ".meta.json"
    }

    public static func load(path: String) throws -> ModelMeta {
        guard let d = FileManager.default.contents(atPath: path),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw ModelError("cannot read model meta \(path)")
        }
        guard let names = o["feature_names"] as? [String], let t = o["target"] as? [String: Any],
              let tfs = t["timeframe"] as? String, let tf = Timeframe(tfs), let h = t["horizon_bars"] as? Int, h >= 1 else {
            throw ModelError("model meta \(path): missing feature_names or target {timeframe, horizon_bars}")
        }
        return ModelMeta(featureNames: names, target: TargetSpec(timeframe: tf, horizon: h))
    }
}

/// Everything `tape train` configures.
public struct TrainingConfig: Sendable {
    public var params = ModelParams()
    public var walkForward = WalkForwardConfig()
    /// Digests of the inputs (e.g. recording file → sha256), copied into the meta file.
    public var inputDigests: [String: String] = [:]
    /// Model file name inside the output folder.
    public var modelFileName = "model.json"
    /// Symbol names by `SymbolID` (the run's symbol table, e.g. `ReplaySummary.inputSymbols`), for
    /// `oos_predictions.csv`; an id without a name is written as its number.
    public var symbolNames: [String] = []
    public init() {}

    /// FNV-1a 64 of the canonical text of params, walk-forward settings, target and feature names.
    public func configHash(target: TargetSpec) -> String {
        var h = FNV64()
        for (k, v) in params.xgboostParams { h.add("\(k)=\(v)\n") }
        h.add("rounds=\(params.rounds)\nbase_score=\(params.baseScore.map(Numbers.format) ?? "mean")\n")
        h.add("folds=\(walkForward.folds)\ntrain_span=\(walkForward.trainSpan.map { String($0) } ?? "expanding")\n")
        h.add("test_span=\(walkForward.testSpan.map { String($0) } ?? "auto")\ncost=\(Numbers.format(walkForward.costPerTrade))\n")
        h.add("target=\(target.timeframe):\(target.horizon)\nfeatures=\(FeatureBuilder.featureNames.joined(separator: ","))\n")
        return h.hex
    }
}

/// What `TrainingRun.run` produced (the lead copies it into `summary.json`).
public struct TrainingSummary: Sendable {
    public var modelPath: String
    public var metaPath: String
    public var evaluationPath: String
    public var outOfSamplePath: String
    public var importancePath: String
    public var rows: Int
    public var labelledRows: Int
    public var configHash: String
    public var datasetDigest: String
    public var evaluation: WalkForwardResult
    /// In-sample metrics of the final model (trained on all labelled rows).
    public var inSample: EvalMetrics

    public var json: JSONValue {
        .object([
            ("model", .string(modelPath)), ("rows", .int(Int64(rows))), ("labelled_rows", .int(Int64(labelledRows))),
            ("config_hash", .string(configHash)), ("dataset_digest", .string(datasetDigest)),
            ("walk_forward_overall", TrainingRun.metricsJSON(evaluation.overall.metrics)),
            ("folds", .int(Int64(evaluation.folds.count))),
        ])
    }
}

public enum TrainingRun {
    static func metricsJSON(_ m: EvalMetrics) -> JSONValue {
        .object([("n", .int(Int64(m.n))), ("rmse", .number(m.rmse)), ("rmse_baseline", .number(m.rmseBaseline)),
                 ("mae", .number(m.mae)), ("mae_baseline", .number(m.maeBaseline)),
                 ("directional_accuracy", .number(m.directionalAccuracy)), ("ic", .number(m.ic)),
                 ("cum_return", .number(m.cumReturn)), ("cum_return_after_cost", .number(m.cumReturnAfterCost))])
    }

    public static let outOfSampleFileName = "oos_predictions.csv"
    public static let outOfSampleHeader = "symbol,end_ns,fold,prediction,target"
    public static let importanceFileName = "feature_importance.csv"
    public static let importanceHeader = "feature,gain,weight,cover"

    /// `oos_predictions.csv`: every test row of the walk-forward (fold by fold, in dataset order).
    static func outOfSampleCSV(_ result: WalkForwardResult, dataset: Dataset, symbolNames: [String]) -> String {
        var lines = [outOfSampleHeader]
        lines.reserveCapacity(result.outOfSample.count + 1)
        for p in result.outOfSample {
            let row = dataset.rows[p.row]
            let id = Int(row.symbol)
            let symbol = id < symbolNames.count ? symbolNames[id] : String(id)
            lines.append("\(CSV.field(symbol)),\(row.end),\(p.fold),\(Numbers.format(p.prediction)),\(Numbers.format(p.target))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `feature_importance.csv`: one row per model feature in `FeatureBuilder.featureNames` order with
    /// XGBoost's mean gain, split count (weight) and mean cover; 0 for a feature never split on.
    static func importanceCSV(_ booster: Booster) throws -> String {
        let gain = try booster.featureScores("gain"), weight = try booster.featureScores("weight")
        let cover = try booster.featureScores("cover")
        let unknown = Set(weight.keys).subtracting(FeatureBuilder.featureNames)
        precondition(unknown.isEmpty, "model splits on features Tape does not build: \(unknown.sorted())")
        var lines = [importanceHeader]
        for name in FeatureBuilder.featureNames {
            let f = Numbers.format
            lines.append("\(name),\(f(gain[name] ?? 0)),\(f(weight[name] ?? 0)),\(f(cover[name] ?? 0))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Evaluates walk-forward, trains the final model on every labelled row, and writes
    /// `<outDir>/model.json`, `<outDir>/model.meta.json`, `<outDir>/evaluation.csv`,
    /// `<outDir>/oos_predictions.csv` and `<outDir>/feature_importance.csv`.
    /// Deterministic: the same dataset and config give byte-identical files.
    public static func run(dataset: Dataset, config: TrainingConfig = TrainingConfig(), outDir: String) throws -> TrainingSummary {
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let eval = try WalkForward.evaluate(dataset, params: config.params, config: config.walkForward)
        let lab = dataset.labelled
        let booster = try ModelTrainer.train(rows: dataset.rows, targets: dataset.targets, params: config.params)
        let pIn = try ModelTrainer.predict(booster, rows: dataset.rows, lab)
        let inSample = EvalMetrics(predictions: pIn, targets: lab.map { dataset.targets[$0] },
                                   costPerTrade: config.walkForward.costPerTrade, horizon: dataset.target.horizon)
        let modelPath = (outDir as NSString).appendingPathComponent(config.modelFileName)
        let metaPath = ModelMeta.metaPath(forModel: modelPath)
        let evalPath = (outDir as NSString).appendingPathComponent("evaluation.csv")
        try booster.save(to: modelPath)
        try Data(eval.csv.utf8).write(to: URL(fileURLWithPath: evalPath))
        let outOfSamplePath = (outDir as NSString).appendingPathComponent(outOfSampleFileName)
        try Data(outOfSampleCSV(eval, dataset: dataset, symbolNames: config.symbolNames).utf8)
            .write(to: URL(fileURLWithPath: outOfSamplePath))
        let importancePath = (outDir as NSString).appendingPathComponent(importanceFileName)
        try Data(importanceCSV(booster).utf8).write(to: URL(fileURLWithPath: importancePath))

        let hash = config.configHash(target: dataset.target)
        let digest = dataset.digest
        var digests: [(String, JSONValue)] = [("dataset", .string(digest))]
        for k in config.inputDigests.keys.sorted() { digests.append((k, .string(config.inputDigests[k]!))) }
        var params: [(String, JSONValue)] = config.params.xgboostParams.map { ($0.0, .string($0.1)) }
        params.append(("base_score", .string(Numbers.format(ModelTrainer.resolvedBaseScore(config.params, lab.map { dataset.targets[$0] })))))
        params.append(("rounds", .int(Int64(config.params.rounds))))
        let wf = config.walkForward
        let meta: JSONValue = .object([
            ("format", .string("tape-model-meta/1")),
            ("model_file", .string(config.modelFileName)),
            ("xgboost_version", .string(xgboostVersion())),
            ("feature_names", .array(FeatureBuilder.featureNames.map { .string($0) })),
            ("target", .object([("kind", .string("forward_log_return")), ("timeframe", .string(dataset.target.timeframe.description)),
                                ("horizon_bars", .int(Int64(dataset.target.horizon)))])),
            ("timeframe", .string(dataset.target.timeframe.description)),
            ("config_hash", .string(hash)),
            ("input_digests", .object(digests)),
            ("training_params", .object(params)),
            ("walk_forward", .object([("folds", .int(Int64(wf.folds))),
                                      ("train_span_ns", wf.trainSpan.map { .int($0) } ?? .string("expanding")),
                                      ("test_span_ns", wf.testSpan.map { .int($0) } ?? .string("auto")),
                                      ("cost_per_trade", .number(wf.costPerTrade))])),
            ("rows", .int(Int64(dataset.count))), ("labelled_rows", .int(Int64(lab.count))),
            ("metrics", .object([("walk_forward_overall", metricsJSON(eval.overall.metrics)),
                                 ("in_sample", metricsJSON(inSample))])),
        ])
        try Data((meta.render() + "\n").utf8).write(to: URL(fileURLWithPath: metaPath))
        return TrainingSummary(modelPath: modelPath, metaPath: metaPath, evaluationPath: evalPath,
                               outOfSamplePath: outOfSamplePath, importancePath: importancePath, rows: dataset.count,
                               labelledRows: lab.count, configHash: hash, datasetDigest: digest,
                               evaluation: eval, inSample: inSample)
    }

    /// Trains from the graph outputs of a replay (e.g. a `CollectingSink`'s), for callers that do not
    /// use `TrainingCollector` directly.
    public static func run(outputs: [GraphOutput], target: TargetSpec = TargetSpec(), config: TrainingConfig = TrainingConfig(),
                           outDir: String) throws -> TrainingSummary {
        let c = TrainingCollector(target: target)
        for o in outputs { c.emit(o) }
        return try run(dataset: c.dataset(), config: config, outDir: outDir)
    }
}
