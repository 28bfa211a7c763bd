import TapeCore
import TapeGraph

/// Trades the model's prediction (a forward log return) on one timeframe: long `quantity` when it is above
/// `threshold`, short (or flat without shorts) when below −`threshold`, flat in between. NaN predictions are
/// ignored. Keys: `timeframe` (1m), `threshold` (0, ≥ 0), `quantity` (1), `allow_short` (true).
public final class ModelThresholdStrategy: Strategy {
    public static let registryName = "model_threshold"
    public let name: String
    public let settings: CommonStrategySettings
    public let threshold: Double
    public var subscriptions: StrategySubscriptions { .predictions }

    public init(settings: CommonStrategySettings = CommonStrategySettings(allowShort: true), threshold: Double = 0,
                name: String = ModelThresholdStrategy.registryName) {
        precondition(threshold >= 0 && threshold.isFinite, "the threshold is a finite number ≥ 0")
        self.settings = settings
        self.threshold = threshold
        self.name = name
    }

    public convenience init(parameters: [String: String], name: String? = nil) throws {
        var reader = StrategyParameters(strategy: Self.registryName, values: parameters)
        let settings = try CommonStrategySettings(&reader, allowShortDefault: true)
        let threshold = try reader.double("threshold", default: 0, range: 0...Double.greatestFiniteMagnitude)
        try reader.finish()
        self.init(settings: settings, threshold: threshold, name: name ?? Self.registryName)
    }

    public func onOutput(_ output: GraphOutput, context: StrategyContext) {
        guard case .prediction(let prediction) = output, prediction.timeframe == settings.timeframe,
              !prediction.prediction.isNaN else { return }
        let target: Double
        if prediction.prediction > threshold {
            target = settings.quantity
        } else if prediction.prediction < -threshold {
            target = settings.shortTarget
        } else {
            target = 0
        }
        context.targetPosition(prediction.symbol, target)
    }

    public func snapshot(into writer: inout SnapshotWriter) {}
    public func restore(from reader: inout SnapshotReader) throws {}
}
