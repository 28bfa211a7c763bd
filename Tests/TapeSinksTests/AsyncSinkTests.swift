import Foundation
import XCTest
import TapeCore
import TapeIO
import TapeGraph
import TapeSinks

/// A sink that checks what reaches it: bars in index order (`trades`), names resolvable through the
/// worker's table. Optionally slow (sleeps per output) to exercise back-pressure.
final class CheckingSink: EngineSink {
    let names: SymbolTable
    let delayMicroseconds: UInt32
    private(set) var received = 0
    private(set) var outOfOrder = 0
    private(set) var wrongNames = 0
    private(set) var flushes = 0
    private(set) var closed = false
    /// Expected name of each id (the test's own rule: id k is "SYM\(k)").
    init(names: SymbolTable, delayMicroseconds: UInt32 = 0) {
        self.names = names
        self.delayMicroseconds = delayMicroseconds
    }
    var name: String { "checking" }
    var failure: (any Error)? { nil }
    func emit(_ output: GraphOutput) {
        guard case .bar(let bar) = output else { XCTFail("only bars are sent"); return }
        if bar.trades != received { outOfOrder += 1 }
        if names.name(bar.symbol) != "SYM\(bar.symbol)" { wrongNames += 1 }
        received += 1
        if delayMicroseconds > 0 { usleep(delayMicroseconds) }
    }
    func flush() throws { flushes += 1 }
    func close() throws { closed = true }
}

final class AsyncSinkTests: XCTestCase {
    func testOrderAndNamesArePreservedOverOneMillionOutputs() throws {
        let outputCount = 1_000_000
        let symbolEvery = 100_000
        let symbols = SymbolTable()
        var checking: CheckingSink? = nil
        let sink = AsyncSink(name: "checking", capacity: 1024, symbols: symbols) { names in
            let made = CheckingSink(names: names)
            checking = made
            return made
        }
        var symbol: SymbolID = 0
        for index in 0..<outputCount {
            // New names appear while the worker runs: they must reach its table in id order.
            if index % symbolEvery == 0 {
                let next = SymbolID(symbols.count)
                symbol = symbols.intern("SYM\(next)")
                XCTAssertEqual(symbol, next)
            }
            sink.emit(bar(index, symbol: symbol))
        }
        try sink.close()
        let wrapped = try XCTUnwrap(checking)
        XCTAssertEqual(wrapped.received, outputCount)
        XCTAssertEqual(wrapped.outOfOrder, 0)
        XCTAssertEqual(wrapped.wrongNames, 0)
        XCTAssertTrue(wrapped.closed)
        let counters = sink.counters
        XCTAssertEqual(counters.enqueued, outputCount)
        XCTAssertEqual(counters.written, outputCount)
        XCTAssertEqual(counters.droppedAfterFailure, 0)
        XCTAssertLessThanOrEqual(counters.highWaterMark, 1024)
    }

    func testBackPressureIsCountedWithASlowSink() throws {
        let capacity = 4
        let outputCount = 200
        let symbols = SymbolTable()
        let symbol = symbols.intern("SYM1")
        var checking: CheckingSink? = nil
        let sink = AsyncSink(name: "slow", capacity: capacity, symbols: symbols) { names in
            let made = CheckingSink(names: names, delayMicroseconds: 200)
            checking = made
            return made
        }
        for index in 0..<outputCount { sink.emit(bar(index, symbol: symbol)) }
        try sink.flush()
        let counters = sink.counters
        XCTAssertEqual(counters.highWaterMark, capacity, "a slow sink fills the queue")
        // The worker frees a claimed batch at once, so the producer waits about once per `capacity` outputs.
        XCTAssertGreaterThanOrEqual(counters.blockedEnqueues, outputCount / capacity / 2, "waited for room")
        // The last enqueue waits for outputCount - capacity outputs of 200 µs each; the producer's own
        // work is microseconds, so nearly all of that is blocked time (half of it asserted).
        let delayNanoseconds: Int64 = 200_000
        XCTAssertGreaterThan(counters.blockedNanoseconds, Int64(outputCount - 2 * capacity) * delayNanoseconds / 2)
        XCTAssertEqual(counters.written, outputCount)
        try sink.close()
        XCTAssertEqual(checking?.outOfOrder, 0)
    }

    func testFlushAcknowledgesEverythingEnqueuedBefore() throws {
        let directory = temporaryDirectory("async-flush")
        let symbols = SymbolTable()
        let symbol = symbols.intern("spot:BTCUSDT")
        let sink = try AsyncSink(name: "run-folder", capacity: 64, symbols: symbols) { names in
            try RunFolderSink(directory: directory, symbols: names, withPredictions: false)
        }
        let firstCount = 5_000
        for index in 0..<firstCount { sink.emit(bar(index, symbol: symbol)) }
        try sink.flush()
        // After flush returns the rows are in the file (read back from disk, not from the sink).
        var text = try String(contentsOfFile: directory + "/bars.csv", encoding: .utf8)
        var rows = text.split(separator: "\n")
        XCTAssertEqual(rows.count, firstCount + 1)
        XCTAssertTrue(rows.last!.hasPrefix("spot:BTCUSDT,1m,"), String(rows.last!))
        XCTAssertTrue(rows.last!.hasSuffix(",\(firstCount - 1)"), String(rows.last!))
        for index in firstCount..<(2 * firstCount) { sink.emit(bar(index, symbol: symbol)) }
        try sink.close()
        try sink.close()  // idempotent
        text = try String(contentsOfFile: directory + "/bars.csv", encoding: .utf8)
        rows = text.split(separator: "\n")
        XCTAssertEqual(rows.count, 2 * firstCount + 1)
    }

    func testWrappedSinkFailureSurfacesAndTheProducerNeverBlocks() throws {
        let directory = try directoryWithFullDevice("async-full", fileName: "bars.csv")
        let symbols = SymbolTable()
        let symbol = symbols.intern("spot:BTCUSDT")
        let sink = try AsyncSink(name: "run-folder", capacity: 16, symbols: symbols) { names in
            try RunFolderSink(directory: directory, symbols: names, withPredictions: false)
        }
        // Far more than one file buffer: the first write(2) fails while the producer keeps emitting.
        let outputCount = 200_000
        for index in 0..<outputCount { sink.emit(bar(index, symbol: symbol)) }
        let failure = try XCTUnwrap(sink.failure, "the wrapped sink's write error is surfaced")
        XCTAssertTrue("\(failure)".contains(directory + "/bars.csv"), "\(failure)")
        XCTAssertTrue("\(failure)".contains("No space left on device"), "\(failure)")
        XCTAssertThrowsError(try sink.flush())
        XCTAssertThrowsError(try sink.close())
        XCTAssertThrowsError(try sink.close(), "close stays failed")
        let counters = sink.counters
        XCTAssertGreaterThan(counters.droppedAfterFailure, 0)
        XCTAssertEqual(counters.written + counters.droppedAfterFailure, outputCount, "every output accounted for")
    }
}
