import Foundation
import TapeCore
import TapeClock
import TapeRecordings
import TapeGraph
import TapeSinks

/// Counters the driver keeps while it runs (read by the progress line).
final class RunCounters {
    var delivered = 0
    var filtered = 0
}

/// Runs one replay: inputs → merge (receive time, input order, line order) → filters →
/// `SimulatedClock` (advanced to each event's receive time; due timers fire first) → `Graph` →
/// sinks (digest, run-folder CSVs, extra sinks). Pacing at N× lives here, never in the graph: the
/// outputs (and so the digest) cannot depend on the speed.
public func runReplay(_ o: ReplayOptions) throws -> ReplaySummary {
    let wallStart = LiveClock.wallNanos()
    if o.interactive { o.pause.install(keys: !o.quiet) }
    defer { o.pause.restoreTerminal() }

    let runDir = o.outDir ?? "reports/\(defaultRunID(wallStart))"
    do { try FS.makeDirectories(runDir) } catch { throw UnusableInput("\(runDir): cannot create run folder: \(error)") }

    let symbols = SymbolTable()
    let rejectWriter: LineWriter = try o.makeRejectsWriter(runDir)
    let rejects = RejectLog(writer: rejectWriter, printLimit: o.quiet ? 0 : 5, printer: o.messagePrinter)

    // Open every input first: an unusable one stops the run before anything is written but the folder.
    let sources = try openInputs(o, symbols: symbols, rejects: rejects)
    let inputSizes = o.inputs.map { FS.fileSize($0) ?? 0 }
    let merged = MergedSource(sources)

    let digest = DigestSink(symbols: symbols)
    let folder = try RunFolderSink(directory: runDir, symbols: symbols, withPredictions: !o.extraNodes.isEmpty)
    let runOutput = RunOutputSink(symbols: symbols, digest: digest, folder: folder)
    let fanout = SinkFanout([runOutput] + o.extraSinks)
    let clock = SimulatedClock(start: 0)
    let graph = Graph(config: o.config, clock: clock, symbols: symbols, sink: fanout)
    for n in o.extraNodes { graph.addNode(n) }

    let filter = SymbolFilter(o.symbols)
    let from = o.from ?? Int64.min
    let to = o.to ?? Int64.max
    var e = MarketEvent()
    var delivered = 0, filtered = 0
    var firstReceive: Nanos? = nil, lastReceive: Nanos = 0
    var firstEvent: Nanos = .max, lastEvent: Nanos = .min
    let progress = Progress(enabled: !o.quiet && isatty(2) == 1, totalBytes: inputSizes.reduce(0, +), from: o.from, to: o.to)
    var paceOrigin = LiveClock.wallNanos()
    let factor: Double
    switch o.speed { case .max: factor = 0; case .factor(let f): factor = f }
    var sinceCheck = 0
    /// Closes what the run writes (every file released, fsynced) and throws the first failure: at the end,
    /// or as soon as a sink reports one (checked every 4096 events).
    func closeOutputs() throws {
        var first: OutputFailed? = nil
        do { try rejects.close() } catch { first = OutputFailed(sink: rejects.name, underlying: error) }
        do { try OutputFailed.closeAll([runOutput]) } catch {
            if first == nil { first = error as? OutputFailed ?? OutputFailed(sink: runOutput.name, underlying: error) }
        }
        if let first { throw first }
    }

    while merged.next(&e) {
        if e.eventTime < from || e.eventTime >= to || !filter.accepts(e.symbol, symbols) { filtered += 1; continue }
        if firstReceive == nil { firstReceive = e.receiveTime }
        if factor > 0 {
            let target = paceOrigin + Int64(Double(e.receiveTime - firstReceive!) / factor)
            if target - LiveClock.wallNanos() > 20_000 {
                if o.pause.maybePaused { paceOrigin += o.pause.waitIfPaused() }
                sleepUntil(paceOrigin + Int64(Double(e.receiveTime - firstReceive!) / factor))
            }
        }
        sinceCheck += 1
        if sinceCheck >= 4096 {
            sinceCheck = 0
            if o.pause.maybePaused { paceOrigin += o.pause.waitIfPaused() }
            if progress.enabled { progress.maybePrint(delivered: delivered, simTime: e.receiveTime, sources: sources) }
            if runOutput.failure != nil || rejects.failure != nil { try closeOutputs() }
        }
        clock.advance(to: e.receiveTime)
        graph.onEvent(e)
        delivered += 1
        lastReceive = e.receiveTime
        if e.eventTime < firstEvent { firstEvent = e.eventTime }
        if e.eventTime > lastEvent { lastEvent = e.eventTime }
    }
    graph.finish()
    progress.finish()
    try closeOutputs()

    let wall = Double(LiveClock.wallNanos() - wallStart) / 1e9
    var ticksIn = 0, lines = 0
    for s in sources { ticksIn += s.stats.events; lines += s.stats.lines }
    let rejected = rejects.total
    let exit: Int32 = rejected > 0 ? TapeExit.inputRejected : TapeExit.clean
    let summary = ReplaySummary(runDir: runDir, digest: digest.hexDigest, ticksIn: ticksIn, ticksRejected: rejected,
                                rejectsByReason: rejects.byReason, skipped: rejects.skips, eventsOut: digest.count,
                                eventsOutByKind: digest.countByKind, wallSeconds: wall,
                                ticksPerSecond: wall > 0 ? Double(ticksIn) / wall : 0, exitCode: exit,
                                digestsBySymbol: digest.digestsBySymbol)

    // summary.json
    let speedText: String
    switch o.speed { case .max: speedText = "max"; case .factor(let f): speedText = Numbers.format(f) }
    var inputs: [JSONValue] = []
    for (i, s) in sources.enumerated() {
        inputs.append(.object([
            ("path", .string(o.inputs[i])),
            ("sha256", o.hashInputs ? .string(FileHash.sha256(path: o.inputs[i]) ?? "") : .null),
            ("format", .string(s.format.rawValue)),
            ("lines", .int(Int64(s.stats.lines))),
            ("events", .int(Int64(s.stats.events))),
            ("rejected", .int(Int64(s.stats.rejected))),
            ("skipped", .int(Int64(s.stats.skipped))),
            ("bytes", .int(inputSizes[i])),
        ]))
    }
    var obj: [(String, JSONValue)] = [
        ("tape_version", .string(tapeVersion)),
        ("digest", .string(summary.digest)),
        ("ticks_in", .int(Int64(ticksIn))),
        ("ticks_rejected", .int(Int64(rejected))),
        ("ticks_rejected_by_reason", JSONValue.sortedObject(rejects.byReason)),
        ("skipped", JSONValue.sortedObject(rejects.skips)),
        ("ticks_filtered", .int(Int64(filtered))),
        ("ticks_delivered", .int(Int64(delivered))),
        ("events_out", .int(Int64(digest.count))),
        ("events_out_by_kind", JSONValue.sortedObject(digest.countByKind)),
        ("events_out_by_symbol", JSONValue.sortedObject(digest.countsBySymbol)),
        ("digests_by_symbol", .object(summary.digestsBySymbol.sorted { $0.key < $1.key }
            .map { ($0.key, JSONValue.string($0.value)) })),
        ("wall_seconds", .number(wall)),
        ("ticks_per_second", .number(summary.ticksPerSecond.rounded())),
        ("inputs", .array(inputs)),
        ("config_hash", .string(FileHash.sha256(text: o.configCanonicalText.isEmpty ? o.config.canonicalText : o.configCanonicalText))),
        ("graph", .object([
            ("trades", .int(Int64(graph.counters.trades))),
            ("quotes", .int(Int64(graph.counters.quotes))),
            ("bars_in", .int(Int64(graph.counters.bars))),
            ("late_ticks", .int(Int64(graph.counters.lateTicks))),
            ("bad_ticks", .int(Int64(graph.counters.badTicks))),
            ("timeframes", .array(o.config.timeframes.map { .string($0.description) })),
        ])),
        ("speed", .string(speedText)),
        ("from_ns", o.from.map { .int($0) } ?? .null),
        ("to_ns", o.to.map { .int($0) } ?? .null),
        ("symbols", o.symbols.map { .array($0.map { .string($0) }) } ?? .null),
        ("first_event_ns", firstEvent == .max ? .null : .int(firstEvent)),
        ("last_event_ns", lastEvent == .min ? .null : .int(lastEvent)),
        ("first_receive_ns", firstReceive.map { .int($0) } ?? .null),
        ("last_receive_ns", firstReceive == nil ? .null : .int(lastReceive)),
        ("exit_code", .int(Int64(exit))),
    ]
    obj.append(contentsOf: o.extraSummary)
    do { try FS.writeText("\(runDir)/summary.json", JSONValue.object(obj).render() + "\n") }
    catch { throw OutputFailed(sink: "summary", underlying: error) }
    return summary
}

let tapeVersion = "0.1.0"

/// Opens every input of a run (in command-line order: the merge tie-break after receive time).
/// A missing file or an undetectable format is `UnusableInput`.
func openInputs(_ o: ReplayOptions, symbols: SymbolTable, rejects: RejectHandler) throws -> [EventSource] {
    try o.inputs.enumerated().map { (i, path) in
        guard FS.exists(path) else { throw UnusableInput("\(path): no such file") }
        let ro = ReaderOptions(symbols: symbols, rejects: rejects, sourceIndex: UInt32(i), symbol: o.symbol,
                               venue: o.venue, backwardsTolerance: o.backwardsTolerance)
        do { return try openSource(path: path, format: o.format, options: ro) }
        catch { throw UnusableInput("\(error)") }
    }
}

func defaultRunID(_ wall: Int64) -> String {
    let iso = TimeUtil.iso(wall) // 2024-08-09T00:00:54.123456789Z
    let compact = iso.prefix(19).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
    return "replay-" + compact.replacingOccurrences(of: "T", with: "-")
}

/// `--symbols` filter: full `venue:SYMBOL` or bare `SYMBOL`, case-insensitive. Decided once per symbol id.
final class SymbolFilter {
    private let wanted: Set<String>?
    private var decided: [UInt8] = []   // 0 unknown, 1 yes, 2 no
    init(_ list: [String]?) { wanted = list.map { Set($0.map { $0.uppercased() }) } }

    @inline(__always)
    func accepts(_ id: SymbolID, _ table: SymbolTable) -> Bool {
        guard let wanted else { return true }
        let i = Int(id)
        if i < decided.count, decided[i] != 0 { return decided[i] == 1 }
        if i >= decided.count { decided.append(contentsOf: repeatElement(0, count: i + 1 - decided.count)) }
        let name = table.name(id).uppercased()
        let bare = name.split(separator: ":").last.map(String.init) ?? name
        let ok = wanted.contains(name) || wanted.contains(bare)
        decided[i] = ok ? 1 : 2
        return ok
    }
}

/// The progress line on stderr: events/s, simulated time, percent, ETA. Quiet unless stderr is a terminal.
final class Progress {
    let enabled: Bool
    private let totalBytes: Int64
    private let start = LiveClock.wallNanos()
    private var lastPrint: Int64 = 0
    private var printedAny = false
    private let from: Nanos?, to: Nanos?
    init(enabled: Bool, totalBytes: Int64, from: Nanos?, to: Nanos?) {
        self.enabled = enabled; self.totalBytes = totalBytes; self.from = from; self.to = to
    }

    func maybePrint(delivered: Int, simTime: Nanos, sources: [EventSource]) {
        let now = LiveClock.wallNanos()
        if now - lastPrint < 250_000_000 { return }
        lastPrint = now
        var read: Int64 = 0
        for s in sources { read += s.stats.compressedBytes }
        let frac = totalBytes > 0 ? min(1, Double(read) / Double(totalBytes)) : 0
        let elapsed = Double(now - start) / 1e9
        let rate = elapsed > 0 ? Double(delivered) / elapsed : 0
        let eta = frac > 0.001 ? elapsed * (1 - frac) / frac : 0
        let line = String(format: "\r%@  %.0f ev/s  %5.1f%%  ETA %.0fs  ", TimeUtil.iso(simTime), rate, frac * 100, eta)
        fputs(line, stderr)
        printedAny = true
    }

    func finish() { if enabled && printedAny { fputs("\n", stderr) } }
}
