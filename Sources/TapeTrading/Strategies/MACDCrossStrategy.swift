import TapeCore
import TapeGraph

/// MACD signal-line cross on one timeframe: when the MACD line crosses above its signal line (MACD − signal
/// goes from ≤ 0 to > 0) hold long `quantity`; when it crosses below (from ≥ 0 to < 0) hold short (or flat
/// without shorts). The first finite value only sets the reference. Keys: `timeframe` (1m), `quantity` (1),
/// `allow_short` (true). State: the previous MACD − signal per symbol (NaN before the first).
public final class MACDCrossStrategy: Strategy {
    public static let registryName = "macd_cross"
    public let name: String
    public let settings: CommonStrategySettings
    private var previousDifference = SymbolSlots<Double>(initial: .nan)
    public var subscriptions: StrategySubscriptions { .indicators }

    public init(settings: CommonStrategySettings = CommonStrategySettings(allowShort: true),
                name: String = MACDCrossStrategy.registryName) {
        self.settings = settings
        self.name = name
    }

    public convenience init(parameters: [String: String], name: String? = nil) throws {
        var reader = StrategyParameters(strategy: Self.registryName, values: parameters)
        let settings = try CommonStrategySettings(&reader, allowShortDefault: true)
        try reader.finish()
        self.init(settings: settings, name: name ?? Self.registryName)
    }

    public func onOutput(_ output: GraphOutput, context: StrategyContext) {
        guard case .indicators(let indicators) = output, indicators.timeframe == settings.timeframe else { return }
        let difference = indicators.macd - indicators.macdSignal
        guard difference.isFinite else { return }
        let previous = previousDifference[indicators.symbol]
        previousDifference[indicators.symbol] = difference
        guard previous.isFinite else { return }
        if previous <= 0 && difference > 0 {
            context.targetPosition(indicators.symbol, settings.quantity)
        } else if previous >= 0 && difference < 0 {
            context.targetPosition(indicators.symbol, settings.shortTarget)
        }
    }

    public func snapshot(into writer: inout SnapshotWriter) { previousDifference.snapshot(into: &writer) }
    public func restore(from reader: inout SnapshotReader) throws { try previousDifference.restore(from: &reader) }
}
