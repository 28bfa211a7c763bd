import ArgumentParser
import Foundation
import TapeCore
import TapeTrading
import TapeBacktest
import TapeGraph
import TapeRecordings
import TapeReplay
import TapeModel
import TapeEngine
import TapeIO
import TapeSources
import TapeSinks
import TapeReports
import TapeLogging

@main
struct Tape: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tape",
        abstract: "Deterministic market-data replay and live pipeline.",
        discussion: """
            Exit codes: 0 clean; 3 some input records were rejected (see the run's summary.json and \
            rejects.csv.gz; everything valid was processed); 4 unusable input (missing file, unknown \
            format, a read error, bad config); 5 an output could not be written (disk full, I/O error, unusable --out, \
            the report); 6 nothing delivered (the filters left no event); 130/143 interrupted by \
            SIGINT/SIGTERM (outputs complete up to the stop, summary.json says interrupted); 64 bad \
            command line; 1 internal error. `tape diff` has its own: 0 equal, 1 the runs differ, 4 not a \
            run folder, 64 bad command line.
            """,
        version: TapeEngine.tapeVersion,
        subcommands: [ReplayCommand.self, RecordCommand.self, TrainCommand.self, ReportCommand.self,
                      ScenarioCommand.self, BenchCommand.self, LiveCommand.self, DiffCommand.self,
                      FeedSimCommand.self, StoreCommand.self, IngestCommand.self, WorkCommand.self,
                      ServeCommand.self])

    /// Every `Logger` of the process writes through Tape's handler: the human line at `info` and above
    /// until a long-running command's `--log-format` / `--log-level` say otherwise (`LoggingOptions`).
    static func main() {
        TapeLogging.bootstrap()
        main(nil)
    }
}

/// Options shared by every command that replays recordings.
struct InputOptions: ParsableArguments {
    @Argument(help: "Recordings (gzip; several are merged by receive time, then file order, then line order).")
    var inputs: [String] = []

    @Option(help: "Input format (default: detected from content): \(RecordingFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: String?

    @Option(help: "Instrument name for files that do not carry one (bar files).")
    var symbol: String?

    @Option(help: "Venue prefix for symbols (default: from the file name where it tells, e.g. spot-/usdm-/cm- Binance captures).")
    var venue: String?

    @Option(help: "Only these symbols (comma-separated; `spot:BTCUSDT` or bare `BTCUSDT`).")
    var symbols: String?

    @Option(help: "Event-time start (inclusive): ISO-8601 UTC (2024-08-09T00:01:00Z) or integer ns.")
    var from: String?

    @Option(help: "Event-time end (exclusive): ISO-8601 UTC or integer ns.")
    var to: String?

    @Option(help: "Pipeline config (YAML). Default: config/pipeline.yaml if present, else built-in defaults.")
    var config: String?

    @Option(help: "Strategies, simulated execution and account (YAML with a trading: section, e.g. config/trading.yaml; docs/backtesting.md): backtest them on the replayed stream.")
    var trading: String?

    @Option(help: "How far receive time may go back inside one file before a record is rejected, in ms.")
    var backwardsToleranceMs: Int64 = 1000

    /// Largest `--backwards-tolerance-ms`: one day (a larger tolerance is no check at all).
    static let toleranceMsMax: Int64 = 86_400_000
    /// What `--from`/`--to` accept: the times every parser accepts (TimeUtil's range).
    static let userTimeExpected = "expected ISO-8601 UTC or integer ns in \(TimeUtil.acceptedRangeText)"

    @Option(help: ArgumentHelp("How far receive time may jump forward inside one file, in hours, before "
                               + "the jump must be confirmed by the next record "
                               + "(the first after it is rejected: time_jump)."))
    var forwardJumpLimitHours: Double = 168

    @Option(help: "Largest accepted price (above: out_of_range).")
    var maxPrice: Double = ValueBounds.defaultPriceMax

    @Option(help: "Largest accepted size or volume (above: out_of_range).")
    var maxSize: Double = ValueBounds.defaultSizeMax

    @Option(help: "Longest input line in bytes; a longer line is rejected (line_too_long) and skipped.")
    var maxLineBytes: Int = LineReader.defaultMaxLineBytes

    @OptionGroup var bars: BarFileOptions

    func replayOptions() throws -> ReplayOptions {
        var o = ReplayOptions(inputs: try expandRecordingFolders(inputs))
        if let f = format {
            guard let fmt = RecordingFormat(rawValue: f) else {
                throw ValidationError("unknown --format '\(f)'; one of: \(RecordingFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            o.format = fmt
        }
        o.symbol = symbol
        o.venue = venue
        if let symbols {
            let names = symbols.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ValidationError("--symbols '\(symbols)': give at least one symbol") }
            o.engine.symbols = names
        }
        if let f = from {
            guard let t = TimeUtil.parseUserTime(f) else {
                throw ValidationError("--from '\(f)': \(Self.userTimeExpected)")
            }
            o.engine.from = t
        }
        if let t0 = to {
            guard let t = TimeUtil.parseUserTime(t0) else {
                throw ValidationError("--to '\(t0)': \(Self.userTimeExpected)")
            }
            o.engine.to = t
        }
        guard (0...Self.toleranceMsMax).contains(backwardsToleranceMs) else {
            throw ValidationError(
                "--backwards-tolerance-ms \(backwardsToleranceMs): expected 0 ... \(Self.toleranceMsMax) (one day)")
        }
        if let from = o.engine.from, let to = o.engine.to, from >= to {
            throw ValidationError("--from \(self.from!) is not before --to \(self.to!): the range [from, to) is empty")
        }
        o.backwardsTolerance = backwardsToleranceMs * 1_000_000
        // Up to 100 years in ns fits Int64 (2.9e18 < 9.2e18).
        guard forwardJumpLimitHours > 0, forwardJumpLimitHours <= 876_000 else {
            throw ValidationError("--forward-jump-limit-hours \(forwardJumpLimitHours): expected 0 < hours <= 876000")
        }
        o.forwardJumpLimit = Int64(forwardJumpLimitHours * 3_600e9)
        guard maxPrice > 0, maxPrice.isFinite, maxSize > 0, maxSize.isFinite else {
            throw ValidationError("--max-price/--max-size: expected positive finite numbers")
        }
        o.valueBounds = ValueBounds(priceMax: maxPrice, sizeMax: maxSize)
        guard maxLineBytes > 0 else { throw ValidationError("--max-line-bytes: expected a positive number of bytes") }
        o.maxLineBytes = maxLineBytes
        o.bars = try bars.barOptions()
        try loadConfig(into: &o, path: config, trading: trading)
        return o
    }
}

/// Bar-file options of every command that reads recordings (replay, record, train, live warm-up).
/// What is not given is detected per input and stated (stderr and summary.json `inputs[].layout`).
struct BarFileOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Bar files: whether a row's time is its bar's open or its close (default open).",
                               valueName: "open|close"))
    var barTime: String?

    @Option(help: ArgumentHelp("Bar files: the length of one bar, e.g. 1m, 5m, 1h, 1d (default: detected from the "
                               + "spacing of the rows).", valueName: "length"))
    var barLength: String?

    @Option(help: ArgumentHelp("Bar files: the columns by role, e.g. time=Date,open=Open,high=High,low=Low,close=Close "
                               + "(roles time, date, open, high, low, close, volume, symbol; a header name or a "
                               + "column number from 1). Roles not given are found by their usual names.",
                               valueName: "role=column,…"))
    var columns: String?

    func barOptions() throws -> BarOptions {
        var options = BarOptions()
        do {
            if let barTime { options.anchor = try BarOptions.parseAnchor(barTime) }
            if let barLength { options.lengthNanos = try BarOptions.parseLength(barLength) }
            if let columns { options.columns = try BarOptions.parseColumns(columns) }
        } catch let error as BarOptionError {
            throw ValidationError(error.description)
        }
        return options
    }
}

func loadConfig(into o: inout ReplayOptions, path: String?, trading: String? = nil) throws {
    let p = path ?? (FileManager.default.fileExists(atPath: "config/pipeline.yaml") ? "config/pipeline.yaml" : nil)
    if let p {
        guard let text = try? String(contentsOfFile: p, encoding: .utf8) else {
            throw UnusableInput("\(p): cannot read config")
        }
        do { o.engine.config = try PipelineConfig.load(yaml: text, source: p) }
        catch { throw UnusableInput("\(error)") }
    }
    // `--trading FILE`: its `trading:` section over the pipeline config's (part of the config hash).
    if let trading {
        guard let text = try? String(contentsOfFile: trading, encoding: .utf8) else {
            throw UnusableInput("\(trading): cannot read the trading config")
        }
        do { o.engine.config = try o.engine.config.merged(overrides: text, source: trading) }
        catch { throw UnusableInput("\(error)") }
        guard o.engine.config.trading != nil else { throw UnusableInput("\(trading): no trading: section") }
    }
}

/// The trading node of the config's `trading:` section (after the model's node, so strategies see the
/// predictions), or nothing. Starts external strategies. Exit 2 on a bad key, naming it.
func tradingNode(_ config: PipelineConfig, source: String) -> TradingNode? {
    do { return try TradingSetup.node(for: config, source: source) }
    catch { fail("\(error)", code: TapeExit.unusableInput) }
}

/// After a run with external strategies: each one that failed, on stderr; exit 5 if any did.
func checkStrategies(_ nodes: [DownstreamNode]) {
    var failed = false
    for node in nodes {
        guard let trading = node as? TradingNode else { continue }
        for failure in TradingSetup.stop(trading) {
            tapeLogger.error("tape: \(failure)", metadata: ["event": "strategy_failed", "error": "\(failure)"])
            failed = true
        }
    }
    if failed { exit(TapeExit.outputFailed) }
}

/// `--model`: a `tape train` run folder, its `model/` directory, or the `model.json` file itself.
func modelFile(_ path: String) -> String {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return path }
    let inModelFolder = (path as NSString).appendingPathComponent("model.json")
    if FileManager.default.fileExists(atPath: inModelFolder) { return inModelFolder }
    return (path as NSString).appendingPathComponent("model/model.json")
}

/// Says why the command stops (`tape: MESSAGE`, an `error` event) and exits with `code`.
func fail(_ message: String, code: Int32) -> Never {
    tapeLogger.error("tape: \(message)", metadata: ["event": "exit", "exit_code": .stringConvertible(Int(code))])
    Foundation.exit(code)
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay recordings through the graph under the simulated clock and write a run folder.")

    @OptionGroup var input: InputOptions

    @OptionGroup var store: StoreOptions

    // Unconditional: `--speed -1` reaches the check below (a clear message), not "Missing value".
    @Option(parsing: .unconditional,
            help: "Replay speed: `max` (as fast as possible) or N (N x real time, e.g. 1, 10, 0.5).")
    var speed: String = "max"
    /// The `--speed N` range: from 1000× slower than real time to a million times faster (pacing computes
    /// `(t − t0) / N` in ns, which must stay a finite Int64).
    static let speedMin = 0.001
    static let speedMax = 1_000_000.0

    @Option(help: "Run folder (default reports/<run-id>/).")
    var out: String?

    @Flag(help: "No progress line and no per-reject messages on stderr.")
    var quiet = false

    @Flag(help: "Do not write the HTML report.")
    var noReport = false

    @Option(help: "Run this trained model (a `tape train` run folder's model/ directory) on every bar: predictions.csv.")
    var model: String?

    @Option(help: "Continue from this checkpoint (graph state + input position) of an earlier run on the same inputs.")
    var snapshotIn: String?

    @Option(help: "End in a checkpoint written here: open windows stay open in it, for a run that continues with --snapshot-in.")
    var snapshotOut: String?

    @Option(help: "Stop before the first item whose receive time is at or after this (ISO-8601 UTC or integer ns).")
    var stopAt: String?

    mutating func run() throws {
        var inputs = input.inputs
        if inputs.isEmpty {
            let dir = "recordings/sample"
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".gz") }.sorted()
            if files.isEmpty {
                fail("""
                    no recordings given and \(dir)/ is empty.
                    Replay your own captures: tape replay path/to/capture.gz [more.gz ...]
                    or fill \(dir)/ from the shared data set: make sample (copies ../shared/data, or SHARED=/path/to/shared)
                    """, code: TapeExit.unusableInput)
            }
            inputs = files.map { "\(dir)/\($0)" }
        }
        var o: ReplayOptions
        do { o = try input.replayOptions() } catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        do { o.inputs = try expandRecordingFolders(inputs) } catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        if speed == "max" { o.speed = .max }
        else if let f = Double(speed), (Self.speedMin...Self.speedMax).contains(f) { o.speed = .factor(f) }
        else {
            throw ValidationError("--speed '\(speed)': expected `max` or a number in \(Self.speedMin) ... \(Self.speedMax)")
        }
        o.outDir = out
        o.quiet = quiet
        o.interactive = true
        o.snapshotIn = snapshotIn
        o.snapshotOut = snapshotOut
        o.sinkFactories = try store.factories()
        if let model {
            do { o.engine.extraNodes.append(try InferenceNode(modelPath: modelFile(model))) }
            catch { fail("\(model): \(error)", code: TapeExit.unusableInput) }
        }
        if let node = tradingNode(o.engine.config, source: input.trading ?? input.config ?? "config/pipeline.yaml") {
            o.engine.extraNodes.append(node)
        }
        if let stopAt {
            guard let time = TimeUtil.parseUserTime(stopAt) else {
                throw ValidationError("--stop-at '\(stopAt)': expected ISO-8601 UTC or integer ns")
            }
            o.engine.stopAtReceive = time
        }
        let s: ReplaySummary
        do { s = try runReplay(o) }
        catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        catch let e as OutputFailed { fail(e.description, code: TapeExit.outputFailed) }
        printSummary(s)
        checkStrategies(o.engine.extraNodes)
        for warning in filterWarnings(requestedSymbols: o.engine.symbols, inputSymbols: s.inputSymbols,
                                      from: o.engine.from, to: o.engine.to, delivered: s.summary.ticksDelivered,
                                      eventsIn: s.ticksIn) + outputWarnings(s.summary).warnings {
            FileHandle.standardError.write(Data(("tape: warning: " + warning + "\n").utf8))
        }
        let reportWritten = noReport || writeReport(s.runDir)
        // An interrupt or a failed output outranks the report; a failed report outranks rejects.
        if s.exitCode != 0 && s.exitCode != TapeExit.inputRejected && s.exitCode != TapeExit.nothingDelivered
            && s.exitCode != TapeExit.nothingProduced {
            throw ArgumentParser.ExitCode(s.exitCode)
        }
        if !reportWritten { throw ArgumentParser.ExitCode(TapeExit.outputFailed) }
        if s.exitCode != 0 { throw ArgumentParser.ExitCode(s.exitCode) }
    }
}

/// Writes the run's HTML report. A failure is reported on stderr and returns false: the run's own
/// outputs are complete, but the command exits 5 (an output could not be written).
func writeReport(_ runDir: String) -> Bool {
    do {
        print("report          \(try ReportWriter.write(runDir: runDir))")
        return true
    } catch {
        FileHandle.standardError.write(Data("tape: output failed (report): \(error)\n".utf8))
        return false
    }
}

func printSummary(_ s: ReplaySummary) {
    print("run folder      \(s.runDir)")
    print("digest          \(s.digest)")
    print("ticks in        \(s.ticksIn)")
    let reasons = s.rejectsByReason.keys.sorted().map { "\($0)=\(s.rejectsByReason[$0]!)" }.joined(separator: " ")
    print("ticks rejected  \(s.ticksRejected)\(reasons.isEmpty ? "" : "  (\(reasons))")")
    if !s.skipped.isEmpty {
        print("skipped         " + s.skipped.keys.sorted().map { "\($0)=\(s.skipped[$0]!)" }.joined(separator: " "))
    }
    let kinds = s.eventsOutByKind.keys.sorted().map { "\($0)=\(s.eventsOutByKind[$0]!)" }.joined(separator: " ")
    print("events out      \(s.eventsOut)\(kinds.isEmpty ? "" : "  (\(kinds))")")
    print(String(format: "wall            %.3f s  (%.0f ticks/s)", s.wallSeconds, s.ticksPerSecond))
}


struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Write Tape tick CSV from recordings (format conversion, slicing by symbol/time), with rotation.",
        discussion: """
            Files are <out>/<prefix>-YYYYMMDD-HH[-N].csv.gz, rotated by UTC hour of receive time and by size. \
            Every --flush-every events the current gzip member is closed, so a killed recorder loses \
            at most those events: every earlier row stays readable.
            """)

    @Flag(name: .customLong("from-replay"), help: "Record from recordings (the inputs), merged in replay order.")
    var fromReplay = false

    @OptionGroup var input: InputOptions

    @Option(help: "Output folder.") var out: String
    @Option(help: "File name prefix.") var prefix: String = "tape"
    @Option(help: "Rotate when a file reaches this many MB (compressed).") var maxMb: Double = 256
    @Flag(help: "Do not rotate by UTC hour.") var noHourly = false
    @Option(help: "Close a gzip member every N events.") var flushEvery: Int = 10_000
    @Flag(help: "No per-reject messages on stderr.") var quiet = false

    mutating func run() throws {
        guard fromReplay else { throw ValidationError("only --from-replay is available (live recording comes with the live connectors)") }
        guard !input.inputs.isEmpty else { throw ValidationError("give the recordings to convert") }
        guard maxMb > 0, maxMb.isFinite else {
            throw ValidationError("--max-mb \(maxMb): expected a positive size in MB")
        }
        guard flushEvery > 0 else { throw ValidationError("--flush-every \(flushEvery): expected a positive count") }
        guard !prefix.isEmpty, !prefix.contains("/"), !prefix.contains(".."), prefix != "." else {
            throw ValidationError("--prefix '\(prefix)': a file name prefix, without '/' or '..' (files go in --out)")
        }
        var o: ReplayOptions
        do { o = try input.replayOptions() } catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        o.quiet = quiet
        o.interactive = true
        let s: RecordSummary
        do {
            s = try recordFromReplay(o, directory: out, prefix: prefix, maxBytes: Int64(maxMb * 1_048_576),
                                     rotateHourly: !noHourly, flushEvery: flushEvery)
        } catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        catch let e as OutputFailed { fail(e.description, code: TapeExit.outputFailed) }
        for f in s.files { print(f) }
        if s.interruptSignal != 0 {
            let message = "tape: interrupted: every file written so far is closed and valid\n"
            FileHandle.standardError.write(Data(message.utf8))
            throw ArgumentParser.ExitCode(TapeExit.interrupted(signal: s.interruptSignal))
        }
        print("events written \(s.eventsWritten), filtered \(s.filtered), rejected \(s.ticksRejected), bars not written \(s.barsRefused)")
        if s.eventsWritten == 0 && s.barsRefused > 0 {
            // Tick CSV holds trades and quotes: a bar file has nothing to record. Say so; never a silent 0.
            FileHandle.standardError.write(Data(("tape: record writes trades and quotes (tick CSV); the input holds "
                + "\(s.barsRefused) bars and no ticks: nothing written. Replay bar files directly (tape replay FILE).\n").utf8))
            throw ArgumentParser.ExitCode(TapeExit.nothingProduced)
        }
        if s.ticksRejected > 0 { throw ArgumentParser.ExitCode(TapeExit.inputRejected) }
    }
}
