import TapeCore
import TapeGraph

/// Graph node: at each bar close of the model's timeframe (its `.indicators` output), builds the
/// feature row and emits `.prediction` (forward log return over the model's horizon).
/// Per bar: no allocation (features go into a fixed buffer; trees evaluated by `TreeEnsemble`, equal to
/// XGBoost's prediction bit for bit; XGBoost's in-place prediction is the fallback for other models).
public final class InferenceNode: DownstreamNode {
    public var emitsPredictions: Bool { true }
    public let booster: Booster
    /// The Swift evaluator of the same trees (nil if the model is not supported by it).
    public let ensemble: TreeEnsemble?
    public let meta: ModelMeta
    private let builder: FeatureBuilder
    private let buffer: UnsafeMutableBufferPointer<Double>
    /// Prediction errors from XGBoost (should stay 0); the node never throws into the graph.
    public private(set) var errors = 0

    /// Refuses a model whose feature list differs from `FeatureBuilder.featureNames`.
    public init(booster: Booster, meta: ModelMeta, useEnsemble: Bool = true) throws {
        try InferenceNode.checkFeatures(meta.featureNames)
        self.booster = booster
        let ens = try? TreeEnsemble(json: booster.saveJSON())
        // The model's own feature names (if it stores any) must match too.
        if let names = ens?.featureNames, !names.isEmpty { try InferenceNode.checkFeatures(names) }
        self.ensemble = useEnsemble ? ens : nil
        self.meta = meta
        self.builder = FeatureBuilder(timeframes: [meta.target.timeframe])
        self.buffer = .allocate(capacity: FeatureBuilder.featureCount)
        buffer.initialize(repeating: .nan)
    }

    /// Loads `<path>` (XGBoost JSON, base_score fixed if needed) and `<path minus .json>.meta.json`.
    public convenience init(modelPath: String, useEnsemble: Bool = true) throws {
        let meta = try ModelMeta.load(path: ModelMeta.metaPath(forModel: modelPath))
        try InferenceNode.checkFeatures(meta.featureNames)
        try self.init(booster: Booster.load(path: modelPath), meta: meta, useEnsemble: useEnsemble)
    }

    deinit { buffer.deallocate() }

    /// Throws a `ModelError` naming missing/extra features (or an order mismatch).
    public static func checkFeatures(_ modelFeatures: [String]) throws {
        let ours = FeatureBuilder.featureNames
        if modelFeatures == ours { return }
        let missing = ours.filter { !modelFeatures.contains($0) }
        let extra = modelFeatures.filter { !ours.contains($0) }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing features (built by Tape, not in the model): \(missing.joined(separator: ", "))") }
        if !extra.isEmpty { parts.append("extra features (in the model, not built by Tape): \(extra.joined(separator: ", "))") }
        if parts.isEmpty { parts.append("same features in a different order: model has \(modelFeatures.joined(separator: ",")), Tape builds \(ours.joined(separator: ","))") }
        throw ModelError("model feature list does not match FeatureBuilder: " + parts.joined(separator: "; "))
    }

    /// Snapshot: the feature builder's state and the error count. The model itself is not in it (the
    /// restored graph is built with the same model; the config hash does not cover it).
    public func snapshot(into writer: inout SnapshotWriter) {
        builder.snapshot(into: &writer)
        writer.appendCount(errors)
    }

    public func restore(from reader: inout SnapshotReader) throws {
        try builder.restore(from: &reader)
        errors = try reader.readCount(minimumElementBytes: 0)
    }

    public func process(_ output: GraphOutput, emit: (GraphOutput) -> Void) {
        guard let bar = builder.consume(output, into: buffer) else { return }
        if let e = ensemble {
            let p = e.predict(row: UnsafeBufferPointer(buffer))
            emit(.prediction(PredictionOutput(symbol: bar.symbol, timeframe: bar.timeframe, end: bar.end, prediction: p)))
            return
        }
        do {
            let p = try booster.predict(row: UnsafeBufferPointer(buffer))
            emit(.prediction(PredictionOutput(symbol: bar.symbol, timeframe: bar.timeframe, end: bar.end, prediction: p)))
        } catch {
            errors += 1
        }
    }
}
