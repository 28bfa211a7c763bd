import Foundation
import TapeCore
import TapeClock
import TapeIO
import TapeSources
import TapeFeeds
import TapeRecordings
import TapeSinks
import TapeEngine
import TapeReplay
import TapeMetrics
import TapeLogging

/// What `tape live` runs: the connectors, the clock tick period, the recording, the stop conditions —
/// and the replay options it shares with `tape replay` (graph config, filters, run folder, rejects).
public struct LiveOptions {
    public var feeds: [any FeedConnector]
    /// The run folder, graph settings, validation bounds, signals (`pause`), `--snapshot-in/-out`.
    /// `inputs` are the warm-up files (`--warmup`): replayed flat out before the live stream.
    public var run: ReplayOptions
    /// Clock tick period (`live.tick_ms`): ticks close bars and notice stale feeds while markets are quiet.
    public var tickNanos: Int64 = 100_000_000
    /// Where the stamped stream is recorded (nil: in `<run folder>/recording`, unless `record` is false).
    public var recordDirectory: String?
    public var record = true
    public var recordMaxBytes: Int64 = 256 << 20
    /// Wall-time length of the session (nil: until SIGINT/SIGTERM).
    public var durationNanos: Int64?
    /// How long the session waits after asking connectors to stop, for their tasks to end.
    public var shutdownGraceNanos: Int64 = 2_000_000_000
    /// The session's events (`tape.live`); the feeds' go to `tape.feed`.
    public var logger = Logger(label: "tape.live")
    /// Where the feeds' states are registered for `/ready` (`--metrics-listen`), when given.
    public var readiness: Readiness? = nil

    public init(feeds: [any FeedConnector], run: ReplayOptions) {
        self.feeds = feeds
        self.run = run
    }
}

/// The `live` section of summary.json.
public struct LiveSummary: Codable, Sendable {
    public struct Feed: Codable, Sendable {
        public var name: String
        public var peer: String
        public var wireProtocol: String
        public var counters: FeedCounters
        public var connection: ConnectorReport.Counters
        public var latencyNanos: [String: UInt64]
        public var recordings: [String]
        enum CodingKeys: String, CodingKey {
            case name, peer, wireProtocol = "protocol", counters, connection, latencyNanos = "latency_ns", recordings
        }
    }
    public var feeds: [Feed]
    public var tickNanos: Int64
    public var clockTicksRecorded: Int
    public var warmupInputs: [String]
    public var warmupEvents: Int
    public var fatal: String?
    enum CodingKeys: String, CodingKey {
        case feeds, tickNanos = "tick_ns", clockTicksRecorded = "clock_ticks_recorded"
        case warmupInputs = "warmup_inputs", warmupEvents = "warmup_events", fatal
    }
}

/// Feed credentials refused (bad API key): the session stops; `tape live` exits with this code.
public let exitFeedRefused: Int32 = 7

/// Runs one live session: **connectors → inbox (stamped) → `LiveSource` (recorded, decoded,
/// validated) → `Engine` → run-folder sinks**. The engine, the graph and the sinks are exactly
/// replay's (`RunSetup`); only the source and the driver differ. With `run.inputs` (the warm-up), those
/// files are replayed flat out through the same engine first, and live events they already covered are
/// dropped and counted (`WarmupOverlap`).
public func runLive(_ options: LiveOptions) throws -> ReplaySummary {
    precondition(!options.feeds.isEmpty, "a live session needs a feed")
    let wallStart = WallClock.nanos()
    options.run.pause.install(keys: false)
    let run = try RunSetup(options.run, wallStart: wallStart, defaultPrefix: "live")
    let engine = run.engine
    if let path = options.run.snapshotIn {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw UnusableInput("\(path): cannot read snapshot")
        }
        do { try engine.restore(checkpoint: Array(bytes)) } catch { throw UnusableInput("\(path): \(error)") }
    }

    // Warm-up: the history, flat out, through the same engine (no finish: the windows stay open).
    let overlap = WarmupOverlap()
    var warmupStats: [SourceStats] = []
    var warmupLayouts: [InputLayout?] = []
    if !options.run.inputs.isEmpty {
        let opened = try openInputs(options.run, symbols: run.symbols, rejects: run.readerRejects)
        if !options.run.quiet { stateLayouts(opened, options: options.run) }
        let stop = engine.run(ObservedSource(MergedSource(opened), overlap: overlap), driver: WarmupDriver(options.run.pause))
        warmupStats = opened.map(\.stats)
        warmupLayouts = opened.map(\.layout)
        if stop != .endOfStream { options.logger.warning("tape: warm-up stopped early (\(stop))", metadata: ["event": "warmup_stopped"]) }
        options.logger.info("tape: warm-up: \(overlap.observed) events from \(opened.count) files, continuing live",
                            metadata: ["event": "warmup_done", "events": .stringConvertible(overlap.observed)])
    }

    let specs = options.feeds.map(\.spec)
    var readerOptions = ReaderOptions(symbols: run.symbols, rejects: run.readerRejects,
                                      backwardsTolerance: options.run.backwardsTolerance,
                                      maxLineBytes: options.run.maxLineBytes)
    readerOptions.forwardJumpLimit = options.run.forwardJumpLimit
    readerOptions.valueBounds = options.run.valueBounds
    let inbox = Inbox(maxMessageBytes: options.run.maxLineBytes - 32)
    let recordDirectory = options.record ? options.recordDirectory ?? "\(run.directory)/recording" : nil
    let source = try LiveSource(inbox: inbox, feeds: specs, options: readerOptions,
                                recordDirectory: recordDirectory, recordMaxBytes: options.recordMaxBytes,
                                overlap: options.run.inputs.isEmpty ? nil : overlap)
    // A metrics store (`--store influx://…`) also gets each feed's stamp → graph latency percentiles and the
    // rejects; both are read on the engine thread, where they are written.
    for case let metrics as MetricsSink in engine.engineSinks {
        let names = specs.map(\.name)
        let rejects = run.rejects
        metrics.addProvider { [source] in
            var points = names.enumerated().compactMap { index, name -> MetricPoint? in
                let histogram = source.latency[index]
                guard histogram.totalCount > 0 else { return nil }
                return MetricPoint(measurement: "tape_latency", tags: [MetricTag("feed", name)], fields: [
                    MetricField("p50_ns", .integer(Int64(histogram.valueAtPercentile(50)))),
                    MetricField("p99_ns", .integer(Int64(histogram.valueAtPercentile(99)))),
                    MetricField("p999_ns", .integer(Int64(histogram.valueAtPercentile(99.9)))),
                    MetricField("max_ns", .integer(Int64(histogram.max))),
                    MetricField("count", .integer(Int64(histogram.totalCount))),
                ], time: nil)
            }
            points.append(MetricPoint(measurement: "tape_rejects", tags: [],
                                      fields: [MetricField("total", .integer(Int64(rejects.total)))], time: nil))
            return points
        }
    }
    // The alerts (`--alerts`) hear of lost connections and refused credentials.
    let listeners = engine.engineSinks.compactMap { $0 as? any FaultListener }
    let report = ConnectorReport(feeds: options.feeds.map { (name: $0.spec.name, peer: $0.peer) },
                                 logger: Logger(label: "tape.feed"), listeners: listeners)
    options.readiness?.register("feeds") { report.dependencies }
    let connections = ConnectorTasks(options.feeds, inbox: inbox, report: report)
    let ticker = Ticker(inbox: inbox, periodNanos: options.tickNanos)
    ticker.start()
    let driver = LiveDriver(pause: options.run.pause, rejects: run.rejects, report: report, source: source,
                            deadline: options.durationNanos.map { WallClock.nanos() + $0 }) {
        // Stop order: no new messages, no new ticks, then the inbox closes and the source drains it.
        connections.cancel()
        ticker.stop()
        inbox.close()
    }
    options.logger.info(.text("tape: live: \(specs.count) feed(s), tick \(options.tickNanos / 1_000_000) ms"
                        + (recordDirectory.map { ", recording to \($0)" } ?? "")),
                        metadata: ["event": "session_started", "feeds": .array(specs.map { .string($0.name) })])
    let stop = engine.run(source, driver: driver)
    driver.shutdown()
    connections.wait(graceNanos: options.shutdownGraceNanos)

    if let path = options.run.snapshotOut {
        do { try Data(engine.checkpoint()).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw UnusableInput("\(path): cannot write snapshot: \(error)") }
    } else if stop == .endOfStream {
        engine.finish()
    }
    var sinkFailures = engine.close()
    do { try source.closeRecordings() } catch { sinkFailures.append(("recording", error)) }
    do { try run.rejects.close() } catch { sinkFailures.append((run.rejects.name, error)) }

    var summary = engine.summary(stop: stop, configHash: FileHash.sha256(text: options.run.engine.config.canonicalText))
    let wall = Double(WallClock.nanos() - wallStart) / 1e9
    let liveEvents = source.counters.reduce(0) { $0 + $1.events }
    summary.ticksIn = liveEvents + overlap.observed
    summary.ticksRejected = run.rejects.total
    summary.ticksRejectedByReason = run.rejects.byReason
    summary.skipped = run.rejects.skips
    summary.wallSeconds = wall
    summary.ticksPerSecond = wall > 0 ? (Double(summary.ticksIn) / wall).rounded() : 0
    summary.inputs = warmupStats.enumerated().map { index, stats in
        InputSummary(path: options.run.inputs[index], sha256: FileHash.sha256(path: options.run.inputs[index]),
                     format: "warmup", lines: stats.lines, events: stats.events, rejected: stats.rejected,
                     skipped: stats.skipped, bytes: FS.fileSize(options.run.inputs[index]) ?? 0,
                     layout: warmupLayouts[index]?.summary)
    }
    summary.speed = "live"
    summary.snapshotIn = options.run.snapshotIn
    summary.snapshotOut = options.run.snapshotOut
    let connectionCounters = report.snapshot
    let recordings = source.recordingPaths
    summary.live = try JSONValue(encoding: LiveSummary(
        feeds: specs.enumerated().map { index, spec in
            let histogram = source.latency[index]
            var percentiles: [String: UInt64] = [:]
            if histogram.totalCount > 0 {
                for (name, value) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9), ("max", 100.0)] {
                    percentiles[name] = histogram.valueAtPercentile(value)
                }
            }
            return LiveSummary.Feed(name: spec.name, peer: options.feeds[index].peer,
                                    wireProtocol: spec.wireProtocol.rawValue, counters: source.counters[index],
                                    connection: connectionCounters[index], latencyNanos: percentiles,
                                    recordings: recordings.filter { fileName($0).hasPrefix(spec.name + "-") })
        },
        tickNanos: options.tickNanos, clockTicksRecorded: source.clockCounters.messages,
        warmupInputs: options.run.inputs, warmupEvents: overlap.observed, fatal: report.fatal?.description))
    let interruptSignal = options.run.pause.interruptSignal
    if interruptSignal != 0 {
        summary.interrupted = true
        summary.stop = "interrupted"
    }
    summary.exitCode = !sinkFailures.isEmpty ? TapeExit.outputFailed
        : report.fatal != nil ? exitFeedRefused
        : interruptSignal != 0 ? TapeExit.interrupted(signal: interruptSignal)
        : summary.ticksDelivered == 0 ? TapeExit.nothingDelivered
        : run.rejects.total > 0 ? TapeExit.inputRejected : TapeExit.clean
    summary.sinkFailures = sinkFailures.map { SinkFailureSummary(sink: $0.sink, error: "\($0.error)") }
    run.addStores(to: &summary)
    do { try summary.write(to: "\(run.directory)/summary.json") }
    catch { throw OutputFailed(sink: "summary", underlying: error) }
    run.finishStores(summaryPath: "\(run.directory)/summary.json")
    if let first = sinkFailures.first { throw OutputFailed(sink: first.sink, underlying: first.error) }
    let inputSymbols = (0..<run.symbols.count).map { run.symbols.name(SymbolID($0)) }
    return ReplaySummary(runDir: run.directory, summary: summary, inputSymbols: inputSymbols)
}

private func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

/// The warm-up's driver: flat out; SIGINT/SIGTERM stop it.
final class WarmupDriver: EngineDriver {
    let pause: PauseControl
    init(_ pause: PauseControl) { self.pause = pause }
    var paces: Bool { false }
    func checkpoint(delivered: Int, streamTime: Nanos) -> Bool { !pause.isInterrupted }
}

/// Live's half of the run loop: waits when the stream is idle, and decides when the session ends
/// (duration reached, SIGINT/SIGTERM, a feed's credentials refused, the recording or the reject log
/// failing). Ending is asking the connectors and the ticker to stop and closing the inbox: the source
/// then drains what was stamped and says `.end`, so nothing stamped is lost. Reads wall time; the
/// engine never does.
final class LiveDriver: EngineDriver {
    let pause: PauseControl
    let rejects: RejectLog
    let report: ConnectorReport
    let source: LiveSource
    let deadline: Int64?
    private let stopInputs: () -> Void
    private var stopping = false

    init(pause: PauseControl, rejects: RejectLog, report: ConnectorReport, source: LiveSource, deadline: Int64?,
         stopInputs: @escaping () -> Void) {
        self.pause = pause
        self.rejects = rejects
        self.report = report
        self.source = source
        self.deadline = deadline
        self.stopInputs = stopInputs
    }

    var paces: Bool { false }

    func checkpoint(delivered: Int, streamTime: Nanos) -> Bool {
        considerStopping()
        return true
    }

    func idle() -> Bool { idle(pollDue: nil) }

    /// Waits for input at most 2 ms (the stop checks), and no later than a sink wants its poll (the Redis
    /// sink's hand-over: an update due while the feeds are quiet is not held back by the wait).
    func idle(pollDue: Int64?) -> Bool {
        considerStopping()
        if !stopping {
            var wait: Int64 = 2_000_000
            if let pollDue {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                wait = min(wait, max(0, pollDue - (Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))))
            }
            if wait > 0 { source.waitForInput(nanos: wait) }
        }
        return true
    }

    /// Stops the inputs once (idempotent).
    func shutdown() {
        if !stopping {
            stopping = true
            stopInputs()
        }
    }

    private func considerStopping() {
        guard !stopping else { return }
        if pause.isInterrupted || report.fatal != nil || rejects.failure != nil || source.recordingFailure != nil
            || (deadline.map { WallClock.nanos() >= $0 } ?? false) {
            shutdown()
        }
    }
}

/// The clock ticks of a live session: every `periodNanos` of wall time, a tick is stamped into the inbox
/// (a thread of its own, so ticks keep coming while every feed is quiet).
final class Ticker: @unchecked Sendable {
    let inbox: Inbox
    let periodNanos: Int64
    private let stopped = NSCondition()
    private var stopRequested = false
    private var thread: Thread?

    init(inbox: Inbox, periodNanos: Int64) {
        precondition(periodNanos >= 1_000_000, "tick period of at least 1 ms")
        self.inbox = inbox
        self.periodNanos = periodNanos
    }

    func start() {
        let thread = Thread { [self] in
            var next = WallClock.nanos() + periodNanos
            stopped.lock()
            while !stopRequested {
                let wait = Double(next - WallClock.nanos()) / 1e9
                if wait > 0 { _ = stopped.wait(until: Date(timeIntervalSinceNow: wait)) }
                if stopRequested { break }
                if WallClock.nanos() >= next {
                    inbox.pushTick()
                    next += periodNanos
                    // Behind by more than a period (a stalled machine): no burst of ticks, resume the rhythm.
                    let now = WallClock.nanos()
                    if next < now { next = now + periodNanos }
                }
            }
            stopped.unlock()
        }
        thread.name = "tape-ticker"
        self.thread = thread
        thread.start()
    }

    func stop() {
        stopped.lock()
        stopRequested = true
        stopped.broadcast()
        stopped.unlock()
    }
}

/// The connectors' tasks: one each, cancelled together at the end of the session.
final class ConnectorTasks: @unchecked Sendable {
    private var tasks: [Task<Void, Never>] = []
    private let done = DispatchGroup()

    init(_ connectors: [any FeedConnector], inbox: Inbox, report: ConnectorReport) {
        for (index, connector) in connectors.enumerated() {
            done.enter()
            let group = done
            tasks.append(Task.detached {
                await connector.run(feedIndex: index, inbox: inbox, report: report)
                group.leave()
            })
        }
    }

    func cancel() { for task in tasks { task.cancel() } }

    /// Waits for every connector task to end, at most `graceNanos`.
    func wait(graceNanos: Int64) {
        _ = done.wait(timeout: .now() + .nanoseconds(Int(graceNanos)))
    }
}
