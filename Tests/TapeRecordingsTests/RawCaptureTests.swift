import Foundation
import XCTest
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// Every real Binance capture: trades and quotes delivered, depth skipped, counts equal to an
/// independent count (zcat | grep) and, for the files it lists, to the data README.
final class RawCaptureTests: XCTestCase {
    static let readme: [String: (Int, Int, Int)] = [
        "spot-btcusdt_20240808.gz": (9757, 28040, 3451),
        "spot-btcusdt_20240809.gz": (10147, 45134, 3044),
        "usdm-btcusdt_20240808.gz": (21313, 66089, 6551),
        "cm-btcusd_perp_20240808.gz": (2286, 19136, 26847),
    ]

    func testEveryFileCountsMatchIndependentCount() throws {
        let dir = try FeedsTestSupport.dataDir() + "/binance-feed"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".gz") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 8)
        for f in files {
            let path = dir + "/" + f
            let trades = try FeedsTestSupport.shInt("zcat '\(path)' | grep -c '\"stream\":\"[a-z_]*@trade\"'")
            let quotes = try FeedsTestSupport.shInt("zcat '\(path)' | grep -c '\"stream\":\"[a-z_]*@bookTicker\"'")
            let depth = try FeedsTestSupport.shInt("zcat '\(path)' | grep -c '\"stream\":\"[a-z_]*@depth'")
            let total = try FeedsTestSupport.shInt("zcat '\(path)' | wc -l")
            if let r = Self.readme[f] { XCTAssertTrue(r == (trades, quotes, depth), "\(f): grep disagrees with README") }
            let res = try FeedsTestSupport.readAll(path)
            XCTAssertEqual(res.trades, trades, f)
            XCTAssertEqual(res.quotes, quotes, f)
            XCTAssertEqual(res.collector.skips["depth"] ?? 0, depth, f)
            XCTAssertEqual((res.collector.skips["non_stream"] ?? 0) + trades + quotes + depth, total, f)
            XCTAssertEqual(res.collector.rejects.count, 0, "\(f): \(res.collector.rejects.first?.message ?? "")")
            XCTAssertEqual(res.stats.lines, total, f)
            XCTAssertEqual(res.stats.events, trades + quotes, f)
            XCTAssertEqual(res.stats.skipped, total - trades - quotes, f)
            let venue = String(f.prefix { $0 != "-" })
            let expectedSymbol = venue + ":" + f.dropFirst(venue.count + 1).prefix { $0 != "_" || f.contains("perp") && false }
                .split(separator: "_").first!.uppercased()
            for e in res.events.prefix(1) {
                XCTAssertTrue(res.symbols.name(e.symbol).hasPrefix(expectedSymbol), "\(f): \(res.symbols.name(e.symbol))")
            }
            XCTAssertTrue(res.events.allSatisfy { $0.source == 0 })
        }
    }

    /// First trade and first quote of spot 20240808, checked against the text of those lines.
    func testFirstEventsOfSpotFile() throws {
        let res = try FeedsTestSupport.readAll(try FeedsTestSupport.binance("spot-btcusdt_20240808.gz"))
        let t = res.events.first { $0.kind == .trade }!
        XCTAssertEqual(t.receiveTime, 1_723_161_254_087_896_568)
        XCTAssertEqual(t.eventTime, 1_723_161_255_342_000_000)
        XCTAssertEqual(t.sequence, 3_735_683_259)
        XCTAssertEqual(t.price, 61837.63); XCTAssertEqual(t.size, 0.02); XCTAssertEqual(t.side, 2)
        XCTAssertEqual(res.symbols.name(t.symbol), "spot:BTCUSDT")
        let q = res.events.first { $0.kind == .quote }!
        XCTAssertEqual(q.receiveTime, 1_723_161_254_087_891_268)
        XCTAssertEqual(q.eventTime, q.receiveTime)   // spot bookTicker has no exchange time
        XCTAssertEqual(q.sequence, 50_093_239_212)
        XCTAssertEqual(q.bid, 61837.63); XCTAssertEqual(q.ask, 61837.64)
        // Sum of trade sizes equals an independent sum (Python, exact decimal via fractions).
        let path = try FeedsTestSupport.binance("spot-btcusdt_20240808.gz")
        let py = try FeedsTestSupport.sh("""
            python3 -c "
            import gzip,json
            from fractions import Fraction
            s=Fraction(0); n=0
            for l in gzip.open('\(path)','rt'):
                j=json.loads(l.split(' ',1)[1])
                if j.get('stream','').endswith('@trade'):
                    s+=Fraction(j['data']['q']); n+=1
            print(n, float(s))
            "
            """)
        let parts = py.split(separator: " ")
        let sum = res.events.filter { $0.kind == .trade }.reduce(0.0) { $0 + $1.size }
        XCTAssertEqual(Int(parts[0]), res.trades)
        XCTAssertEqual(sum, Double(parts[1])!, accuracy: 1e-9)
    }

    func testVenueOverrideAndThreadedEqualsUnthreaded() throws {
        let path = try FeedsTestSupport.binance("cm-btcusd_perp_20240808.gz")
        let a = try FeedsTestSupport.readAll(path, venue: "binance-cm", threaded: true)
        let b = try FeedsTestSupport.readAll(path, venue: "binance-cm", threaded: false)
        XCTAssertNil(FeedsTestSupport.firstDifference(a.events, b.events))
        XCTAssertEqual(a.events.count, 2286 + 19136)
        XCTAssertEqual(a.symbols.name(a.events[0].symbol), "binance-cm:BTCUSD_PERP")
    }

    /// Readers dropped early must not hang or leak their inflate thread.
    func testEarlyDropDoesNotHangOrLeakThreads() throws {
        let path = try FeedsTestSupport.binance("usdm-btcusdt_20240808.gz")
        func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0 }
        let before = threads()
        for k in 0..<40 {
            let c = RejectCollector()
            let r = try BinanceCaptureReader(path: path, options: ReaderOptions(symbols: SymbolTable(), rejects: c))
            var e = MarketEvent()
            for _ in 0..<(k * 37) { _ = r.next(&e) }
        }
        XCTAssertLessThanOrEqual(threads(), before)
    }
}
