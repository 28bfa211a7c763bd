import TapeCore
import TapeClock
import TapeRecordings
import TapeGraph
import TapeSinks
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
    public var backwardsTolerance: Nanos = 1_000_000_000
    public var quiet: Bool = true
    /// Extra graph nodes (e.g. the model's inference node), added in order.
    public var extraNodes: [DownstreamNode] = []
    /// Extra sinks that see every output (e.g. training collectors).
    public var extraSinks: [GraphSink] = []
    /// Extra top-level entries for summary.json (e.g. model metrics).
    public var extraSummary: [(String, JSONValue)] = []
    /// Canonical config text hashed into `config_hash`.
    public var configCanonicalText: String = ""
    /// Hash each input file into summary.json (`inputs[].sha256`).
    public var hashInputs: Bool = true
    /// CLI use: listen for SIGUSR1 / keys to pause and resume.
    public var interactive: Bool = false
    public var pause = PauseControl()
    /// Where reject messages are printed (stderr by default).
    public var messagePrinter: (String) -> Void = { fputs($0 + "\n", stderr) }
    /// Opens the writer for `rejects.csv.gz` in the run folder.
    public var makeRejectsWriter: (String) throws -> LineWriter = { dir in try GzipLineWriter(path: dir + "/rejects.csv.gz") }
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
    /// Symbol name → SHA-256 of that symbol's output lines (see `DigestSink`).
    public var digestsBySymbol: [String: String] = [:]
}

/// Input that cannot be used at all (missing file, undetectable format): exit code 4.
public struct UnusableInput: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Documented exit codes of `tape replay` (and of the commands built on it).
public enum TapeExit {
    public static let clean: Int32 = 0
    /// Internal error (a bug): please report.
    public static let internalError: Int32 = 1
    /// Some input records were rejected (counted in summary.json, kept in rejects.csv.gz); the rest was processed.
    public static let inputRejected: Int32 = 3
    /// Input unusable: a file missing or unreadable, its format not detected, a bad config.
    public static let unusableInput: Int32 = 4
    /// An output could not be written (disk full, I/O error, a sink failed): the run stopped; see the message.
    public static let outputFailed: Int32 = 5
}
