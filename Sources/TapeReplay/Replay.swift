import TapeCore
import TapeClock
import TapeRecordings
import TapeGraph
import TapeSinks

/// Replay pacing.
public enum ReplaySpeed: Sendable, Equatable {
    /// As fast as the machine goes.
    case max
    /// N x real time: event gaps (receive time) are kept, divided by N.
    case factor(Double)
}

/// Everything a replay needs. The CLI, the scenario runner and `tape train` fill this in.
public struct ReplayOptions {
    public var inputs: [String]
    public var format: RecordingFormat? = nil
    public var symbol: String? = nil
    public var venue: String? = nil
    /// Only these symbols (full `venue:SYMBOL` or bare `SYMBOL`); nil = all.
    public var symbols: [String]? = nil
    /// Event-time filter, [from, to).
    public var from: Nanos? = nil
    public var to: Nanos? = nil
    public var speed: ReplaySpeed = .max
    /// Run folder; nil = `reports/<run-id>/`.
    public var outDir: String? = nil
    public var config: PipelineConfig = PipelineConfig()
    /// Text of the config as loaded (hashed into `config_hash`); empty = defaults.
    public var configText: String = ""
    public var backwardsTolerance: Nanos = 1_000_000_000
    public var quiet: Bool = true
    /// Extra graph nodes (e.g. the model's inference node), added in order.
    public var extraNodes: [DownstreamNode] = []
    /// Extra sinks that see every output (e.g. training collectors).
    public var extraSinks: [GraphSink] = []
    public init(inputs: [String]) { self.inputs = inputs }
}

/// What a replay produced (also written as `summary.json` in the run folder).
public struct ReplaySummary: Sendable {
    public var runDir: String
    public var digest: String
    public var ticksIn: Int
    public var ticksRejected: Int
    public var rejectsByReason: [String: Int]
    public var skipped: [String: Int]
    public var eventsOut: Int
    public var eventsOutByKind: [String: Int]
    public var wallSeconds: Double
    public var ticksPerSecond: Double
    /// 0 clean, 3 some input rejected (see README: exit codes).
    public var exitCode: Int32
}
