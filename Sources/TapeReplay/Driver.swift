import Foundation
import TapeLogging
import TapeCore
import TapeClock
import TapeIO
import TapeSources
import TapeRecordings
import TapeGraph
import TapeSinks
import TapeEngine
import TapeMetrics

/// Runs one replay. What is replay's own lives here: opening the recordings, the run folder and the
/// reject log, pacing at N×, pause and the progress line. The rest — merge order aside — is the
/// engine's: inputs → merge (receive time, input order, line order) → `Engine` (filters, clock advanced
/// to each receive time, graph, digests, sinks). Pacing never reaches the graph: the outputs (and so
/// the digests) cannot depend on the speed.
public func runReplay(_ options: ReplayOptions) throws -> ReplaySummary {
    let wallStart = WallClock.nanos()
    if options.interactive { options.pause.install(keys: !options.quiet) }
    defer { options.pause.restoreTerminal() }

    let run = try RunSetup(options, wallStart: wallStart, defaultPrefix: "replay")
    let runDir = run.directory
    let symbols = run.symbols
    let rejects = run.rejects
    let readerRejects = run.readerRejects
    let engine = run.engine
    // A continued run restores before any reader interns a name (ids must mean what they meant).
    if let path = options.snapshotIn {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw UnusableInput("\(path): cannot read snapshot")
        }
        do { try engine.restore(checkpoint: Array(bytes)) } catch { throw UnusableInput("\(path): \(error)") }
        guard engine.positions.count <= options.inputs.count else {
            throw UnusableInput("\(path): the snapshot was taken on \(engine.positions.count) inputs, "
                                + "this run has \(options.inputs.count)")
        }
    }

    // Open every input first: an unusable one stops the run before anything is written but the folder.
    let opened = try openInputs(options, symbols: symbols, rejects: readerRejects)
    if !options.quiet { stateLayouts(opened, options: options) }
    let skipping = opened.enumerated().map { index, source in
        SkippingSource(source, count: index < engine.positions.count ? engine.positions[index] : 0,
                       skipping: { readerRejects.muted = $0 })
    }
    let sources: [EventSource] = options.snapshotIn == nil ? opened : skipping
    let inputSizes = options.inputs.map { FS.fileSize($0) ?? 0 }
    // A metrics store (`--store influx://…`) also gets the rejects (read on the engine thread, where the
    // readers write them).
    for case let metrics as MetricsSink in engine.engineSinks {
        metrics.addProvider {
            [MetricPoint(measurement: "tape_rejects", tags: [], fields: [MetricField("total", .integer(Int64(rejects.total)))],
                         time: nil)]
        }
    }
    let merged = MergedSource(sources)
    let pacer = ReplayPacer(speed: options.speed, pause: options.pause, rejects: rejects,
                            progress: Progress(enabled: !options.quiet && isatty(2) == 1,
                                               totalBytes: inputSizes.reduce(0, +),
                                               sources: sources))
    let stop = engine.run(merged, driver: pacer)
    if let short = skipping.first(where: { $0.missing > 0 }), options.snapshotIn != nil {
        throw UnusableInput("\(short.name): ended \(short.missing) items before the position in \(options.snapshotIn!)"
                            + " (not the input the snapshot was taken on)")
    }
    if let path = options.snapshotOut {
        // The run ends in a checkpoint: open windows stay open in it, for the run that continues.
        do { try Data(engine.checkpoint()).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw UnusableInput("\(path): cannot write snapshot: \(error)") }
    } else if stop == .endOfStream {
        engine.finish()
    }
    pacer.progress.finish()
    // Close everything once (every file released and fsynced, even after a failure), then report.
    var sinkFailures = engine.close()
    do { try rejects.close() } catch { sinkFailures.append((rejects.name, error)) }

    var summary = engine.summary(stop: stop, configHash: FileHash.sha256(text: options.engine.config.canonicalText))
    let wall = Double(WallClock.nanos() - wallStart) / 1e9
    var ticksIn = 0
    for source in sources { ticksIn += source.stats.events }
    summary.ticksIn = ticksIn - engine.counters.clockTicks
    summary.ticksRejected = rejects.total
    summary.ticksRejectedByReason = rejects.byReason
    summary.skipped = rejects.skips
    summary.wallSeconds = wall
    summary.ticksPerSecond = wall > 0 ? (Double(summary.ticksIn) / wall).rounded() : 0
    summary.inputs = sources.enumerated().map { index, source in
        let stats = source.stats
        return InputSummary(path: options.inputs[index],
                            sha256: options.hashInputs ? FileHash.sha256(path: options.inputs[index]) : nil,
                            format: source.formatName, lines: stats.lines, events: stats.events,
                            rejected: stats.rejected, skipped: stats.skipped, bytes: inputSizes[index],
                            layout: source.layout?.summary)
    }
    summary.snapshotIn = options.snapshotIn
    summary.snapshotOut = options.snapshotOut
    switch options.speed {
    case .max: summary.speed = "max"
    case .factor(let factor): summary.speed = Numbers.format(factor)
    }
    // An input whose format did not fit (header refused: nothing read from it) makes the run unusable.
    let unusable = sources.compactMap { $0.stats.unusable }
    for message in unusable { options.messagePrinter("tape: " + message) }
    let interruptSignal = options.pause.interruptSignal
    if interruptSignal != 0 {
        summary.interrupted = true
        summary.stop = "interrupted"
    }
    summary.exitCode = !sinkFailures.isEmpty ? TapeExit.outputFailed
        : interruptSignal != 0 ? TapeExit.interrupted(signal: interruptSignal)
        : !unusable.isEmpty ? TapeExit.unusableInput
        : summary.ticksDelivered == 0 && summary.ticksIn > 0 ? TapeExit.nothingDelivered
        : outputWarnings(summary).producedNothing && options.snapshotOut == nil ? TapeExit.nothingProduced
        : rejects.total > 0 ? TapeExit.inputRejected : TapeExit.clean
    summary.sinkFailures = sinkFailures.map { SinkFailureSummary(sink: $0.sink, error: "\($0.error)") }
    run.addStores(to: &summary)
    do { try summary.write(to: "\(runDir)/summary.json") }
    catch { throw OutputFailed(sink: "summary", underlying: error) }
    run.finishStores(summaryPath: "\(runDir)/summary.json")
    // The run stopped on an output it could not write: summary.json says so (exit_code 5) where it
    // could be written, and the caller gets the error (the CLI names the file and exits 5).
    if let first = sinkFailures.first { throw OutputFailed(sink: first.sink, underlying: first.error) }
    let inputSymbols = (0..<symbols.count).map { symbols.name(SymbolID($0)) }
    return ReplaySummary(runDir: runDir, summary: summary, inputSymbols: inputSymbols)
}

/// A run folder that cannot be created or written (`--out` names a file, a read-only folder).
public struct RunFolderUnusable: Error, CustomStringConvertible {
    let path: String
    let detail: String
    public var description: String { "\(path): cannot use as run folder: \(detail)" }
}

/// What every run of the engine opens before its first item, whoever drives it (replay, `tape live`):
/// the run folder (made and checked writable), the reject log, the digest and run-folder sinks, the
/// engine. A folder that cannot be used is `OutputFailed` (exit 5).
public struct RunSetup {
    public let directory: String
    public let symbols: SymbolTable
    public let rejects: RejectLog
    /// The readers' reject handler (muted while a continued run skips what its checkpoint covers).
    public let readerRejects: MutableRejects
    public let engine: Engine
    /// Unique per run: the folder's name and 8 random hex digits (rows in the stores carry it).
    public let runID: String
    /// The sinks with a summary section (the stores).
    public let reportingSinks: [ReportingSink]

    public init(_ options: ReplayOptions, wallStart: Int64, defaultPrefix: String) throws {
        directory = options.outDir ?? "reports/\(defaultRunID(wallStart, prefix: defaultPrefix))"
        let folderName = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
        runID = folderName + "-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        // A run folder that cannot be made or written is an output failure (exit 5), not a bug.
        do { try FS.makeDirectories(directory) } catch {
            throw OutputFailed(sink: "run-folder", underlying: RunFolderUnusable(path: directory, detail: "\(error)"))
        }
        guard FS.isWritableDirectory(directory) else {
            let detail = "not a writable folder"
            throw OutputFailed(sink: "run-folder", underlying: RunFolderUnusable(path: directory, detail: detail))
        }
        symbols = SymbolTable()
        let rejectWriter: LineWriter
        do { rejectWriter = try options.makeRejectsWriter(directory) }
        catch { throw OutputFailed(sink: "rejects", underlying: error) }
        rejects = RejectLog(writer: rejectWriter, printLimit: options.quiet ? 0 : 5, printer: options.messagePrinter)
        readerRejects = MutableRejects(rejects)
        // The run folder and the digests are fed by one sink that formats each output once.
        let digest = DigestSink(symbols: symbols)
        let folder: RunFolderSink
        do {
            folder = try RunFolderSink(directory: directory, symbols: symbols,
                                       withPredictions: options.engine.extraNodes.contains { $0.emitsPredictions },
                                       withTrading: options.engine.config.trading != nil)
        } catch { throw OutputFailed(sink: "run-folder", underlying: error) }
        let runOutput = RunOutputSink(symbols: symbols, digest: digest, folder: folder)
        let context = RunContext(directory: directory, runID: runID, kind: defaultPrefix, symbols: symbols,
                                 configHash: FileHash.sha256(text: options.engine.config.canonicalText),
                                 inputs: options.describedInputs ?? options.inputs,
                                 printer: TapeLogging.lines(Logger(label: "tape.run"), level: .notice))
        var built: [EngineSink] = []
        for factory in options.sinkFactories {
            do { built.append(try factory(context)) } catch {
                // Those already connected release their threads; this run writes nothing.
                _ = try? OutputFailed.closeAll(built)
                throw OutputFailed(sink: "store", underlying: error)
            }
        }
        reportingSinks = built.compactMap { $0 as? ReportingSink }
        // The report's tick view (tick_series.csv, written at close; not in the digest).
        let tickSeries = TickSeriesSink(directory: directory, symbols: symbols)
        engine = Engine(settings: options.engine, symbols: symbols,
                        sinks: [runOutput, tickSeries] + options.extraSinks + built, digest: digest)
    }
}

extension RunSetup {
    /// summary.json `run_id` and `stores` (each store's counters), when the run has stores.
    public func addStores(to summary: inout RunSummary) {
        // The trading node's metrics (summary.json `trading`).
        for node in engine.settings.extraNodes {
            if let section = node.summarySection, section.key == "trading" { summary.trading = section.value }
        }
        guard !reportingSinks.isEmpty else { return }
        var stores: [(String, JSONValue)] = [("run_id", .string(runID))]
        for sink in reportingSinks.sorted(by: { $0.name < $1.name }) { stores.append((sink.name, sink.report)) }
        summary.stores = .object(stores)
    }

    /// Gives the written summary.json to the stores (PostgreSQL keeps it with the run).
    public func finishStores(summaryPath: String) {
        guard !reportingSinks.isEmpty, let data = FileManager.default.contents(atPath: summaryPath) else { return }
        let json = String(decoding: data, as: UTF8.self)
        for sink in reportingSinks { sink.runFinished(summaryJSON: json) }
    }
}

/// The readers' reject handler: forwards to the run's reject log, except while a continued run skips
/// the items its checkpoint covers (those records were reported by the run that took it).
public final class MutableRejects: RejectHandler {
    public let log: RejectLog
    public var muted = false
    public init(_ log: RejectLog) { self.log = log }
    public func reject(_ reject: Reject) { if !muted { log.reject(reject) } }
    public func skipped(_ what: String, count: Int) { if !muted { log.skipped(what, count: count) } }
}

/// Opens every input of a run (in command-line order: the merge tie-break after receive time).
/// A missing file or an undetectable format is `UnusableInput`.
/// Captures of one symbol from different markets whose venue nothing names are kept apart by the
/// market their messages tell (`CaptureOrigins`), with a warning.
public func openInputs(_ options: ReplayOptions, symbols: SymbolTable, rejects: RejectHandler) throws -> [EventSource] {
    for path in options.inputs where !(FS.exists(path) || path == GzipStream.standardInputPath) {
        throw UnusableInput("\(path): no such file")
    }
    let origins: (venues: [String?], warnings: [String])
    do { origins = try CaptureOrigins.separate(paths: options.inputs, format: options.format, venue: options.venue) }
    catch { throw UnusableInput("\(error)") }
    for warning in origins.warnings { options.messagePrinter("tape: warning: " + warning) }
    return try options.inputs.enumerated().map { (index, path) in
        var readerOptions = ReaderOptions(symbols: symbols, rejects: rejects, sourceIndex: UInt32(index),
                                          symbol: options.symbol, venue: options.venue ?? origins.venues[index],
                                          backwardsTolerance: options.backwardsTolerance,
                                          maxLineBytes: options.maxLineBytes)
        readerOptions.forwardJumpLimit = options.forwardJumpLimit
        readerOptions.valueBounds = options.valueBounds
        readerOptions.bars = options.bars
        do { return try openSource(path: path, format: options.format, options: readerOptions) }
        catch { throw UnusableInput("\(error)") }
    }
}

/// Says once per input what its reader decided about the layout (bar files), and warns when input bars
/// are longer than a timeframe of the graph.
public func stateLayouts(_ sources: [EventSource], options: ReplayOptions) {
    for source in sources {
        guard let layout = source.layout else { continue }
        options.messagePrinter("tape: \(source.name): \(layout.text)")
        if let length = layout.barLengthNanos,
           let warning = barLengthWarning(length, timeframes: options.engine.config.timeframes.map(\.nanos)) {
            options.messagePrinter("tape: warning: \(source.name): \(warning)")
        }
    }
}

/// The graph takes every input bar for a one-minute bar ending at its event time (`Graph.onBar`): a
/// timeframe is built right only when it is a multiple of the input bars' length. nil when all are.
public func barLengthWarning(_ lengthNanos: Nanos, timeframes: [Nanos]) -> String? {
    let misfits = timeframes.filter { $0 >= TimeUtil.nsPerMinute && $0 % lengthNanos != 0 }
    guard lengthNanos != TimeUtil.nsPerMinute, !misfits.isEmpty else { return nil }
    let names = misfits.map(BarOptions.lengthText).joined(separator: ", ")
    return "bars of \(BarOptions.lengthText(lengthNanos)): the graph's timeframes \(names) are not multiples of it; "
        + "the graph places each input bar in the last minute before its end, so those bars are not "
        + "\(names) bars (use timeframes that are multiples of the bar length)"
}

func defaultRunID(_ wall: Int64, prefix: String = "replay") -> String {
    let iso = TimeUtil.iso(wall) // 2024-08-09T00:00:54.123456789Z
    let compact = iso.prefix(19).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
    return prefix + "-" + compact.replacingOccurrences(of: "T", with: "-")
}

/// Replay's half of the run loop: pacing at N× (sleep until `origin + (t - t0) / N` in wall time),
/// pause/resume, and the progress line. Reads wall time; the engine never does.
final class ReplayPacer: EngineDriver {
    let factor: Double
    let pause: PauseControl
    let progress: Progress
    /// The reject log is written by the readers, not a graph sink: its health is checked here.
    let rejects: RejectLog
    private var firstReceive: Nanos? = nil
    private var paceOrigin = WallClock.nanos()
    /// Below this lead (ns) a paced replay does not sleep.
    private static let sleepThresholdNs: Int64 = 20_000

    init(speed: ReplaySpeed, pause: PauseControl, rejects: RejectLog, progress: Progress) {
        switch speed {
        case .max: factor = 0
        case .factor(let value): factor = value
        }
        self.pause = pause
        self.rejects = rejects
        self.progress = progress
    }

    var paces: Bool { factor > 0 }

    func willDeliver(receiveTime: Nanos) {
        guard let first = firstReceive else { firstReceive = receiveTime; paceOrigin = WallClock.nanos(); return }
        let target = paceOrigin + Int64(min(Double(receiveTime - first) / factor, 4e18))
        if target - WallClock.nanos() > ReplayPacer.sleepThresholdNs {
            if pause.maybePaused { waitWhilePaused() }
            // A slow paced replay still updates its progress line every 250 ms while it sleeps.
            let progress = self.progress
            sleepUntil(paceOrigin + Int64(min(Double(receiveTime - first) / factor, 4e18)), pause: pause,
                       every: progress.enabled ? { progress.maybePrint(delivered: nil, streamTime: nil) } : nil)
        }
        delivered += 1
        if progress.enabled { progress.note(delivered: delivered, streamTime: receiveTime) }
    }

    /// Pauses (shown on the progress line), then shifts pacing by the time paused.
    private func waitWhilePaused() {
        if progress.enabled { progress.showPaused() }
        paceOrigin += pause.waitIfPaused()
        if progress.enabled { progress.maybePrint(delivered: nil, streamTime: nil, force: true) }
    }

    private var delivered = 0

    func checkpoint(delivered: Int, streamTime: Nanos) -> Bool {
        if pause.maybePaused { waitWhilePaused() }
        if progress.enabled { progress.maybePrint(delivered: delivered, streamTime: streamTime) }
        // SIGINT/SIGTERM stop the run; so does a reject log that cannot be written.
        return !pause.isInterrupted && rejects.failure == nil
    }

    /// File sources are never idle; a merge of them neither.
    func idle() -> Bool { preconditionFailure("a replay source reported idle") }
}

/// The progress line on stderr: events/s, stream time, percent of compressed input read, ETA.
/// Quiet unless stderr is a terminal.
final class Progress {
    let enabled: Bool
    private let totalBytes: Int64
    private let sources: [EventSource]
    private let start = WallClock.nanos()
    private var lastPrint: Int64 = 0
    private var printedAny = false
    /// At most one line per this many ns.
    private static let intervalNs: Int64 = 250_000_000

    init(enabled: Bool, totalBytes: Int64, sources: [EventSource]) {
        self.enabled = enabled; self.totalBytes = totalBytes; self.sources = sources
    }

    /// Fraction of the compressed input consumed so far (0...1).
    var fractionRead: Double {
        var read: Int64 = 0
        for source in sources { read += source.stats.compressedBytes }
        return totalBytes > 0 ? min(1, Double(read) / Double(totalBytes)) : 0
    }

    private var lastDelivered = 0
    private var lastStreamTime: Nanos = 0

    /// Remembers the newest figures without printing (the paced path, per event).
    func note(delivered: Int, streamTime: Nanos) {
        lastDelivered = delivered
        lastStreamTime = streamTime
    }

    /// `PAUSED` on the progress line until the run resumes.
    func showPaused() {
        fputs(String(format: "\r%@  PAUSED (kill -USR1 %d, or p / space, to resume)            ",
                     lastStreamTime == 0 ? "(before the first event)" : TimeUtil.iso(lastStreamTime), getpid()), stderr)
        printedAny = true
    }

    /// Prints at most every 250 ms (unless `force`); nil figures: the last ones noted.
    func maybePrint(delivered: Int?, streamTime: Nanos?, force: Bool = false) {
        if let delivered { lastDelivered = delivered }
        if let streamTime { lastStreamTime = streamTime }
        let delivered = lastDelivered, streamTime = lastStreamTime
        let now = WallClock.nanos()
        if !force && now - lastPrint < Progress.intervalNs { return }
        lastPrint = now
        let fraction = fractionRead
        let elapsed = Double(now - start) / 1e9
        let rate = elapsed > 0 ? Double(delivered) / elapsed : 0
        let eta = fraction > 0.001 ? elapsed * (1 - fraction) / fraction : 0
        let line = String(format: "\r%@  %.0f ev/s  %5.1f%%  ETA %.0fs  ",
                          streamTime == 0 ? "(waiting for the first event)" : TimeUtil.iso(streamTime), rate,
                          fraction * 100, eta)
        fputs(line, stderr)
        printedAny = true
    }

    func finish() { if enabled && printedAny { fputs("\n", stderr) } }
}
