import ArgumentParser
import Foundation
import TapeCore
import TapeGraph
import TapeModel
import TapeRecordings
import TapeReplay
import TapeSinks
import TapeClock

/// `tape bench`: in-process figures for `make bench` (the replay-vs-gzip ratio is measured by
/// scripts/bench.sh around whole processes): the graph alone on decoded events in memory, and the
/// model's training time and inference cost per bar.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Print measured figures: graph events/s in memory, model training and inference cost.")

    @Option(help: "Folder holding data/binance-feed (the real captures).")
    var shared: String = "../shared"

    @Option(help: "Events for the graph-alone figure (the real trades and quotes, repeated with shifted times).")
    var graphEvents: Int = 5_000_000

    @Option(help: "Outputs for the sinks figure (the real outputs of a bar file, repeated).")
    var sinkOutputs: Int = 1_000_000

    mutating func run() throws {
        try graphBench()
        try sinkBench()
        for r in try ModelBench.run() { print(r.line) }
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
        while merged.next(&e) { base.append(e) }
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
        let rate = GraphBench.eventsPerSecond(events: events, config: PipelineConfig(), symbols: symbols)
        print(String(format: "graph alone: %d events (real trades+quotes, %d symbols) through the full graph in memory: %.2f M events/s",
                     events.count, symbols.count - 1, rate / 1e6))
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
        while source.next(&event) {
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

        var start = LiveClock.wallNanos()
        let once = RunOutputSink(symbols: symbols, digest: DigestSink(symbols: symbols),
                                 folder: try RunFolderSink(directory: directory + "/once", symbols: symbols,
                                                           withPredictions: false))
        for output in outputs { once.emit(output) }
        try once.close()
        let onceSeconds = Double(LiveClock.wallNanos() - start) / 1e9

        start = LiveClock.wallNanos()
        let digest = DigestSink(symbols: symbols)
        let folder = try RunFolderSink(directory: directory + "/strings", symbols: symbols, withPredictions: false)
        for output in outputs {
            let kind = OutputKind(output)
            var line = output.canonicalLine(symbols: symbols) + "\n"
            line.withUTF8 { digest.consume(line: UnsafeRawBufferPointer($0), kind: kind, symbol: output.symbolID) }
            var row = output.csvRow(symbols: symbols) + "\n"
            row.withUTF8 { folder.write(row: UnsafeRawBufferPointer($0), kind: kind) }
        }
        try folder.close()
        let stringsSeconds = Double(LiveClock.wallNanos() - start) / 1e9
        precondition(digest.hexDigest == once.digest.hexDigest, "both paths hash the same bytes")

        print(String(format: "sinks: %d real outputs (digest + per-symbol digests + CSVs): formatted once %.2f M/s "
                     + "(%.0f ns/output), as Strings twice %.2f M/s (%.0f ns/output)",
                     outputs.count,
                     Double(outputs.count) / onceSeconds / 1e6, onceSeconds * 1e9 / Double(outputs.count),
                     Double(outputs.count) / stringsSeconds / 1e6, stringsSeconds * 1e9 / Double(outputs.count)))
    }
}
