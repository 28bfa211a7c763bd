import Foundation
import XCTest
import TapeCore
import TapeRecordings

/// The progress line's percent and ETA come from `SourceStats.compressedBytes`: a source must report
/// the compressed bytes it has consumed while it reads, not only when it finishes.
final class ReadProgressTests: XCTestCase {
    func fileSize(_ path: String) throws -> Int64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try XCTUnwrap(attributes[.size] as? Int64)
    }

    /// Reads `firstEvents` events, then `moreEvents`, then the rest: the compressed bytes reported are
    /// above 0 and below the file's size part-way, grow, and equal the file's size at the end.
    func checkProgress(path: String, firstEvents: Int, moreEvents: Int) throws {
        let size = try fileSize(path)
        let options = ReaderOptions(symbols: SymbolTable(), rejects: RejectCollector())
        let source = try openSource(path: path, format: nil, options: options)
        var event = MarketEvent()
        for _ in 0..<firstEvents { XCTAssertEqual(source.next(&event), .event) }
        let early = source.stats.compressedBytes
        XCTAssertGreaterThan(early, 0, "\(path): no compressed bytes reported after \(firstEvents) events")
        XCTAssertLessThan(early, size, "\(path): the whole file reported after \(firstEvents) events")
        for _ in 0..<moreEvents { XCTAssertEqual(source.next(&event), .event) }
        let later = source.stats.compressedBytes
        XCTAssertGreaterThan(later, early, path)
        XCTAssertLessThan(later, size, path)
        while source.next(&event) == .event {}
        XCTAssertEqual(source.stats.compressedBytes, size, path)
    }

    func testRawCaptureReportsCompressedBytesWhileReading() throws {
        // 87,402 trades and quotes (data README); the first 256 KiB chunk holds far fewer lines.
        try checkProgress(path: try FeedsTestSupport.binance("usdm-btcusdt_20240808.gz"), firstEvents: 1000,
                          moreEvents: 40_000)
    }

    func testCSVBarFileReportsCompressedBytesWhileReading() throws {
        // 45,031 one-minute bars, about 3.2 MB decompressed: a dozen 256 KiB chunks.
        let path = try FeedsTestSupport.dataDir() + "/bars/btc-perp-20211231-20220201_1m.csv.gz"
        try checkProgress(path: path, firstEvents: 1000, moreEvents: 20_000)
    }

    /// Percent done follows the rows actually handed out, not the 256 KiB chunk behind them: after 100 of
    /// 45,031 bars the file is 0.2 % read, not the 8 % of a whole chunk. Rows of a bar file are alike in
    /// length and compress alike, so the row fraction is the reference (within 2 percentage points).
    func testPercentFollowsTheRowsHandedOutInsideAChunk() throws {
        let path = try FeedsTestSupport.dataDir() + "/bars/btc-perp-20211231-20220201_1m.csv.gz"
        let size = Double(try fileSize(path))
        let rows = 45_031.0
        let options = ReaderOptions(symbols: SymbolTable(), rejects: RejectCollector())
        let source = try openSource(path: path, format: nil, options: options)
        var event = MarketEvent()
        var read = 0
        var last: Int64 = 0
        for target in [100, 1_000, 5_000, 12_345, 30_000, 45_000] {
            while read < target { XCTAssertEqual(source.next(&event), .event); read += 1 }
            let bytes = source.stats.compressedBytes
            XCTAssertGreaterThanOrEqual(bytes, last, "never goes back")
            last = bytes
            XCTAssertEqual(Double(bytes) / size, Double(read) / rows, accuracy: 0.02, "after \(read) rows")
        }
    }
}
