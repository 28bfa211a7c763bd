import TapeCore
import TapeClock

/// The processing graph: per-symbol state machines for bars, indicators and anomaly rules.
/// Plain state, no I/O, no wall clock: time comes from `clock`, order from the caller.
/// The same object runs under `SimulatedClock` (replay) and `LiveClock` (live).
public final class Graph: TimerTarget {
    public let config: PipelineConfig
    public let clock: Clock
    public let symbols: SymbolTable
    public let sink: GraphSink

    public init(config: PipelineConfig, clock: Clock, symbols: SymbolTable, sink: GraphSink) {
        self.config = config; self.clock = clock; self.symbols = symbols; self.sink = sink
    }

    /// Delivers one event. The driver has already advanced the clock to `event.receiveTime`.
    public func onEvent(_ event: MarketEvent) {
        // Implemented by the graph issue.
    }

    /// End of input: closes every open window (as if the watermark went to +infinity).
    public func finish() {}

    public func onTimer(token: UInt64, now: Nanos) {}
}
