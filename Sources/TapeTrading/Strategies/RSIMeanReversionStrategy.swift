import TapeCore
import TapeGraph

/// RSI mean reversion on one timeframe: buy (long `quantity`) when the RSI closes below `lower`, sell (flat, or
/// short with `allow_short`) when it closes above `upper`; between the two the position is kept. Keys:
/// `timeframe` (1m), `lower` (30), `upper` (70), `quantity` (1), `allow_short` (false).
public final class RSIMeanReversionStrategy: Strategy {
    public static let registryName = "rsi_mean_reversion"
    public let name: String
    public let settings: CommonStrategySettings
    public let lower: Double
    public let upper: Double
    public var subscriptions: StrategySubscriptions { .indicators }

    public init(settings: CommonStrategySettings = CommonStrategySettings(allowShort: false), lower: Double = 30,
                upper: Double = 70, name: String = RSIMeanReversionStrategy.registryName) {
        precondition(0 <= lower && lower < upper && upper <= 100, "0 ≤ lower < upper ≤ 100")
        self.settings = settings
        self.lower = lower
        self.upper = upper
        self.name = name
    }

    public convenience init(parameters: [String: String], name: String? = nil) throws {
        var reader = StrategyParameters(strategy: Self.registryName, values: parameters)
        let settings = try CommonStrategySettings(&reader, allowShortDefault: false)
        let lower = try reader.double("lower", default: 30, range: 0...100)
        let upper = try reader.double("upper", default: 70, range: 0...100)
        try reader.finish()
        guard lower < upper else {
            throw StrategyConfigError(strategy: Self.registryName, key: "lower",
                                      message: "lower (\(lower)) must be below upper (\(upper))")
        }
        self.init(settings: settings, lower: lower, upper: upper, name: name ?? Self.registryName)
    }

    public func onOutput(_ output: GraphOutput, context: StrategyContext) {
        guard case .indicators(let indicators) = output, indicators.timeframe == settings.timeframe,
              indicators.rsi.isFinite else { return }
        if indicators.rsi < lower {
            context.targetPosition(indicators.symbol, settings.quantity)
        } else if indicators.rsi > upper {
            context.targetPosition(indicators.symbol, settings.shortTarget)
        }
    }

    public func snapshot(into writer: inout SnapshotWriter) {}
    public func restore(from reader: inout SnapshotReader) throws {}
}
