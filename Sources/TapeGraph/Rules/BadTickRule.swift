import TapeCore

/// `bad_tick`: a trade more than `max_deviation_pct` % away from the last accepted trade price, when
/// that trade is within `interval` of event time, is an anomaly (value = deviation %, time = trade
/// event time) and is kept out of the bars; it does not become the reference price.
final class BadTickRule: AnomalyRule {
    let name = "bad_tick"
    let hooks: RuleHooks = [.trades]
    private let deviationPercentMax: Double
    private let interval: Nanos

    struct SymbolState {
        var lastPrice = Double.nan
        var lastPriceTime: Nanos = .min
    }
    private var states: [SymbolState] = []

    init(_ config: PipelineConfig.BadTick) {
        deviationPercentMax = config.maxDeviationPct
        interval = config.interval
    }

    func acceptTrade(_ event: MarketEvent, context: RuleContext) -> Bool {
        assert(event.kind == .trade)
        let index = Int(event.symbol)
        if index >= states.count { growSlots(&states, to: event.symbol) { SymbolState() } }
        let state = states[index]
        if !state.lastPrice.isNaN && event.eventTime - state.lastPriceTime <= interval {
            let deviation = abs(event.price / state.lastPrice - 1) * 100
            if deviation > deviationPercentMax {
                let severity: Severity = deviation > 2 * deviationPercentMax ? .critical : .warning
                context.emit(AnomalyOutput(symbol: event.symbol, time: event.eventTime, rule: name, value: deviation,
                                           threshold: deviationPercentMax, severity: severity))
                return false
            }
        }
        states[index] = SymbolState(lastPrice: event.price, lastPriceTime: event.eventTime)
        return true
    }

    func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(states.count)
        for state in states {
            writer.append(state.lastPrice)
            writer.append(state.lastPriceTime)
        }
    }

    func restore(from reader: inout SnapshotReader) throws {
        let count = try reader.readCount(minimumElementBytes: 16, limit: snapshotSymbolsMax)
        var restored: [SymbolState] = []
        restored.reserveCapacity(count)
        for _ in 0..<count {
            restored.append(SymbolState(lastPrice: try reader.readDouble(), lastPriceTime: try reader.readInt64()))
        }
        states = restored
    }
}
