import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// Issue 9, defects 1 and 9: times that overflow Int64 when converted to ns, times outside the accepted
/// range (1970-01-01 ... 2200-01-01), and symbols that are not valid UTF-8 are rejected by the reader
/// that parses them, naming the value, file and line. Before the fix the overflowing rows trapped the
/// process (tardis µs → ns, bar s/ms → ns, Polygon `window_start + 1 min`) and the others were accepted
/// (a phantom symbol, a far-future receive time). Files are written here in the documented layouts.
final class HostileValueTests: XCTestCase {
    /// 2024-08-08T12:00:00Z in s (Python: `datetime(2024,8,8,12,tzinfo=timezone.utc).timestamp()`).
    let noonSeconds: Int64 = 1_723_118_400

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let dir = NSTemporaryDirectory() + "tape-hostile-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }

    func readAll(_ path: String, format: RecordingFormat? = nil) throws -> ([MarketEvent], RejectCollector, SymbolTable) {
        let symbols = SymbolTable(), rejects = RejectCollector()
        let source = try openSource(path: path, format: format, options: ReaderOptions(symbols: symbols, rejects: rejects))
        var events: [MarketEvent] = []
        var event = MarketEvent()
        while source.next(&event) == .event { events.append(event) }
        return (events, rejects, symbols)
    }

    func assertRejects(_ rejects: RejectCollector, _ expected: [(line: Int, reason: RejectReason, text: String)],
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(rejects.rejects.map(\.line), expected.map(\.line), "\(rejects.rejects.map(\.message))",
                       file: file, line: line)
        for (reject, want) in zip(rejects.rejects, expected) {
            XCTAssertEqual(reject.reason, want.reason, reject.message, file: file, line: line)
            XCTAssertTrue(reject.detail.contains(want.text), reject.message, file: file, line: line)
        }
    }

    func testTardisMicrosecondsNearOverflowAreRejected() throws {
        let path = try write("binance_trades_2024-08-08_BTCUSDT.csv", """
            exchange,symbol,timestamp,local_timestamp,id,side,price,amount
            binance,BTCUSDT,9300000000000000,1723118400000000,1,sell,61837.63,0.02
            binance,BTCUSDT,1723118400000000,9300000000000000,2,sell,61837.63,0.02
            binance,BTCUSDT,-9300000000000000,1723118400000000,3,sell,61837.63,0.02
            binance,BTCUSDT,1723118400000001,1723118400000002,4,buy,61837.64,0.5

            """)
        let (events, rejects, _) = try readAll(path, format: .tardisTrades)
        XCTAssertEqual(events.map(\.eventTime), [noonSeconds * 1_000_000_000 + 1_000])
        XCTAssertEqual(events.map(\.receiveTime), [noonSeconds * 1_000_000_000 + 2_000])
        assertRejects(rejects, [(2, .badTimestamp, "timestamp '9300000000000000' is outside"),
                                (3, .badTimestamp, "local_timestamp '9300000000000000' is outside"),
                                (4, .badTimestamp, "timestamp '-9300000000000000'")])
    }

    /// µs-epoch bar times are read as µs (1.6e15 was taken for ms and overflowed); dates outside the
    /// range and days a month does not have are rejected.
    func testBarTimesOutsideTheRangeAreRejected() throws {
        let path = try write("btc-perp-hostile_1m.csv", """
            timestamp,open,high,low,close,volume
            1640991660000000,1,2,0.5,1.5,10
            1600-01-01 00:00:00,1,2,0.5,1.5,10
            2300-01-01 00:00:00,1,2,0.5,1.5,10
            9999-12-31T23:59:00Z,1,2,0.5,1.5,10
            2013-02-30 00:00:00,1,2,0.5,1.5,10
            -9223372036854775808,1,2,0.5,1.5,10
            9223372036854775807,1,2,0.5,1.5,10
            2199-12-31T23:59:30Z,1,2,0.5,1.5,10
            2022-01-01 00:00:00,1,2,0.5,1.5,10

            """)
        let (events, rejects, _) = try readAll(path, format: .bars)
        // 2021-12-31T23:01:00Z = 1640991660 s (Python datetime); the event is the bar's end, one minute later.
        XCTAssertEqual(events.map(\.eventTime), [1_640_991_720_000_000_000, 1_640_995_260_000_000_000])
        assertRejects(rejects, [(3, .badTimestamp, "1600-01-01"), (4, .badTimestamp, "2300-01-01"),
                                (5, .badTimestamp, "9999-12-31"), (6, .badTimestamp, "2013-02-30"),
                                (7, .badTimestamp, "-9223372036854775808' is outside"),
                                (8, .badTimestamp, "9223372036854775807' is outside"),
                                (9, .badTimestamp, "2199-12-31T23:59:30Z' is outside")])
    }

    func testTickCSVTimesNearInt64MaxAreRejected() throws {
        let noon = noonSeconds * 1_000_000_000
        let path = try write("ticks.csv", """
            \(TickRowDecoder.header)
            9223372036854775807,\(noon),BTCUSDT,trade,1,1,,,,,,,1
            \(noon),9223372036854775000,BTCUSDT,trade,1,1,,,,,,,2
            \(noon),-5,BTCUSDT,trade,1,1,,,,,,,3
            \(noon + 1),\(noon + 2),BTCUSDT,trade,1,1,,,,,,,4
            9223372036854775807,9223372036854775807,,tick,,,,,,,,,5

            """)
        let (events, rejects, _) = try readAll(path, format: .tickCSV)
        XCTAssertEqual(events.map(\.sequence), [4])
        assertRejects(rejects, [(2, .badTimestamp, "event_time_ns '9223372036854775807' is outside"),
                                (3, .badTimestamp, "receive_time_ns '9223372036854775000' is outside"),
                                (4, .badTimestamp, "receive_time_ns '-5' is outside"),
                                (6, .badTimestamp, "event_time_ns '9223372036854775807' is outside")])
    }

    func testPolygonMinuteAggregateWindowStartNearInt64MaxIsRejected() throws {
        let path = try write("2024-08-08.minute_aggs.csv", """
            ticker,volume,open,close,high,low,window_start,transactions
            AAPL,4930,209.8,209.9,210.0,209.7,9223372036854775807,41
            AAPL,4930,209.8,209.9,210.0,209.7,9223372036800000000,41
            AAPL,4930,209.8,209.9,210.0,209.7,1723118400000000000,41

            """)
        let (events, rejects, _) = try readAll(path, format: .polygonMinuteAggs)
        XCTAssertEqual(events.map(\.eventTime), [(noonSeconds + 60) * 1_000_000_000])
        assertRejects(rejects, [(2, .badTimestamp, "window_start '9223372036854775807' is outside"),
                                (3, .badTimestamp, "window_start '9223372036800000000' is outside")])
    }

    /// Invalid UTF-8 in a CSV symbol column (a lone continuation byte, a truncated sequence) and a control
    /// byte, also in the exchange column: `bad_symbol` naming the bytes escaped; valid multi-byte UTF-8 is a
/// symbol like any other.
    func testInvalidUTF8SymbolsInCSVAreRejected() throws {
        let noon = noonSeconds * 1_000_000_000
        var bytes = Array("\(TickRowDecoder.header)\n".utf8)
        for (index, symbol) in [Array("BTC\u{00C4}".utf8), [0x42, 0x80, 0x43], [0x45, 0xE2, 0x82], [0x41, 0x01],
                                Array("BTCUSDT".utf8)].enumerated() {
            bytes += Array("\(noon + Int64(index)),\(noon + Int64(index)),".utf8) + symbol
            bytes += Array(",trade,1,1,,,,,,,\(index + 1)\n".utf8)
        }
        bytes += Array("\(noon + 5),\(noon + 5),BTCUSDT,trade,1,1,,,,,X".utf8) + [0xFE] + Array(",,6\n".utf8)
        let path = try write("ticks-symbols.csv", bytes)
        let (events, rejects, symbols) = try readAll(path, format: .tickCSV)
        XCTAssertEqual(events.map { symbols.name($0.symbol) }, ["BTC\u{00C4}", "BTCUSDT"])
        assertRejects(rejects, [(3, .badSymbol, #""B\x80C""#), (4, .badSymbol, #""E\xE2\x82""#),
                                (5, .badSymbol, #""A\x01""#), (7, .badSymbol, #"exchange "X\xFE""#)])
        XCTAssertEqual(symbols.count, 3, "none, BTCÄ, BTCUSDT: no phantom symbol interned")

        let trades = try write("2024-08-08.trades.csv", Array("""
            ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_number,sip_timestamp,size,tape,trf_id,trf_timestamp

            """.utf8) + [0x41, 0xFF] + Array(",,0,11,1,\(noon),209.82,1001,\(noon),100,3,,\n".utf8))
        let (none, tradeRejects, _) = try readAll(trades, format: .polygonTrades)
        XCTAssertTrue(none.isEmpty)
        assertRejects(tradeRejects, [(2, .badSymbol, #"ticker "A\xFF""#)])
    }

    /// Raw captures: a receive time near Int64.max, an exchange time (ms) whose ns overflows, and a symbol
    /// that is not UTF-8 (in `s`, and in the stream name when `s` is absent).
    func testRawCaptureTimesAndSymbols() throws {
        let noon = noonSeconds * 1_000_000_000
        func trade(_ receive: String, symbol: [UInt8], tradeTimeMs: String, id: Int) -> [UInt8] {
            Array("\(receive) {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":\(tradeTimeMs),\"s\":\"".utf8)
                + symbol
                + Array("\",\"t\":\(id),\"p\":\"61837.63\",\"q\":\"0.02\",\"T\":\(tradeTimeMs),\"m\":true}}\n".utf8)
        }
        let btc = Array("BTCUSDT".utf8)
        var bytes = trade("9223372036854775807", symbol: btc, tradeTimeMs: "1723118400000", id: 1)
        bytes += trade("\(noon)", symbol: btc, tradeTimeMs: "9300000000000", id: 2)
        bytes += trade("\(noon)", symbol: btc, tradeTimeMs: "7258118400001", id: 3)
        bytes += trade("\(noon)", symbol: [0x42, 0xC3, 0x28], tradeTimeMs: "1723118400000", id: 4)
        bytes += Array("\(noon) {\"stream\":\"b".utf8) + [0xFF]
            + Array("c@bookTicker\",\"data\":{\"u\":5,\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}}\n".utf8)
        bytes += trade("\(noon + 1)", symbol: btc, tradeTimeMs: "1723118400001", id: 6)
        let path = try write("spot-hostile.gz.txt", bytes)
        let (events, rejects, symbols) = try readAll(path, format: .rawCapture)
        XCTAssertEqual(events.map(\.sequence), [6])
        XCTAssertEqual(events.first?.eventTime, noon + 1_000_000)
        assertRejects(rejects, [(1, .badTimestamp, "9223372036854775807"),
                                (2, .badTimestamp, "bad exchange time 9300000000000"),
                                (3, .badTimestamp, "bad exchange time 7258118400001"),
                                (4, .badSymbol, #""B\xC3(""#), (5, .badSymbol, #""b\xFFc""#)])
        XCTAssertEqual(symbols.count, 2, "none and spot:BTCUSDT only")
    }

    /// Polygon WebSocket: `t` (ms) that overflows ns, and a `sym` or `x` that is not UTF-8.
    func testPolygonWebSocketTimesAndSymbols() {
        var decoder = PolygonDecoder(symbols: SymbolTable(), venue: nil)
        func decode(_ bytes: [UInt8]) -> DecodeOutcome {
            var out: [MarketEvent] = []
            return bytes.withUnsafeBytes { decoder.decode($0, receiveTime: 1, into: &out) }
        }
        let overflow = decode(Array(#"[{"ev":"T","sym":"AAPL","p":1,"s":1,"t":9300000000000,"q":1}]"#.utf8))
        guard case .malformed(.badTimestamp, _) = overflow else { return XCTFail("\(overflow)") }
        let invalid = decode(Array(#"[{"ev":"T","sym":"A"#.utf8) + [0xC0, 0xAF]
                             + Array(#"","p":1,"s":1,"t":1723118400000,"q":1}]"#.utf8))
        guard case .malformed(.badSymbol, let detail) = invalid else { return XCTFail("\(invalid)") }
        XCTAssertTrue(detail.contains(#""A\xC0\xAF""#), detail)
        let exchange = decode(Array(#"[{"ev":"T","sym":"AAPL","x":""#.utf8) + [0xFF]
                              + Array(#"","p":1,"s":1,"t":1723118400000,"q":1}]"#.utf8))
        guard case .malformed(.badSymbol, let exchangeDetail) = exchange else { return XCTFail("\(exchange)") }
        XCTAssertTrue(exchangeDetail.contains(#"exchange "\xFF""#), exchangeDetail)
        let valid = decode(Array(#"[{"ev":"T","sym":"AAPL","p":1,"s":1,"t":1723118400000,"q":1}]"#.utf8))
        guard case .decoded(1) = valid else { return XCTFail("\(valid)") }
    }
}
