import Foundation
import XCTest
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// Speed of the hot path (gzip → lines → decode → validate) vs `gzip -dc file > /dev/null`.
/// Prints the figures; asserts only a loose bound (shared 2-core machine).
final class FeedsBenchmarkTests: XCTestCase {
    func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }

    func testReadLoopVersusGzip() throws {
        let path = try FeedsTestSupport.binance("usdm-btcusdt_20240808.gz")
        func best(_ n: Int, _ f: () throws -> Void) rethrows -> Double {
            var b = Double.infinity
            for _ in 0..<n { let t0 = now(); try f(); b = min(b, now() - t0) }
            return b
        }
        let gz = try best(3) { try FeedsTestSupport.sh("gzip -dc '\(path)' > /dev/null") }
        var count = 0
        let inflateOnly = try best(3) {
            let s = try GzipStream(path: path, threaded: false)
            var iss: [GzipIssue] = []
            while let c = s.nextChunk(issues: &iss) { count &+= c.count }
        }
        func loop(_ threaded: Bool) throws -> Double {
            try best(3) {
                let c = RejectCollector()
                let r = try BinanceCaptureReader(path: path, options: ReaderOptions(symbols: SymbolTable(), rejects: c), threaded: threaded)
                var e = MarketEvent(); var n = 0
                while r.next(&e) == .event { n += 1 }
                XCTAssertEqual(n, 21313 + 66089)
            }
        }
        let threaded = try loop(true), single = try loop(false)
        // Parse cost alone: the same loop over the decompressed file (plain files pass through).
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = dir + "/usdm-btcusdt_20240808.txt"
        try FeedsTestSupport.sh("gzip -dc '\(path)' > '\(plain)'")
        let parseOnly = try best(3) {
            let r = try BinanceCaptureReader(path: plain, options: ReaderOptions(symbols: SymbolTable(), rejects: RejectCollector()), threaded: false)
            var e = MarketEvent(); var n = 0
            while r.next(&e) == .event { n += 1 }
            XCTAssertEqual(n, 21313 + 66089)
        }
        print(String(format: "feeds-bench parse only (plain file, single thread, lines+decode+validate): %.1f ms", parseOnly * 1e3))
        print(String(format: "feeds-bench usdm-btcusdt_20240808: gzip -dc %.1f ms; inflate only (in-process) %.1f ms; read loop threaded %.1f ms (%.2fx gzip); single-thread %.1f ms (%.2fx gzip; parse+decode+validate ≈ %.1f ms)",
                     gz * 1e3, inflateOnly * 1e3, threaded * 1e3, threaded / gz, single * 1e3, single / gz, (single - inflateOnly) * 1e3))
        XCTAssertLessThan(threaded, gz * 3 + 0.2)
    }
}
