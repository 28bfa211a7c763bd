import XCTest
import Foundation
import TapeCore
import TapeClock
import TapeGraph
import TapeModel
import TapeRecordings
import TapeSources

/// Graph snapshot → restore → continue equals an uninterrupted run. The reference is the uninterrupted
/// run of the same events: its outputs must equal the outputs up to the split point followed by the
/// outputs of a new graph (new clock, new symbol table) restored from the snapshot and fed the rest.
final class GraphSnapshotTests: XCTestCase {
    struct Recording {
        var name: String
        var events: [MarketEvent]
        var symbols: SymbolTable
    }

    static func dataDirectory() throws -> URL {
        let directory = Support.packageRoot().appendingPathComponent("../shared/data").standardized
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("binance-feed").path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("real data not found at \(directory.path)")
            }
            throw XCTSkip("real data not found at \(directory.path)")
        }
        return directory
    }

    static func read(_ path: String, symbol: String? = nil, symbols: SymbolTable = SymbolTable(),
                     sourceIndex: UInt32 = 0) throws -> Recording {
        let options = ReaderOptions(symbols: symbols, rejects: RejectCollector(), sourceIndex: sourceIndex,
                                    symbol: symbol)
        let source = try openSource(path: path, format: nil, options: options)
        var events: [MarketEvent] = []
        var event = MarketEvent()
        while source.next(&event) == .event { events.append(event) }
        return Recording(name: (path as NSString).lastPathComponent, events: events, symbols: symbols)
    }

    static func captures() throws -> [String] {
        let directory = try dataDirectory().appendingPathComponent("binance-feed")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".gz") }.sorted()
        XCTAssertEqual(names.count, 8, "the eight Binance captures")
        return names.map { directory.appendingPathComponent($0).path }
    }

    static func btcBars() throws -> Recording {
        try read(try dataDirectory().appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path,
                 symbol: "BTC-PERP")
    }

    /// A graph with its own clock and sink, and optionally a model node.
    final class Harness {
        let clock = SimulatedClock()
        let sink = CollectingSink()
        let graph: Graph
        let symbols: SymbolTable

        init(config: PipelineConfig, symbols: SymbolTable, model: InferenceNode?) throws {
            self.symbols = symbols
            graph = Graph(config: config, clock: clock, symbols: symbols, sink: sink)
            if let model { graph.addNode(try InferenceNode(booster: model.booster, meta: model.meta)) }
        }

        func feed(_ events: ArraySlice<MarketEvent>) {
            for event in events {
                clock.advance(to: event.receiveTime)
                graph.onEvent(event)
            }
        }

        var lines: [String] { sink.outputs.map { $0.canonicalLine(symbols: symbols) } }
    }

    /// Split points: 10 %, 50 %, 90 %, just before the first event of a new minute past a third of the
    /// stream (a window boundary), and both ends.
    static func splitPoints(_ events: [MarketEvent]) -> [Int] {
        let count = events.count
        var points = [0, count / 10, count / 2, count * 9 / 10, count]
        let minute: Nanos = 60_000_000_000
        if let boundary = (max(count / 3, 1)..<count).first(where: {
            events[$0].eventTime / minute > events[$0 - 1].eventTime / minute
        }) {
            points.append(boundary)
        }
        return points
    }

    /// Every capture in one stream: one symbol table, events in receive-time order (then file order, then
    /// line order, as the replay merge does), so timers of several symbols interleave.
    static func mergedCaptures() throws -> Recording {
        let symbols = SymbolTable()
        var events: [MarketEvent] = []
        for (index, path) in try captures().enumerated() {
            events += try read(path, symbols: symbols, sourceIndex: UInt32(index)).events
        }
        let order = events.indices.sorted {
            (events[$0].receiveTime, $0) < (events[$1].receiveTime, $1)
        }
        return Recording(name: "all captures merged", events: order.map { events[$0] }, symbols: symbols)
    }

    /// Runs the whole recording, then every split; returns the outputs of the whole run.
    @discardableResult
    func checkSplits(_ recording: Recording, config: PipelineConfig, model: InferenceNode? = nil,
                     file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let events = recording.events
        XCTAssertGreaterThan(events.count, 1000, "\(recording.name) decodes", file: file, line: line)
        let whole = try Harness(config: config, symbols: recording.symbols, model: model)
        whole.feed(events[...])
        whole.graph.finish()
        let reference = whole.lines
        XCTAssertGreaterThan(reference.count, 0, file: file, line: line)

        for split in GraphSnapshotTests.splitPoints(events) {
            let first = try Harness(config: config, symbols: recording.symbols, model: model)
            first.feed(events[..<split])
            let snapshot = first.graph.snapshot()

            let second = try Harness(config: config, symbols: SymbolTable(), model: model)
            try second.graph.restore(from: snapshot)
            XCTAssertEqual(second.symbols.count, recording.symbols.count, file: file, line: line)
            XCTAssertTrue(second.graph.snapshot() == snapshot, "\(recording.name) @\(split): restore then snapshot "
                          + "gives the same bytes", file: file, line: line)
            XCTAssertEqual(second.graph.counters, first.graph.counters, file: file, line: line)
            second.feed(events[split...])
            second.graph.finish()

            let joined = first.lines + second.lines
            XCTAssertEqual(joined.count, reference.count, "\(recording.name) split at \(split)", file: file, line: line)
            if let index = zip(joined, reference).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                XCTFail("\(recording.name) split at \(split)/\(events.count): output \(index) is \(joined[index]), "
                        + "expected \(reference[index])", file: file, line: line)
            }
            XCTAssertEqual(second.graph.counters, whole.graph.counters, "counters carry over", file: file, line: line)
        }
        return reference
    }

    func testEveryCaptureSplitAnywhereEqualsTheUninterruptedRun() throws {
        var config = PipelineConfig()
        config.timeframes = [Timeframe(seconds: 5), Timeframe(seconds: 60), Timeframe(seconds: 300)]
        // Short enough that the captures' quiet spells fire stale-feed timers across the splits.
        config.staleFeed.after = 3_000_000_000
        for path in try GraphSnapshotTests.captures() {
            try checkSplits(try GraphSnapshotTests.read(path), config: config)
        }
    }

    /// Several symbols in one stream: window and stale-feed timers of different symbols interleave, so
    /// the order of restored timers shows in the outputs.
    func testAllCapturesMergedSplitAnywhereEqualsTheUninterruptedRun() throws {
        var config = PipelineConfig()
        config.timeframes = [Timeframe(seconds: 1), Timeframe(seconds: 5), Timeframe(seconds: 60)]
        config.staleFeed.after = 1_000_000_000
        config.allowedLateness = 500_000_000
        let reference = try checkSplits(try GraphSnapshotTests.mergedCaptures(), config: config)
        XCTAssertGreaterThan(reference.filter { $0.contains("stale_feed") }.count, 0)
    }

    func testCapturesUnderTheDefaultConfig() throws {
        for path in try GraphSnapshotTests.captures().prefix(2) {
            try checkSplits(try GraphSnapshotTests.read(path), config: PipelineConfig())
        }
    }

    func trainedModel() throws -> InferenceNode {
        let collector = TrainingCollector()
        for output in ModelBench.syntheticOutputs(bars: 4000, seed: 7) { collector.emit(output) }
        var training = TrainingConfig()
        training.params.rounds = 20
        training.walkForward.folds = 2
        let run = try TrainingRun.run(dataset: collector.dataset(), config: training,
                                      outDir: Support.tempDir("snapshot-model").path)
        return try InferenceNode(modelPath: run.modelPath)
    }

    func testBarFileWithTheModelNodeSplitAnywhereEqualsTheUninterruptedRun() throws {
        let model = try trainedModel()
        let recording = try GraphSnapshotTests.btcBars()
        let outputs = try checkSplits(recording, config: PipelineConfig(), model: model)
        XCTAssertGreaterThan(outputs.count, 10_000)
        XCTAssertGreaterThan(outputs.filter { $0.contains("price_spike") || $0.contains("volume_spike") }.count, 10)
        // The model node did predict (its state is what the split carries over).
        let harness = try Harness(config: PipelineConfig(), symbols: recording.symbols, model: model)
        harness.feed(recording.events[...])
        XCTAssertGreaterThan(harness.sink.outputs.filter { $0.kindName == "predictions" }.count, 1000)
    }

    func testCaptureWithTheModelNode() throws {
        let model = try trainedModel()
        try checkSplits(try GraphSnapshotTests.read(try GraphSnapshotTests.captures()[7]), config: PipelineConfig(),
                        model: model)
    }

    // MARK: refusals and damage

    func midSnapshot(config: PipelineConfig = PipelineConfig()) throws -> (Recording, [UInt8]) {
        let recording = try GraphSnapshotTests.read(try GraphSnapshotTests.captures()[0])
        let harness = try Harness(config: config, symbols: recording.symbols, model: nil)
        harness.feed(recording.events[..<(recording.events.count / 2)])
        return (recording, harness.graph.snapshot())
    }

    func restoreError(_ bytes: [UInt8], config: PipelineConfig = PipelineConfig()) -> SnapshotError? {
        let clock = SimulatedClock()
        let graph = Graph(config: config, clock: clock, symbols: SymbolTable(), sink: CollectingSink())
        do {
            try graph.restore(from: bytes)
            return nil
        } catch let error as SnapshotError {
            return error
        } catch {
            XCTFail("not a SnapshotError: \(error)")
            return nil
        }
    }

    func testTruncatedOrDamagedSnapshotsThrowAndNeverTrap() throws {
        let (_, bytes) = try midSnapshot()
        XCTAssertNil(restoreError(bytes))
        for length in [0, 1, 7, 8, 16, 24, 40, bytes.count / 3, bytes.count / 2, bytes.count - 17, bytes.count - 1] {
            XCTAssertNotNil(restoreError(Array(bytes.prefix(length))), "cut to \(length) bytes")
        }
        XCTAssertNotNil(restoreError(bytes + [0]), "a byte too many")
        for position in [0, 9, 20, 30, bytes.count / 2, bytes.count - 12, bytes.count - 1] {
            var damaged = bytes
            damaged[position] ^= 0x5A
            XCTAssertNotNil(restoreError(damaged), "byte \(position) flipped")
        }
        XCTAssertTrue(restoreError(Array(bytes.prefix(bytes.count / 2)))!.message.contains("truncated"))
        var flipped = bytes
        flipped[bytes.count / 2] ^= 1
        XCTAssertTrue(restoreError(flipped)!.message.contains("checksum"))
    }

    /// Garbage behind a valid checksum (as a buggy writer would make): the reader's own checks catch it.
    func testGarbageWithAValidChecksumThrows() throws {
        let (_, bytes) = try midSnapshot()
        func resealed(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
            var body = Array(bytes.prefix(bytes.count - 16))
            edit(&body)
            var footer = SnapshotWriter()
            footer.append(FNV1a64.hash(body))
            return body + footer.bytes + Array(bytes.suffix(8))
        }
        XCTAssertNil(restoreError(resealed { _ in }))
        // The symbol count (after magic, version, config hash) made huge.
        let huge = restoreError(resealed { body in for index in 24..<32 { body[index] = 0xFF } })
        XCTAssertTrue(huge?.message.contains("count") ?? false, "\(String(describing: huge))")
        // The body cut in the middle and resealed: a count runs past the end.
        XCTAssertNotNil(restoreError(resealed { body in body.removeLast(body.count / 3) }))
    }

    func testAnotherVersionOrConfigIsRefused() throws {
        let (_, bytes) = try midSnapshot()
        var version3 = bytes
        version3[8] = 3
        let versionError = restoreError(version3)
        XCTAssertEqual(versionError?.message, "snapshot version 3, this build reads version 2")

        var other = PipelineConfig()
        other.smaPeriod = 7
        let configError = restoreError(bytes, config: other)
        XCTAssertTrue(configError?.message.hasPrefix("snapshot was taken under another config") ?? false,
                      "\(String(describing: configError))")

        // Another downstream node set.
        let harness = try Harness(config: PipelineConfig(), symbols: SymbolTable(), model: try trainedModel())
        XCTAssertThrowsError(try harness.graph.restore(from: bytes)) { error in
            XCTAssertTrue("\(error)".contains("downstream nodes"), "\(error)")
        }
        // A symbol table that already names ids differently.
        let symbols = SymbolTable()
        _ = symbols.intern("not-in-the-snapshot")
        let taken = try Harness(config: PipelineConfig(), symbols: symbols, model: nil)
        XCTAssertThrowsError(try taken.graph.restore(from: bytes)) { error in
            XCTAssertTrue("\(error)".contains("symbol id 1"), "\(error)")
        }
    }

    func testReaderThrowsOnShortOrImplausibleInput() {
        var writer = SnapshotWriter()
        writer.append(Int64(-5))
        writer.append(2.5)
        writer.append("spot:BTCUSDT")
        writer.append(true)
        var reader = SnapshotReader(bytes: writer.bytes)
        XCTAssertEqual(try reader.readInt64(), -5)
        XCTAssertEqual(try reader.readDouble(), 2.5)
        XCTAssertEqual(try reader.readString(), "spot:BTCUSDT")
        XCTAssertEqual(try reader.readBool(), true)
        XCTAssertNoThrow(try reader.expectEnd("test"))
        XCTAssertThrowsError(try reader.readUInt64())

        var short = SnapshotReader(bytes: [1, 2, 3])
        XCTAssertThrowsError(try short.readInt64()) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        var flag = SnapshotReader(bytes: [7])
        XCTAssertThrowsError(try flag.readBool())
        var count = SnapshotReader(bytes: [255, 255, 255, 255, 255, 255, 255, 127])
        XCTAssertThrowsError(try count.readCount())
        var badText = SnapshotWriter()
        badText.appendBlock([0xFF, 0xFE])
        var text = SnapshotReader(bytes: badText.bytes)
        XCTAssertThrowsError(try text.readString())
    }
}
