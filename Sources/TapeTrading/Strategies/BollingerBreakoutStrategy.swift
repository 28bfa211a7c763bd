import TapeCore
import TapeGraph

/// Bollinger breakout on one timeframe: a close above the upper band goes long `quantity`, a close below the
/// lower band goes short (or flat without shorts); a long goes flat when the close falls back below the middle
/// band, a short when it rises back above it. Keys: `timeframe` (1m), `quantity` (1), `allow_short` (true).
/// Needs bars (for the close) and indicators (for the bands; the graph emits a bar before its indicators).
/// State: the last close per symbol.
public final class BollingerBreakoutStrategy: Strategy {
    public static let registryName = "bollinger_breakout"
    public let name: String
    public let settings: CommonStrategySettings
    private var lastClose = SymbolSlots<Double>(initial: .nan)
    public var subscriptions: StrategySubscriptions { [.bars, .indicators] }

    public init(settings: CommonStrategySettings = CommonStrategySettings(allowShort: true),
                name: String = BollingerBreakoutStrategy.registryName) {
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
        switch output {
        case .bar(let bar) where bar.timeframe == settings.timeframe:
            lastClose[bar.symbol] = bar.close
        case .indicators(let indicators) where indicators.timeframe == settings.timeframe:
            let close = lastClose[indicators.symbol]
            guard close.isFinite, indicators.bbUpper.isFinite, indicators.bbLower.isFinite,
                  indicators.bbMiddle.isFinite else { return }
            let held = context.position(indicators.symbol) + context.openQuantity(indicators.symbol)
            if close > indicators.bbUpper {
                context.targetPosition(indicators.symbol, settings.quantity)
            } else if close < indicators.bbLower {
                context.targetPosition(indicators.symbol, settings.shortTarget)
            } else if (held > 0 && close < indicators.bbMiddle) || (held < 0 && close > indicators.bbMiddle) {
                context.targetPosition(indicators.symbol, 0)
            }
        default:
            return
        }
    }

    public func snapshot(into writer: inout SnapshotWriter) { lastClose.snapshot(into: &writer) }
    public func restore(from reader: inout SnapshotReader) throws { try lastClose.restore(from: &reader) }
}
