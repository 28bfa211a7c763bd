import TapeCore

/// `volume_spike`: at each bar close of its timeframe with a known volume, fires when the volume is
/// above `k` × the median of the previous `window` bar volumes (bars without volume are skipped).
/// value = volume, threshold = k · median; critical above 2 × threshold.
///
/// The median comes from a sorted copy of the window kept beside the ring (one insertion and one
/// removal per close, O(window) moves, no allocation and no sort per close).
final class VolumeSpikeRule: AnomalyRule {
    let name = "volume_spike"
    let hooks: RuleHooks = [.barCloses]
    let timeframe: Timeframe?
    private let window: Int
    private let factor: Double

    struct SymbolState {
        var volumes: Ring
        /// The ring's values in ascending order.
        var sorted: [Double]
    }
    private var states: [SymbolState] = []

    init(_ config: PipelineConfig.VolumeSpike) {
        precondition(config.window >= 1, "volume_spike.window is validated positive")
        timeframe = config.timeframe
        window = config.window
        factor = config.k
    }

    private func makeState() -> SymbolState {
        var sorted: [Double] = []
        sorted.reserveCapacity(window)
        return SymbolState(volumes: Ring(window), sorted: sorted)
    }

    func onBarClose(_ bar: BarOutput, volumeKnown: Bool, context: RuleContext) {
        assert(bar.timeframe == timeframe)
        guard volumeKnown else { return }
        let index = Int(bar.symbol)
        if index >= states.count { growSlots(&states, to: bar.symbol) { makeState() } }
        if states[index].volumes.isFull {
            let median = VolumeSpikeRule.median(states[index].sorted)
            let limit = factor * median
            if median > 0 && bar.volume > limit {
                let severity: Severity = bar.volume > 2 * limit ? .critical : .warning
                context.emit(AnomalyOutput(symbol: bar.symbol, time: bar.end, rule: name, value: bar.volume,
                                           threshold: limit, severity: severity))
            }
        }
        if let evicted = states[index].volumes.push(bar.volume) {
            VolumeSpikeRule.remove(evicted, from: &states[index].sorted)
        }
        VolumeSpikeRule.insert(bar.volume, into: &states[index].sorted)
        assert(states[index].sorted.count == states[index].volumes.count)
    }

    static func median(_ sorted: [Double]) -> Double {
        let count = sorted.count
        precondition(count > 0)
        return count % 2 == 1 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2
    }

    /// First index whose value is not below `value`.
    private static func lowerBound(_ value: Double, in sorted: [Double]) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    static func insert(_ value: Double, into sorted: inout [Double]) {
        sorted.insert(value, at: lowerBound(value, in: sorted))
    }

    static func remove(_ value: Double, from sorted: inout [Double]) {
        var index = lowerBound(value, in: sorted)
        if index == sorted.count || sorted[index].bitPattern != value.bitPattern {
            // Not ordered by `<` (NaN) or a signed zero: find it by its bits.
            index = sorted.firstIndex { $0.bitPattern == value.bitPattern } ?? -1
        }
        precondition(index >= 0, "a value in the ring is in its sorted copy")
        sorted.remove(at: index)
    }

    func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(states.count)
        for state in states { state.volumes.snapshot(into: &writer) }
    }

    func restore(from reader: inout SnapshotReader) throws {
        let count = try reader.readCount(minimumElementBytes: 8, limit: snapshotSymbolsMax)
        var restored: [SymbolState] = []
        restored.reserveCapacity(count)
        for _ in 0..<count {
            var state = makeState()
            state.volumes = try Ring(from: &reader, capacity: window)
            for age in stride(from: state.volumes.count - 1, through: 0, by: -1) {
                VolumeSpikeRule.insert(state.volumes.back(age), into: &state.sorted)
            }
            restored.append(state)
        }
        states = restored
    }
}
