import Foundation
import XCTest
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

final class MergeTests: XCTestCase {
    func open(_ f: String, _ idx: UInt32, _ syms: SymbolTable, _ c: RejectCollector) throws -> any EventSource {
        try BinanceCaptureReader(path: try FeedsTestSupport.binance(f),
                                 options: ReaderOptions(symbols: syms, rejects: c, sourceIndex: idx))
    }

    /// spot + usdm BTCUSDT 2024-08-08 merged, checked against an independent stable sort of both files'
    /// events by (receiveTime, source index) (each file is in receive-time order, so the greedy merge
    /// equals that sort).
    func testMergeOfTwoRealFilesEqualsIndependentSort() throws {
        let syms = SymbolTable()
        let a = try FeedsTestSupport.readAll(try FeedsTestSupport.binance("spot-btcusdt_20240808.gz"), sourceIndex: 0, symbols: syms)
        let b = try FeedsTestSupport.readAll(try FeedsTestSupport.binance("usdm-btcusdt_20240808.gz"), sourceIndex: 1, symbols: syms)
        XCTAssertTrue(zip(a.events, a.events.dropFirst()).allSatisfy { $0.receiveTime <= $1.receiveTime })
        XCTAssertTrue(zip(b.events, b.events.dropFirst()).allSatisfy { $0.receiveTime <= $1.receiveTime })
        // Independent expectation: tag with (time, source, position), sort.
        var tagged: [(Int64, Int, Int, MarketEvent)] = []
        for (i, e) in a.events.enumerated() { tagged.append((e.receiveTime, 0, i, e)) }
        for (i, e) in b.events.enumerated() { tagged.append((e.receiveTime, 1, i, e)) }
        tagged.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        let expected = tagged.map(\.3)

        let c = RejectCollector()
        let syms2 = SymbolTable()
        let m = MergedSource([try open("spot-btcusdt_20240808.gz", 0, syms2, c), try open("usdm-btcusdt_20240808.gz", 1, syms2, c)])
        var got: [MarketEvent] = []
        var e = MarketEvent()
        while m.next(&e) == .event { got.append(e) }
        XCTAssertEqual(got.count, 9757 + 28040 + 21313 + 66089)
        XCTAssertNil(FeedsTestSupport.firstDifference(got, expected))
        XCTAssertEqual(m.stats.events, got.count)
        XCTAssertEqual(Set(got.map { syms2.name($0.symbol) }), ["spot:BTCUSDT", "usdm:BTCUSDT"])
    }

    /// Ties on receive time: lower source index first, then each source's own order. Uses tiny
    /// captures written at run time with identical timestamps.
    func testTieBreakAndSingleSourceAndEmpty() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func trade(_ ts: Int, _ id: Int) -> String {
            "\(ts) {\"stream\":\"btcusdt@trade\",\"data\":{\"s\":\"BTCUSDT\",\"t\":\(id),\"p\":\"1\",\"q\":\"1\",\"T\":1723161255342,\"m\":true}}"
        }
        try FeedsTestSupport.writeGzip([trade(10, 1), trade(10, 2), trade(30, 3)], to: dir + "/spot-a.gz")
        try FeedsTestSupport.writeGzip([trade(5, 11), trade(10, 12), trade(10, 13), trade(40, 14)], to: dir + "/spot-b.gz")
        try FeedsTestSupport.writeGzip(["1 {\"lastUpdateId\":1}"], to: dir + "/spot-empty.gz")
        let syms = SymbolTable(), c = RejectCollector()
        func src(_ n: String, _ i: UInt32) throws -> any EventSource {
            try BinanceCaptureReader(path: dir + "/" + n, options: ReaderOptions(symbols: syms, rejects: c, sourceIndex: i, venue: n))
        }
        func run(_ m: MergedSource) -> [Int64] { var e = MarketEvent(); var r: [Int64] = []; while m.next(&e) == .event { r.append(e.sequence) }; return r }
        XCTAssertEqual(run(MergedSource([try src("spot-a.gz", 0), try src("spot-empty.gz", 1), try src("spot-b.gz", 2)])),
                       [11, 1, 2, 12, 13, 3, 14])
        XCTAssertEqual(run(MergedSource([try src("spot-b.gz", 0), try src("spot-a.gz", 1)])), [11, 12, 13, 1, 2, 3, 14])
        XCTAssertEqual(run(MergedSource([try src("spot-b.gz", 0)])), [11, 12, 13, 14])
        XCTAssertEqual(run(MergedSource([try src("spot-empty.gz", 0)])), [])
        XCTAssertEqual(run(MergedSource([])), [])
        XCTAssertEqual(c.rejects.count, 0)
    }
}
