import Foundation
import XCTest
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// Bad records injected into a real capture (decompressed, edited, recompressed at run time): each
/// gives exactly the expected reject at the right line, and every valid event still arrives.
final class RawCaptureInjectionTests: XCTestCase {
    func testInjectedBadLines() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try FeedsTestSupport.binance("spot-btcusdt_20240808.gz")
        var lines = try FeedsTestSupport.lines(src)
        if lines.last == "" { lines.removeLast() }
        let origTrades = lines.filter { $0.contains("@trade\"") }.count
        let origQuotes = lines.filter { $0.contains("@bookTicker\"") }.count
        XCTAssertEqual(origTrades, 9757); XCTAssertEqual(origQuotes, 28040)

        func tradeIndex(after k: Int) -> Int { (k...).first { lines[$0].contains("@trade\"") }! }
        func quoteIndex(after k: Int) -> Int { (k...).first { lines[$0].contains("@bookTicker\"") }! }

        // Edits (index in `lines`, applied from the end so earlier indices stay valid). Each expectation
        // records the final 1-based line number, computed after all insertions below.
        enum Op { case insert(String), replace(String) }
        var edits: [(Int, Op, RejectReason, Int, Int)] = []   // index, op, reason, lostTrades, lostQuotes
        // Replacements (lose one valid event each).
        let t1 = tradeIndex(after: 1000)
        edits.append((t1, .replace(lines[t1].replacingOccurrences(of: #""p":""#, with: #""p":"NaN","x":""#)), .nanValue, 1, 0))
        let t2 = tradeIndex(after: 2000)
        edits.append((t2, .replace(lines[t2].replacingOccurrences(of: #""p":""#, with: #""p":"-"#)), .negativeValue, 1, 0))
        let t3 = tradeIndex(after: 3000)
        let zeroP = lines[t3].replacingOccurrences(of: #""p":"[0-9.]+""#, with: #""p":"0.00000000""#, options: .regularExpression)
        edits.append((t3, .replace(zeroP), .zeroValue, 1, 0))
        let q1 = quoteIndex(after: 4000)
        let crossed = lines[q1].replacingOccurrences(of: #""b":"[0-9.]+""#, with: #""b":"99999999.0""#, options: .regularExpression)
        edits.append((q1, .replace(crossed), .crossedQuote, 0, 1))
        let t4 = tradeIndex(after: 5000)
        let cutJSON = String(lines[t4].prefix(lines[t4].count - 30))
        edits.append((t4, .replace(cutJSON), .malformedLine, 1, 0))
        // Insertions (lose nothing).
        edits.append((6000, .insert("garbage-without-space"), .malformedLine, 0, 0))
        edits.append((7000, .insert(""), .malformedLine, 0, 0))
        edits.append((8000, .insert("1723161254"), .malformedLine, 0, 0))
        edits.append((9000, .insert("12ab45 {\"stream\":\"btcusdt@trade\",\"data\":{}}"), .badTimestamp, 0, 0))
        let t5 = tradeIndex(after: 10000)
        edits.append((t5 + 1, .insert(lines[t5]), .duplicate, 0, 0))           // same trade id again
        let t6 = tradeIndex(after: 12000)
        let ts6 = Int64(lines[t6].prefix { $0 != " " })!
        var back = lines[t6]
        back.replaceSubrange(back.startIndex..<back.firstIndex(of: " ")!, with: String(ts6 - 5_000_000_000))
        back = back.replacingOccurrences(of: #""t":[0-9]+"#, with: "\"t\":99999999999", options: .regularExpression)
        edits.append((t6 + 1, .insert(back), .timeBackwards, 0, 0))             // 5 s back (tolerance 1 s)
        edits.append((13000, .insert(#"1723161254087896568 {"stream":"btcusdt@kline_1m","data":{"k":{}}}"#), .unknownMessage, 0, 0))

        edits.sort { $0.0 < $1.0 }
        // Final line numbers: an insertion at index i shifts everything at/after i by one.
        var expected: [(RejectReason, Int)] = []
        var shift = 0
        for (i, op, reason, _, _) in edits {
            expected.append((reason, i + shift + 1))
            if case .insert = op { shift += 1 }
        }
        for (i, op, _, _, _) in edits.reversed() {
            switch op {
            case .insert(let s): lines.insert(s, at: i)
            case .replace(let s): lines[i] = s
            }
        }
        let path = dir + "/spot-btcusdt_20240808.gz"
        try FeedsTestSupport.writeGzip(lines, to: path)

        let r = try FeedsTestSupport.readAll(path)
        let got = r.collector.rejects.map { ($0.reason, $0.line) }
        XCTAssertEqual(got.map(\.0), expected.map(\.0), r.collector.rejects.map(\.message).joined(separator: "\n"))
        XCTAssertEqual(got.map(\.1), expected.map(\.1))
        XCTAssertEqual(r.trades, origTrades - edits.reduce(0) { $0 + $1.3 })
        XCTAssertEqual(r.quotes, origQuotes - edits.reduce(0) { $0 + $1.4 })
        XCTAssertEqual(r.stats.rejected, expected.count)
        for rej in r.collector.rejects {
            XCTAssertTrue(rej.message.hasPrefix("\(path):\(rej.line): \(rej.reason.rawValue): "), rej.message)
        }
        // Offending values are named.
        let msgs = Dictionary(r.collector.rejects.map { ($0.reason, $0.detail) }, uniquingKeysWith: { a, _ in a })
        XCTAssertTrue(msgs[.nanValue]!.contains("nan"), msgs[.nanValue]!)
        XCTAssertTrue(msgs[.negativeValue]!.contains("price -"), msgs[.negativeValue]!)
        XCTAssertTrue(msgs[.crossedQuote]!.contains("bid 99999999 > ask"), msgs[.crossedQuote]!)
        XCTAssertTrue(msgs[.timeBackwards]!.contains("5000000000 ns before"), msgs[.timeBackwards]!)
        XCTAssertTrue(msgs[.badTimestamp]!.contains("12ab45"), msgs[.badTimestamp]!)
    }
}
