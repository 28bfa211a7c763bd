import Foundation
import TapeCore
import TapeEngine
import TapeGraph
import TapeMetrics
import TapeRecordings
import TapeSinks
import TapeSources
import TapeTestSupport
import XCTest

/// Real captures (../shared/data) through an `Engine` with the metrics sink: InfluxDB receives the tick
/// counts that were delivered; with InfluxDB down the run finishes, unblocked, with the same digests.
final class MetricsSinkTests: XCTestCase {
    /// Two spot captures and one COIN-M capture: three symbols, two feeds (`spot`, `cm`).
    private static let captures = ["spot-btcusdt_20240808.gz", "spot-ethusdt_20240808.gz", "cm-ethusd_perp_20240808.gz"]

    private final class FlatOut: EngineDriver {
        let paces = false
    }

    private func capturePaths() throws -> [String] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/data/binance-feed").standardized
        let paths = MetricsSinkTests.captures.map { directory.appendingPathComponent($0).path }
        for path in paths where !FileManager.default.fileExists(atPath: path) {
            try skipOrFail(missing: "real capture \(path) (../shared/data)")
        }
        return paths
    }

    /// The captures merged in receive-time order, as `tape replay` reads several inputs.
    private func openCaptures(_ paths: [String], symbols: SymbolTable) throws -> EventSource {
        let sources = try paths.enumerated().map { index, path in
            try openSource(path: path, format: nil,
                           options: ReaderOptions(symbols: symbols, rejects: RejectCollector(),
                                                  sourceIndex: UInt32(index)))
        }
        return MergedSource(sources)
    }

    /// Market events per symbol name, counted straight from the source (no engine, no sink).
    private func eventsPerSymbol(_ paths: [String]) throws -> [String: Int] {
        let symbols = SymbolTable()
        let source = try openCaptures(paths, symbols: symbols)
        var counts: [String: Int] = [:]
        var event = MarketEvent()
        while source.next(&event) == .event {
            if event.kind == .clockTick { continue }
            counts[symbols.name(event.symbol), default: 0] += 1
        }
        return counts
    }

    private struct Run {
        var engine: Engine
        var seconds: TimeInterval
        var closeSeconds: TimeInterval
    }

    /// One replay of the captures, flat out, with `extraSinks`; finished and closed.
    private func run(_ paths: [String], sinks makeSinks: (SymbolTable) -> [GraphSink]) throws -> Run {
        let symbols = SymbolTable()
        let source = try openCaptures(paths, symbols: symbols)
        var settings = EngineSettings()
        settings.checkInterval = 1_024
        let engine = Engine(settings: settings, symbols: symbols, sinks: makeSinks(symbols))
        let started = Date()
        XCTAssertEqual(engine.run(source, driver: FlatOut()), .endOfStream)
        engine.finish()
        let seconds = Date().timeIntervalSince(started)
        let closing = Date()
        let failures = engine.close()
        XCTAssertTrue(failures.isEmpty, "\(failures.map { "\($0.sink): \($0.error)" })")
        return Run(engine: engine, seconds: seconds, closeSeconds: Date().timeIntervalSince(closing))
    }

    /// InfluxDB receives the metrics: per symbol, the sum of the `count` fields equals the events the
    /// source holds (counted independently) and the engine delivered; per feed the same; outputs per kind
    /// equal the digest's counts; bodies were gzip-compressed and every line was written.
    func testInfluxReceivesTheTickCountsThatWereDelivered() throws {
        try InfluxServer.require()
        let paths = try capturePaths()
        let expected = try eventsPerSymbol(paths)
        XCTAssertEqual(expected.count, 3, "\(expected)")
        let database = InfluxServer.freshDatabase("sink")
        defer { InfluxServer.drop(database) }
        var writerSettings = InfluxWriter.Settings(endpoint: InfluxEndpoint(baseURL: InfluxServer.baseURL,
                                                                            database: database))
        writerSettings.batchLinesMax = 40
        writerSettings.batchIntervalNanoseconds = 50_000_000
        let log = CollectedLines()
        let writer = InfluxWriter(settings: writerSettings, logger: log.logger)
        var sink: MetricsSink? = nil
        var providerCalls = 0
        let run = try run(paths) { symbols in
            let metrics = MetricsSink(writer: writer, symbols: symbols, tags: [MetricTag("run", "test")],
                                      intervalNanoseconds: 20_000_000)
            metrics.addProvider {
                providerCalls += 1
                return [MetricPoint("tape_test_provider", tags: ["part": "cache"],
                                    fields: ["hit_rate": .float(0.75)])]
            }
            sink = metrics
            return [metrics]
        }
        let metrics = try XCTUnwrap(sink)
        XCTAssertEqual(run.engine.counters.delivered, expected.values.reduce(0, +))
        XCTAssertGreaterThan(metrics.samples, 2, "sampled during the run, not only at close")
        XCTAssertEqual(providerCalls, metrics.samples)

        let counters = writer.counters
        XCTAssertTrue(counters.isBalanced, "\(counters)")
        XCTAssertEqual(counters.linesWritten, counters.linesAccepted, "\(counters)")
        XCTAssertEqual(counters.failures, 0)
        XCTAssertGreaterThan(counters.batchesWritten, 1)
        XCTAssertLessThan(counters.bytesCompressed, counters.bytesUncompressed, "gzip was used")

        let ticks = try InfluxServer.grouped("sum(\"count\")", from: MetricsSink.ticksMeasurement, by: "symbol",
                                             database: database)
        XCTAssertEqual(ticks.mapValues { Int($0) }, expected)
        let totals = try InfluxServer.grouped("max(\"total\")", from: MetricsSink.ticksMeasurement, by: "symbol",
                                              database: database)
        XCTAssertEqual(totals.mapValues { Int($0) }, expected)
        var expectedFeeds: [String: Int] = [:]
        for (symbol, count) in expected { expectedFeeds[String(symbol.split(separator: ":")[0]), default: 0] += count }
        XCTAssertEqual(expectedFeeds.keys.sorted(), ["cm", "spot"])
        let feeds = try InfluxServer.grouped("sum(\"count\")", from: MetricsSink.feedTicksMeasurement, by: "feed",
                                             database: database)
        XCTAssertEqual(feeds.mapValues { Int($0) }, expectedFeeds)
        let outputs = try InfluxServer.grouped("sum(\"count\")", from: MetricsSink.outputsMeasurement, by: "kind",
                                               database: database)
        XCTAssertEqual(outputs.mapValues { Int($0) }, run.engine.digest.countByKind)
        let pipeline = try InfluxServer.statement(
            "SELECT count(lag_ns), last(ticks_total) FROM \(MetricsSink.pipelineMeasurement) WHERE run = 'test'",
            database: database)
        XCTAssertEqual(pipeline.first?.numbers("count"), [Double(metrics.samples)], "one pipeline point per sample")
        XCTAssertEqual(pipeline.first?.numbers("last"), [Double(run.engine.counters.delivered)])
        let provided = try InfluxServer.statement("SELECT count(hit_rate) FROM tape_test_provider WHERE run = 'test'",
                                                  database: database)
        XCTAssertEqual(provided.first?.numbers("count"), [Double(metrics.samples)], "provider points, tagged")
        XCTAssertEqual(log.all.count, 1, "one state change: writing; \(log.all)")
    }

    /// The CLI's factory: a bad URL is refused before any run; a good one builds a sink per run with the
    /// run's symbols, its writer logging through the logger given; its summary.json section tells what the writer did.
    func testTheRunFactoryChecksTheURLAndTheSinkReports() throws {
        XCTAssertThrowsError(try MetricsSink.factory(url: "postgres://127.0.0.1/tape"))
        let port = closedLoopbackPort()
        let log = CollectedLines()
        let factory = try MetricsSink.factory(url: "influx://127.0.0.1:\(port)/ops", logger: log.logger)
        let symbols = SymbolTable()
        let context = RunContext(directory: NSTemporaryDirectory(), runID: "run-1", kind: "live", symbols: symbols,
                                 configHash: "-", inputs: [], printer: log.printer)
        let sink = try XCTUnwrap(try factory(context) as? MetricsSink)
        XCTAssertEqual(sink.tags, [MetricTag("mode", "live")])
        XCTAssertNil(sink.failure)
        let btc = symbols.intern("spot:BTCUSDT")
        for index in 0..<10 {
            sink.record(.trade(eventTime: Int64(index), receiveTime: Int64(index), symbol: btc, price: 1, size: 1))
        }
        let closing = Date()
        try sink.close()
        XCTAssertLessThan(Date().timeIntervalSince(closing), 5.5)
        guard case .object(let members) = sink.report else { return XCTFail("\(sink.report)") }
        let report = Dictionary(members, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(report["server"], .string("127.0.0.1:\(port)"))
        XCTAssertEqual(report["database"], .string("ops"))
        XCTAssertEqual(report["samples"], .int(1))
        XCTAssertEqual(report["lines_written"], .int(0))
        XCTAssertEqual(report["lines_accepted"], report["lines_dropped_at_close"], "\(members)")
        XCTAssertTrue(log.all.first?.hasPrefix("tape: metrics: influx 127.0.0.1:\(port) (database ops): not written")
                      ?? false, "\(log.all)")
    }

    /// InfluxDB unreachable (a closed port): the replay finishes with the same per-symbol digests as a
    /// run without the sink, the writer counted failures and drops, and nothing blocked for long.
    func testWithInfluxDownTheReplayFinishesWithTheSameDigests() throws {
        let paths = try capturePaths()
        let plain = try run(paths) { _ in [] }
        XCTAssertGreaterThan(plain.engine.digest.count, 0)

        let closed = "http://127.0.0.1:\(closedLoopbackPort())"
        var settings = InfluxWriter.Settings(endpoint: InfluxEndpoint(baseURL: closed, database: "tape"))
        settings.bufferLinesMax = 64
        settings.batchLinesMax = 16
        settings.batchIntervalNanoseconds = 10_000_000
        settings.retryInitialNanoseconds = 5_000_000
        settings.retryMaxNanoseconds = 40_000_000
        settings.closeWaitNanosecondsMax = 2_000_000_000
        let log = CollectedLines()
        let writer = InfluxWriter(settings: settings, logger: log.logger)
        var sink: MetricsSink? = nil
        let down = try run(paths) { symbols in
            let metrics = MetricsSink(writer: writer, symbols: symbols, intervalNanoseconds: 5_000_000)
            sink = metrics
            return [metrics]
        }
        XCTAssertEqual(down.engine.digest.hexDigest, plain.engine.digest.hexDigest)
        XCTAssertEqual(down.engine.digest.digestsBySymbol, plain.engine.digest.digestsBySymbol)
        XCTAssertEqual(down.engine.counters, plain.engine.counters)
        XCTAssertEqual(down.engine.sinkFailures.count, 0, "metrics never fail the run")
        XCTAssertGreaterThan(try XCTUnwrap(sink).samples, 2)

        let counters = writer.counters
        XCTAssertEqual(counters.linesWritten, 0)
        XCTAssertGreaterThan(counters.failures, 0)
        XCTAssertEqual(counters.outages, 1)
        XCTAssertGreaterThan(counters.linesDroppedBufferFull, 0, "\(counters)")
        XCTAssertEqual(counters.linesDropped, counters.linesAccepted, "\(counters)")
        XCTAssertTrue(counters.isBalanced, "\(counters)")
        // Nothing blocked for long: the run took about what it takes without the sink (generous bounds for
        // a loaded machine), and close gave up within its limit.
        XCTAssertLessThan(down.seconds, plain.seconds * 2 + 5, "run \(down.seconds) s vs \(plain.seconds) s")
        XCTAssertLessThan(down.closeSeconds, 2.5)
        XCTAssertEqual(log.all.count, 2, "not written, closed: \(log.all)")
    }
}
