import TapeCore
import TapeClock

/// A node downstream of the built-in ones (e.g. the model's inference node). It sees every output the
/// graph emits, in emission order, and may emit outputs of its own; those go to the sink right after
/// the output that caused them (and are shown to later downstream nodes, not to itself).
public protocol DownstreamNode: AnyObject {
    func process(_ output: GraphOutput, emit: (GraphOutput) -> Void)
}

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

    /// Adds a downstream node (before the first event). Nodes run in the order added.
    public func addNode(_ node: DownstreamNode) {
        // Implemented by the graph issue.
    }

    /// Delivers one event. The driver has already advanced the clock to `event.receiveTime`.
    public func onEvent(_ event: MarketEvent) {
        // Implemented by the graph issue.
    }

    /// End of input: closes every open window (as if the watermark went to +infinity).
    public func finish() {}

    public func onTimer(token: UInt64, now: Nanos) {}
}
