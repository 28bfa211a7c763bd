import TapeCore
import TapeClock
import TapeRecordings
import TapeGraph
import TapeSinks
import TapeEngine
import TapeIO
import TapeSources
#if canImport(Glibc)
import Glibc
#endif

/// Replay pacing.
public enum ReplaySpeed: Sendable, Equatable {
    /// As fast as the machine goes.
    case max
    /// N x real time: event gaps (receive time) are kept, divided by N.
    case factor(Double)
}

/// What a replay needs: the replay's own settings (files, pacing, run folder, messages) and the
/// engine's (`engine`: config, filters, extra nodes), which a live driver or a Kafka worker fills in too.
/// The CLI, the scenario runner and `tape train` fill this in.
public struct ReplayOptions {
    public var inputs: [String]
    public var format: RecordingFormat? = nil
    public var symbol: String? = nil
    public var venue: String? = nil
    public var backwardsTolerance: Nanos = 1_000_000_000
    public var speed: ReplaySpeed = .max
    /// Run folder; nil = `reports/<run-id>/`.
    public var outDir: String? = nil
    public var quiet: Bool = true
    /// Extra sinks that see every output (e.g. training collectors), after the digest and the run folder.
    public var extraSinks: [GraphSink] = []
    /// Hash each input file into summary.json (`inputs[].sha256`).
    public var hashInputs: Bool = true
    /// CLI use: listen for SIGUSR1 / keys to pause and resume.
    public var interactive: Bool = false
    public var pause = PauseControl()
    /// Where reject messages are printed (stderr by default).
    public var messagePrinter: (String) -> Void = { fputs($0 + "\n", stderr) }
    /// The longest input line read (`--max-line-bytes`); longer lines are `line_too_long` rejects.
    public var maxLineBytes = LineReader.defaultMaxLineBytes
    /// Opens the writer for `rejects.csv.gz` in the run folder.
    public var makeRejectsWriter: (String) throws -> LineWriter = { dir in
        try GzipLineWriter(path: dir + "/rejects.csv.gz")
    }
    /// Continue from this snapshot (graph state + input position) instead of from the start.
    public var snapshotIn: String? = nil
    /// End in a snapshot written here (open windows stay open in it) instead of closing every window.
    public var snapshotOut: String? = nil
    /// The engine's settings: config, symbol and time filters, extra graph nodes.
    public var engine = EngineSettings()
    public init(inputs: [String]) { self.inputs = inputs }
}

/// What a replay produced; `summary` is what `summary.json` holds.
public struct ReplaySummary: Sendable {
    public var runDir: String
    public var summary: RunSummary
    public var digest: String { summary.digest }
    public var digestsBySymbol: [String: String] { summary.digestsBySymbol }
    public var ticksIn: Int { summary.ticksIn }
    public var ticksRejected: Int { summary.ticksRejected }
    public var rejectsByReason: [String: Int] { summary.ticksRejectedByReason }
    public var skipped: [String: Int] { summary.skipped }
    public var eventsOut: Int { summary.eventsOut }
    public var eventsOutByKind: [String: Int] { summary.eventsOutByKind }
    public var wallSeconds: Double { summary.wallSeconds }
    public var ticksPerSecond: Double { summary.ticksPerSecond }
    /// 0 clean, 3 some input rejected, 5 an output failed (see README: exit codes).
    public var exitCode: Int32 { summary.exitCode }
}

/// Input that cannot be used at all (missing file, undetectable format): exit code 4.
public struct UnusableInput: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = MessageText.escaped(d) }
}

