import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeRecordings
import TapeIO
import TapeSources

/// CSV formats: real bar files, and small Polygon / tardis / tick CSV files written by the test in
/// the documented layouts; bad rows rejected with file and line; detection from content.
final class FormatsTests: XCTestCase {
    static var root: URL {
        var u = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) { u = u.deletingLastPathComponent() }
        return u
    }
    var bars: String { Self.root.deletingLastPathComponent().appendingPathComponent("shared/data/bars").path }

    func write(_ name: String, _ text: String, gzip: Bool = true) throws -> String {
        let dir = NSTemporaryDirectory() + "tape-formats-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name
        if gzip {
            let w = try GzipWriter(path: path); w.write(text); try w.close()
        } else { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        return path
    }

    func readAll(_ path: String, format: RecordingFormat? = nil, symbol: String? = nil) throws -> ([MarketEvent], RejectCollector, SymbolTable) {
        let symbols = SymbolTable(), rejects = RejectCollector()
        let src = try openSource(path: path, format: format, options: ReaderOptions(symbols: symbols, rejects: rejects, symbol: symbol))
        var out: [MarketEvent] = []
        var e = MarketEvent()
        while src.next(&e) == .event { out.append(e) }
        return (out, rejects, symbols)
    }

    func testRealBarFiles() throws {
        let btc = bars + "/btc-perp-20211231-20220201_1m.csv.gz"
        let fx = bars + "/fxcm-gbpusd-m1-bid-2012.csv.gz"
        try requireOrSkip(FileManager.default.fileExists(atPath: btc), "real data at \(btc)")
        XCTAssertEqual(try FormatDetector.detect(path: btc), .bars)
        let (a, ra, sa) = try readAll(btc)
        XCTAssertEqual(a.count, 45_031)
        XCTAssertEqual(ra.rejects.count, 0)
        XCTAssertEqual(sa.name(a[0].symbol), "BTC-PERP")
        // First row: 2021-12-31 23:01:00.000000,46319.0,46385.0,46319.0,46377.0,2300413.7295 (bar open time)
        XCTAssertEqual(a[0].eventTime, TimeUtil.parseDateTime("2021-12-31T23:02:00Z")!)
        XCTAssertEqual([a[0].open, a[0].high, a[0].low, a[0].price, a[0].size], [46319, 46385, 46319, 46377, 2300413.7295])
        let (_, last, _) = try shell("gzip -dc '\(btc)' | tail -1")
        let f = last.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")
        XCTAssertEqual(a.last!.price, Double(f[4]))
        XCTAssertEqual(a.last!.eventTime, TimeUtil.parseDateTime(String(f[0]))! + 60_000_000_000)
        let (b, rb, sb) = try readAll(fx)
        XCTAssertEqual(b.count, 30_117)
        XCTAssertEqual(rb.rejects.count, 0)
        XCTAssertEqual(sb.name(b[0].symbol), "FXCM-GBPUSD")
        XCTAssertTrue(b[0].size.isNaN, "no volume column")
        XCTAssertEqual(b[0].open, 1.57597)
    }

    func testBadBarRowsAreRejectedWithFileAndLine() throws {
        let p = try write("bad_1m.csv.gz", """
            timestamp,open,high,low,close,volume
            2022-01-01 00:00:00,10,11,9,10.5,100
            garbage
            2022-01-01 00:02:00,10,11,9,abc,100
            2022-01-01 00:03:00,10,11,9,NaN,100
            2022-01-01 00:04:00,-10,11,-12,10,100
            2022-01-01 00:05:00,0,0,0,0,100
            not-a-time,10,11,9,10.5,100
            2022-01-01 00:07:00,10,11,9,10.5,100

            """)
        let (ev, r, _) = try readAll(p)
        XCTAssertEqual(ev.count, 2)
        XCTAssertEqual(r.rejects.map(\.line), [3, 4, 5, 6, 7, 8])
        XCTAssertEqual(r.rejects.map(\.reason), [.malformedLine, .badNumber, .nanValue, .negativeValue, .zeroValue, .badTimestamp])
        XCTAssertTrue(r.rejects.allSatisfy { $0.file == p })
    }

    func testUnknownHeaderGivesOneRejectAndNoEvents() throws {
        let p = try write("weird.csv.gz", "a,b,c\n1,2,3\n")
        XCTAssertThrowsError(try FormatDetector.detect(path: p))
        let (ev, r, _) = try readAll(p, format: .bars)
        XCTAssertEqual(ev.count, 0)
        XCTAssertEqual(r.rejects.map(\.reason), [.unknownHeader])
        XCTAssertEqual(r.rejects.first?.line, 1)
    }

    func testPolygonTradesQuotesAndAggs() throws {
        // Layouts of Polygon/Massive stocks flat files (trades_v1, quotes_v1, minute_aggs_v1).
        let t = try write("2024-08-08.trades.csv.gz", """
            ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_number,sip_timestamp,size,tape,trf_id,trf_timestamp
            AAPL,"12,37",0,11,1,1723105800000123456,209.82,1001,1723105800000200000,100,3,,
            AAPL,,0,4,2,1723105800001000000,209.83,1002,1723105800001100000,5,3,,
            AAPL,,0,4,3,,209.84,1003,1723105800002000000,7,3,,

            """)
        XCTAssertEqual(try FormatDetector.detect(path: t), .polygonTrades)
        let (tr, r1, s1) = try readAll(t)
        XCTAssertEqual(r1.rejects.count, 0)
        XCTAssertEqual(tr.count, 3)
        XCTAssertEqual(tr[0].eventTime, 1723105800000123456); XCTAssertEqual(tr[0].receiveTime, 1723105800000200000)
        XCTAssertEqual(tr[0].price, 209.82); XCTAssertEqual(tr[0].size, 100); XCTAssertEqual(tr[0].sequence, 1001)
        XCTAssertEqual(s1.name(tr[0].conditions), "12,37"); XCTAssertEqual(s1.name(tr[0].exchange), "11")
        XCTAssertEqual(tr[2].eventTime, 1723105800002000000, "participant time missing: sip time")
        let q = try write("2024-08-08.quotes.csv.gz", """
            ticker,ask_exchange,ask_price,ask_size,bid_exchange,bid_price,bid_size,conditions,indicators,participant_timestamp,sequence_number,sip_timestamp,tape,trf_timestamp
            AAPL,12,209.85,3,11,209.80,2,1,,1723105800000100000,5001,1723105800000150000,3,
            AAPL,12,209.79,3,11,209.80,2,1,,1723105800000200000,5002,1723105800000250000,3,

            """)
        XCTAssertEqual(try FormatDetector.detect(path: q), .polygonQuotes)
        let (qu, r2, _) = try readAll(q)
        XCTAssertEqual(qu.count, 1)
        XCTAssertEqual(qu[0].bid, 209.80); XCTAssertEqual(qu[0].ask, 209.85); XCTAssertEqual(qu[0].askSize, 3)
        XCTAssertEqual(r2.rejects.map(\.reason), [.crossedQuote]); XCTAssertEqual(r2.rejects.first?.line, 3)
        let a = try write("2024-08-08.minute_aggs.csv.gz", """
            ticker,volume,open,close,high,low,window_start,transactions
            AAPL,4930,209.8,209.9,210.0,209.7,1723105800000000000,41

            """)
        XCTAssertEqual(try FormatDetector.detect(path: a), .polygonMinuteAggs)
        let (ag, _, _) = try readAll(a)
        XCTAssertEqual(ag.count, 1)
        XCTAssertEqual(ag[0].kind, .bar); XCTAssertEqual(ag[0].eventTime, 1723105860000000000)
        XCTAssertEqual([ag[0].open, ag[0].high, ag[0].low, ag[0].price, ag[0].size], [209.8, 210.0, 209.7, 209.9, 4930])
    }

    func testTardisTrades() throws {
        let p = try write("binance_trades_2024-08-08_BTCUSDT.csv.gz", """
            exchange,symbol,timestamp,local_timestamp,id,side,price,amount
            binance,BTCUSDT,1723161255342000,1723161254087896,3735683259,sell,61837.63,0.02
            binance,BTCUSDT,1723161255343000,1723161254088000,3735683260,buy,61837.64,0.5

            """)
        XCTAssertEqual(try FormatDetector.detect(path: p), .tardisTrades)
        let (ev, r, s) = try readAll(p)
        XCTAssertEqual(r.rejects.count, 0)
        XCTAssertEqual(ev.count, 2)
        XCTAssertEqual(s.name(ev[0].symbol), "binance:BTCUSDT")
        XCTAssertEqual(ev[0].eventTime, 1723161255342000000); XCTAssertEqual(ev[0].receiveTime, 1723161254087896000)
        XCTAssertEqual(ev[0].side, 2); XCTAssertEqual(ev[1].side, 1); XCTAssertEqual(ev[1].sequence, 3735683260)
    }

    func testTickCSVRoundTripThroughMultiMemberGzip() throws {
        let symbols = SymbolTable()
        let a = symbols.intern("spot:BTCUSDT"), x = symbols.intern("XNAS"), c = symbols.intern("12,37")
        var events: [MarketEvent] = [
            .trade(eventTime: 1_000, receiveTime: 2_000, symbol: a, price: 61837.63, size: 0.1 + 0.2, sequence: 7),
            .quote(eventTime: 1_500, receiveTime: 2_500, symbol: a, bid: 61837.6, bidSize: 3.78826, ask: 61837.64, askSize: 1e-7, sequence: 8),
        ]
        events[0].exchange = x; events[0].conditions = c
        let dir = NSTemporaryDirectory() + "tape-tick-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let w = RecordingWriter(directory: dir, prefix: "t", symbols: symbols, rotateHourly: false, flushEvery: 1)
        for e in events { try w.write(e) }
        try w.close()
        XCTAssertEqual(try FormatDetector.detect(path: w.files[0]), .tickCSV)
        let (back, r, s2) = try readAll(w.files[0])
        XCTAssertEqual(r.rejects.count, 0)
        XCTAssertEqual(back.count, 2)
        for (o, b) in zip(events, back) {
            XCTAssertEqual(o.eventTime, b.eventTime); XCTAssertEqual(o.receiveTime, b.receiveTime)
            XCTAssertEqual(o.kind, b.kind); XCTAssertEqual(o.sequence, b.sequence)
            XCTAssertEqual(symbols.name(o.symbol), s2.name(b.symbol))
            for (u, v) in [(o.price, b.price), (o.size, b.size), (o.bid, b.bid), (o.askSize, b.askSize)] {
                XCTAssertTrue(u == v || (u.isNaN && v.isNaN), "\(u) vs \(v)")
            }
        }
        XCTAssertEqual(s2.name(back[0].conditions), "12,37")
        // Two members (flushEvery: 1): the file is multi-member gzip; system gzip reads it too.
        let (rc, out, _) = try shell("gzip -dc '\(w.files[0])' | wc -l")
        XCTAssertEqual(rc, 0); XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "3")
    }

    /// Clock ticks in tick CSV: kind `tick`, no symbol, event time = receive time; written by the tick
    /// writer and read back as `clockTick` items in file order; a tick whose times differ is rejected.
    func testTickCSVClockTicks() throws {
        let header = TickRowDecoder.header
        let text = header + "\n"
            + "1000,1000,,tick,,,,,,,,,1\n"
            + "1500,1600,BTC,trade,10,2,,,,,,,7\n"
            + "2000,2000,,tick,,,,,,,,,2\n"
            + "2500,2600,,tick,,,,,,,,,3\n"
        let path = try write("ticks.csv.gz", text)
        let (events, rejects, _) = try readAll(path)
        XCTAssertEqual(events.map(\.kind), [.clockTick, .trade, .clockTick])
        XCTAssertEqual(events.map(\.receiveTime), [1000, 1600, 2000])
        XCTAssertEqual(rejects.rejects.map(\.line), [5])
        let symbols = SymbolTable()
        XCTAssertEqual(TickCSV.row(.clockTick(at: 42, sequence: 3), symbols: symbols), "42,42,,tick,,,,,,,,,3")
    }

    func testTruncatedLastMemberKeepsEveryCompletedMember() throws {
        let symbols = SymbolTable()
        let a = symbols.intern("A")
        let dir = NSTemporaryDirectory() + "tape-trunc-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let w = RecordingWriter(directory: dir, prefix: "t", symbols: symbols, rotateHourly: false, flushEvery: 100)
        for i in 0..<1050 { try w.write(.trade(eventTime: Int64(i), receiveTime: Int64(i), symbol: a, price: 100 + Double(i % 7), size: 1, sequence: Int64(i + 1))) }
        try w.flush()
        let before = try FileManager.default.attributesOfItem(atPath: w.files[0])[.size] as! Int
        for i in 1050..<1100 { try w.write(.trade(eventTime: Int64(i), receiveTime: Int64(i), symbol: a, price: 100, size: 1, sequence: Int64(i + 1))) }
        try w.close()
        // Cut the file inside its last member, as a kill -9 during a write would.
        let data = try Data(contentsOf: URL(fileURLWithPath: w.files[0]))
        let cut = before + (data.count - before) / 2
        try data.prefix(cut).write(to: URL(fileURLWithPath: w.files[0]))
        let (ev, r, _) = try readAll(w.files[0])
        // Every row of the completed members; of the cut member, only whole rows inflated before the
        // cut (deflate output is a correct prefix), never a half row.
        XCTAssertGreaterThanOrEqual(ev.count, 1050)
        XCTAssertLessThan(ev.count, 1100)
        XCTAssertEqual(ev.map(\.sequence), (1...Int64(ev.count)).map { $0 })
        XCTAssertEqual(r.rejects.map(\.reason), [.truncatedGzip])
    }

    func testDetectionFromContentNotName() throws {
        XCTAssertEqual(FormatDetector.detect(firstLine: "1723161253937085768 {\"stream\":\"x\"}"), .rawCapture)
        XCTAssertEqual(FormatDetector.detect(firstLine: "timestamp,open,high,low,close"), .bars)
        let tickHeader = "event_time_ns,receive_time_ns,symbol,kind,price,size,bid,bid_size,ask,ask_size,exchange,"
            + "conditions,sequence"
        XCTAssertEqual(FormatDetector.detect(firstLine: tickHeader), .tickCSV)
        XCTAssertNil(FormatDetector.detect(firstLine: "hello world"))
        let p = try write("looks-like.csv", "1723161253937085768 {\"stream\":\"btcusdt@trade\",\"data\":{}}\n", gzip: false)
        XCTAssertEqual(try FormatDetector.detect(path: p), .rawCapture)
    }

    func testBarSymbolFromFileName() {
        XCTAssertEqual(BarRowDecoder.symbol(fromFileName: "/x/btc-perp-20211231-20220201_1m.csv.gz"), "BTC-PERP")
        XCTAssertEqual(BarRowDecoder.symbol(fromFileName: "fxcm-gbpusd-m1-bid-2012.csv.gz"), "FXCM-GBPUSD")
    }

    @discardableResult
    func shell(_ c: String) throws -> (Int32, String, String) {
        let p = Process(); p.executableURL = URL(fileURLWithPath: "/bin/bash"); p.arguments = ["-c", c]
        let o = Pipe(), e = Pipe(); p.standardOutput = o; p.standardError = e
        try p.run()
        let od = o.fileHandleForReading.readDataToEndOfFile(), ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }
}
