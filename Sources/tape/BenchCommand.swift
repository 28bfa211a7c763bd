import ArgumentParser
import Foundation
import TapeCore
import TapeGraph
import TapeModel
import TapeRecordings
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources
import TapeSinks
import TapeClock

/// `tape bench`: in-process figures for `make bench` (the replay-vs-gzip ratio is measured by
/// scripts/bench.sh around whole processes): the graph alone on decoded events in memory, the read
/// loop alone on one real capture against `gzip -dc`, and the model's training time and inference
/// cost per bar. Figures only: nothing here passes or fails (unit tests assert no timings).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Print measured figures: graph events/s, read loop vs gzip -dc, model training and inference.")

    @Option(help: "Folder holding data/binance-feed (the real captures).")
    var shared: String = "../shared"

    @Option(help: "Events for the graph-alone figure (the real trades and quotes, repeated with shifted times).")
    var graphEvents: Int = 5_000_000

    @Option(help: "Outputs for the sinks figure (the real outputs of a bar file, repeated).")
    var sinkOutputs: Int = 1_000_000

    mutating func run() throws {
        try graphBench()
        try readLoopBench()
        try sinkBench()
        for r in try ModelBench.run() { print(r.line) }
    }

    /// Best wall time of `runs` runs of `body`, in seconds.
    func best(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var fastest = Double.infinity
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return fastest
    }

    /// The read loop (gzip → lines → decode → validate) on one real capture, threaded and on one
    /// thread, as a ratio to `gzip -dc` of the same file spawned from here (best of 3 each).
    func readLoopBench() throws {
        let name = "usdm-btcusdt_20240808.gz"
        let path = shared + "/data/binance-feed/" + name
        guard FileManager.default.fileExists(atPath: path) else { print("read loop: \(path) not found"); return }
        let gzipSeconds = try best(3) {
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
            gzip.arguments = ["-c", "gzip -dc '\(path)' > /dev/null"]
            try gzip.run()
            gzip.waitUntilExit()
        }
        for threaded in [true, false] {
            var events = 0
            let seconds = try best(3) {
                let options = ReaderOptions(symbols: SymbolTable(), rejects: RejectCollector())
                let reader = try BinanceCaptureReader(path: path, options: options, threaded: threaded)
                var event = MarketEvent()
                events = 0
                while reader.next(&event) == .event { events += 1 }
            }
            print(String(format: "read loop %@, %@: %d events in %.1f ms, %.2f x gzip -dc (%.1f ms, spawned)",
                         threaded ? "threaded" : "one thread", name, events, seconds * 1e3, seconds / gzipSeconds,
                         gzipSeconds * 1e3))
        }
    }

    func graphBench() throws {
        let dir = shared + "/data/binance-feed"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".gz") }.sorted()
        guard !files.isEmpty else { print("graph: no captures in \(dir)"); return }
        let symbols = SymbolTable()
        let rejects = RejectCollector()
        let sources = try files.enumerated().map { (i, f) in
            try openSource(path: dir + "/" + f, format: nil,
                           options: ReaderOptions(symbols: symbols, rejects: rejects, sourceIndex: UInt32(i)))
        }
        let merged = MergedSource(sources)
        var base: [MarketEvent] = []
        var e = MarketEvent()
        while merged.next(&e) == .event { base.append(e) }
        guard let first = base.first, let last = base.last else { return }
        // Repeat the session, shifted in time, to the requested size (a one-minute gap between passes).
        let span = (last.receiveTime - first.receiveTime) + 60_000_000_000
        var events: [MarketEvent] = []
        events.reserveCapacity(graphEvents)
        var pass: Int64 = 0
        while events.count < graphEvents {
            for var x in base {
                if events.count >= graphEvents { break }
                x.receiveTime += pass * span; x.eventTime += pass * span
                x.sequence += pass * 100_000_000_000
                events.append(x)
            }
            pass += 1
        }
        let rate = graphEventsPerSecond(events: events, config: PipelineConfig(), symbols: symbols)
        print(String(format: "graph alone: %d events (real trades+quotes, %d symbols) through the full graph in memory: %.2f M events/s",
                     events.count, symbols.count - 1, rate / 1e6))
        let engineRate = engineEventsPerSecond(events: events, config: PipelineConfig(), symbols: symbols)
        print(String(format: "engine path: the same events through Engine.process (filters, clock, graph, digests): %.2f M events/s",
                     engineRate / 1e6))
    }

    /// The run's own sinks (global + per-symbol digest and run-folder CSVs) on real outputs: each
    /// output formatted once into a reused byte buffer (`RunOutputSink`, what a replay does) against the
    /// previous path, the canonical line and the CSV row each built as a String, fed to the same sinks.
    func sinkBench() throws {
        let path = shared + "/data/bars/btc-perp-20211231-20220201_1m.csv.gz"
        guard FS.exists(path) else { print("sinks: no bar file at \(path)"); return }
        let symbols = SymbolTable()
        let readerOptions = ReaderOptions(symbols: symbols, rejects: RejectCollector(), sourceIndex: 0)
        let source = try openSource(path: path, format: nil, options: readerOptions)
        let clock = SimulatedClock()
        let collected = CollectingSink()
        let graph = Graph(config: PipelineConfig(), clock: clock, symbols: symbols, sink: collected)
        var event = MarketEvent()
        while source.next(&event) == .event {
            clock.advance(to: event.receiveTime)
            graph.onEvent(event)
        }
        graph.finish()
        guard !collected.outputs.isEmpty else { return }
        var outputs: [GraphOutput] = []
        outputs.reserveCapacity(sinkOutputs)
        while outputs.count < sinkOutputs { outputs += collected.outputs.prefix(sinkOutputs - outputs.count) }
        let directory = NSTemporaryDirectory() + "tape-bench-sinks-\(getpid())"
        try FS.makeDirectories(directory + "/once")
        try FS.makeDirectories(directory + "/strings")
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var start = WallClock.nanos()
        let once = RunOutputSink(symbols: symbols, digest: DigestSink(symbols: symbols),
                                 folder: try RunFolderSink(directory: directory + "/once", symbols: symbols,
                                                           withPredictions: false))
        for output in outputs { once.emit(output) }
        try once.close()
        let onceSeconds = Double(WallClock.nanos() - start) / 1e9

        start = WallClock.nanos()
        let digest = DigestSink(symbols: symbols)
        let folder = try RunFolderSink(directory: directory + "/strings", symbols: symbols, withPredictions: false)
        for output in outputs {
            let kind = OutputKind(output)
            var line = output.canonicalLine(symbols: symbols) + "\n"
            line.withUTF8 { digest.consume(line: UnsafeRawBufferPointer($0), kind: kind, symbol: output.symbol) }
            var row = output.csvRow(symbols: symbols) + "\n"
            row.withUTF8 { folder.write(row: UnsafeRawBufferPointer($0), kind: kind) }
        }
        try folder.close()
        let stringsSeconds = Double(WallClock.nanos() - start) / 1e9
        precondition(digest.hexDigest == once.digest.hexDigest, "both paths hash the same bytes")

        print(String(format: "sinks: %d real outputs (digest + per-symbol digests + CSVs): formatted once %.2f M/s "
                     + "(%.0f ns/output), as Strings twice %.2f M/s (%.0f ns/output)",
                     outputs.count,
                     Double(outputs.count) / onceSeconds / 1e6, onceSeconds * 1e9 / Double(outputs.count),
                     Double(outputs.count) / stringsSeconds / 1e6, stringsSeconds * 1e9 / Double(outputs.count)))
    }
}

/// Graph throughput on events already decoded in memory: the clock advanced to each receive time and
/// the event delivered, outputs counted. Wall time is read here, in the CLI, never in the graph.
func graphEventsPerSecond(events: [MarketEvent], config: PipelineConfig, symbols: SymbolTable) -> Double {
    final class CountingSink: GraphSink {
        var count = 0
        func emit(_ output: GraphOutput) { count += 1 }
    }
    let clock = SimulatedClock()
    let graph = Graph(config: config, clock: clock, symbols: symbols, sink: CountingSink())
    let start = WallClock.nanos()
    for event in events {
        clock.advance(to: event.receiveTime)
        graph.onEvent(event)
    }
    graph.finish()
    let seconds = Double(WallClock.nanos() - start) / 1e9
    return Double(events.count) / max(seconds, 1e-9)
}

/// The same through the engine's per-item path (`Engine.process`: input position, filters, clock,
/// graph, global and per-symbol digests), with no run folder.
func engineEventsPerSecond(events: [MarketEvent], config: PipelineConfig, symbols: SymbolTable) -> Double {
    let engine = Engine(settings: EngineSettings(config: config), symbols: symbols, sinks: [])
    let start = WallClock.nanos()
    for event in events { engine.process(event) }
    engine.finish()
    let seconds = Double(WallClock.nanos() - start) / 1e9
    return Double(events.count) / max(seconds, 1e-9)
}
