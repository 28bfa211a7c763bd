import TapeCore
#if canImport(Glibc)
import Glibc
#endif

/// `price_spike`: at each bar close of its timeframe, r = ln(close / previous close); fires when
/// |z| > `z` with z = (r − mean) / sample sd of the previous `window` returns (two passes over the
/// ring, O(window) per close). value = z, threshold = `z`; critical above 2 × threshold.
final class PriceSpikeRule: AnomalyRule {
    let name = "price_spike"
    let hooks: RuleHooks = [.barCloses]
    let timeframe: Timeframe?
    private let window: Int
    private let threshold: Double

    struct SymbolState {
        var lastClose = Double.nan
        var returns: Ring
    }
    private var states: [SymbolState] = []

    init(_ config: PipelineConfig.PriceSpike) {
        precondition(config.window >= 1, "price_spike.window is validated positive")
        timeframe = config.timeframe
        window = config.window
        threshold = config.z
    }

    func onBarClose(_ bar: BarOutput, volumeKnown: Bool, context: RuleContext) {
        assert(bar.timeframe == timeframe)
        let index = Int(bar.symbol)
        if index >= states.count { growSlots(&states, to: bar.symbol) { SymbolState(returns: Ring(window)) } }
        let lastClose = states[index].lastClose
        states[index].lastClose = bar.close
        guard !lastClose.isNaN && lastClose > 0 && bar.close > 0 else { return }
        let logReturn = log(bar.close / lastClose)
        if states[index].returns.isFull {
            let returns = states[index].returns
            var mean = 0.0
            for age in 0..<returns.count { mean += returns.back(age) }
            mean /= Double(returns.count)
            var variance = 0.0
            for age in 0..<returns.count {
                let deviation = returns.back(age) - mean
                variance += deviation * deviation
            }
            let deviationStandard = (variance / Double(returns.count - 1)).squareRoot()
            if deviationStandard > 0 {
                let z = (logReturn - mean) / deviationStandard
                if abs(z) > threshold {
                    let severity: Severity = abs(z) > 2 * threshold ? .critical : .warning
                    context.emit(AnomalyOutput(symbol: bar.symbol, time: bar.end, rule: name, value: z,
                                               threshold: threshold, severity: severity))
                }
            }
        }
        _ = states[index].returns.push(logReturn)
    }

    func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(states.count)
        for state in states {
            writer.append(state.lastClose)
            state.returns.snapshot(into: &writer)
        }
    }

    func restore(from reader: inout SnapshotReader) throws {
        let count = try reader.readCount(minimumElementBytes: 8, limit: snapshotSymbolsMax)
        var restored: [SymbolState] = []
        restored.reserveCapacity(count)
        for _ in 0..<count {
            let lastClose = try reader.readDouble()
            restored.append(SymbolState(lastClose: lastClose, returns: try Ring(from: &reader, capacity: window)))
        }
        states = restored
    }
}
