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
    /// A forward jump of receive time beyond this within one file must be confirmed (`time_jump`).
    public var forwardJumpLimit: Nanos = EventValidator.defaultForwardJumpLimit
    /// Sanity bounds of prices and sizes (`out_of_range` above them).
    public var valueBounds = ValueBounds()
    public var speed: ReplaySpeed = .max
    /// Run folder; nil = `reports/<run-id>/`.
    public var outDir: String? = nil
    public var quiet: Bool = true
    /// Extra sinks that see every output (e.g. training collectors), after the digest and the run folder.
    public var extraSinks: [GraphSink] = []
    /// Sinks built per run with the run's own symbol table and identity (the stores of `--store`).
    public var sinkFactories: [(RunContext) throws -> EngineSink] = []
    /// Inputs of a live run as the stores describe them (feeds); replay uses `inputs`.
    public var describedInputs: [String]? = nil
    /// Hash each input file into summary.json (`inputs[].sha256`).
    public var hashInputs: Bool = true
    /// CLI use: listen for SIGUSR1 / keys to pause and resume.
    public var interactive: Bool = false
    public var pause = PauseControl()
    /// Where reject messages are printed (stderr by default).
    public var messagePrinter: (String) -> Void = { fputs($0 + "\n", stderr) }
    /// The longest input line read (`--max-line-bytes`); longer lines are `line_too_long` rejects.
    public var maxLineBytes = LineReader.defaultMaxLineBytes
    /// Bar files: `--bar-time`, `--bar-length`, `--columns`.
    public var bars = BarOptions()
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
    /// 0 clean, 3 some input rejected, 5 an output failed, 6 nothing delivered, 130/143 interrupted
    /// (see README: exit codes).
    public var exitCode: Int32 { summary.exitCode }
    /// Every symbol name the inputs carried (filtered or not), for the warnings on `--symbols`.
    public var inputSymbols: [String] = []
    public init(runDir: String, summary: RunSummary, inputSymbols: [String] = []) {
        self.runDir = runDir
        self.summary = summary
        self.inputSymbols = inputSymbols
    }
}

/// What to tell a user whose filters left nothing or named something the inputs do not have: one line
/// per requested symbol that matched no input symbol (with the closest known names), and one line when
/// nothing at all was delivered. Empty when every requested symbol matched and something was delivered.
public func filterWarnings(requestedSymbols: [String]?, inputSymbols: [String], from: Nanos?, to: Nanos?,
                           delivered: Int, eventsIn: Int) -> [String] {
    var warnings: [String] = []
    let known = Set(inputSymbols.map { $0.uppercased() })
    let knownBare = Set(known.map { String($0.split(separator: ":").last ?? Substring($0)) })
    for requested in requestedSymbols ?? [] {
        let name = requested.uppercased()
        if known.contains(name) || knownBare.contains(name) { continue }
        let closest = closestNames(to: name, among: inputSymbols, limit: 3)
        warnings.append("--symbols: '\(requested)' matches no symbol in the inputs"
                        + (closest.isEmpty ? "" : "; closest: \(closest.joined(separator: ", "))"))
    }
    if delivered == 0 && eventsIn > 0 {
        var filters: [String] = []
        if requestedSymbols != nil { filters.append("--symbols") }
        if from != nil || to != nil { filters.append("--from/--to") }
        warnings.append("nothing delivered: the filters (\(filters.joined(separator: ", "))) left none of the "
                        + "\(eventsIn) events in the inputs")
    }
    return warnings
}

/// The `limit` names nearest to `name` by edit distance (case-insensitive; a venue prefix is compared
/// both with and without), nearest first, ties by name.
func closestNames(to name: String, among names: [String], limit: Int) -> [String] {
    let target = Array(name.uppercased().utf8)
    let scored = Set(names.filter { !$0.isEmpty }).map { candidate -> (Int, String) in
        let upper = candidate.uppercased()
        let bare = String(upper.split(separator: ":").last ?? Substring(upper))
        return (min(editDistance(target, Array(upper.utf8)), editDistance(target, Array(bare.utf8))), candidate)
    }
    return scored.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.prefix(limit).map(\.1)
}

/// Levenshtein distance over bytes (short names only: symbol names).
func editDistance(_ left: [UInt8], _ right: [UInt8]) -> Int {
    if left.isEmpty { return right.count }
    var previous = Array(0...right.count)
    var current = previous
    for (leftIndex, leftByte) in left.enumerated() {
        current[0] = leftIndex + 1
        for (rightIndex, rightByte) in right.enumerated() {
            let substitution = previous[rightIndex] + (leftByte == rightByte ? 0 : 1)
            current[rightIndex + 1] = min(substitution, previous[rightIndex + 1] + 1, current[rightIndex] + 1)
        }
        swap(&previous, &current)
    }
    return previous[right.count]
}

/// Input that cannot be used at all (missing file, undetectable format): exit code 4.
public struct UnusableInput: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = MessageText.escaped(d) }
}



/// What a run that delivered events but produced little or nothing should tell its user (bar files:
/// timeframes shorter than, or not multiples of, the input's bars; a lateness too small for bar input).
/// `producedNothing`: events were delivered and the graph emitted nothing but late ticks (exit 8).
public func outputWarnings(_ summary: RunSummary) -> (warnings: [String], producedNothing: Bool) {
    var warnings: [String] = []
    let graph = summary.graph
    let lateTicks = summary.eventsOutByKind["late_ticks"] ?? 0
    if graph.barsIn > 0 && graph.lateTicks >= graph.barsIn {
        warnings.append("all \(graph.barsIn) input bars were late ticks: a bar arrives complete, at its close, so "
                        + "allowed_lateness must not be 0 for bar input (the default 2s works)")
    } else if graph.barsIn > 0 && summary.ticksDelivered > 0, let counts = graph.barsByTimeframe {
        let empty = graph.timeframes.filter { (counts[$0] ?? 0) == 0 }
        if !empty.isEmpty {
            warnings.append("timeframe\(empty.count > 1 ? "s" : "") \(empty.joined(separator: ", ")) produced no bars from "
                            + "this bar input: a timeframe must be a whole multiple of the input's bar length "
                            + "(shorter ones, like 10s on 1-minute bars, and 90s on 1-minute bars give nothing)")
        }
    }
    let producedNothing = summary.ticksDelivered > 0 && summary.eventsOut - lateTicks == 0
    if producedNothing && warnings.isEmpty {
        warnings.append("\(summary.ticksDelivered) events were delivered but no bar closed (timeframes: "
                        + "\(graph.timeframes.joined(separator: ", ")); the input may be shorter than the timeframes")
    }
    return (warnings, producedNothing)
}
