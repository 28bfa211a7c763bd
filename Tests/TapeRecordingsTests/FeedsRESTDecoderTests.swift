import Foundation
import XCTest
import TapeCore
import TapeFeeds

/// AlphaVantageDecoder and FMPDecoder on hand-written bodies in the vendors' documented shapes: time
/// zones on both sides of DST changes (expected UTC from Python's zoneinfo, written down), bars still
/// forming, overlapping polls, throttle and error bodies, quote snapshots. The bars-equal-the-bar-reader
/// check on real data is in TapeRESTTests (through a loopback server).
final class FeedsRESTDecoderTests: XCTestCase {
    private func utc(_ text: String) -> Nanos { TimeUtil.parseDateTime(text)! }

    private func avBody(_ bars: [(String, String)], zone: String = "US/Eastern", symbol: String = "IBM") -> String {
        let series = bars.map { time, close in
            #""\#(time)": {"1. open": "10.0", "2. high": "11.5", "3. low": "9.5", "#
                + #""4. close": "\#(close)", "5. volume": "120"}"#
        }
        return #"{"Meta Data": {"1. Information": "Intraday (1min) open, high, low, close prices and volume", "#
            + #""2. Symbol": "\#(symbol)", "3. Last Refreshed": "x", "4. Interval": "1min", "#
            + #""5. Output Size": "Compact", "#
            + #""6. Time Zone": "\#(zone)"}, "Time Series (1min)": {\#(series.joined(separator: ", "))}}"#
    }

    private func decode<Decoder: WireDecoder>(_ decoder: inout Decoder, _ body: String, at receiveTime: Nanos)
        -> (DecodeOutcome, [MarketEvent])
    {
        var out: [MarketEvent] = []
        let outcome = decoder.decode(body, receiveTime: receiveTime, into: &out)
        return (outcome, out)
    }

    func testAlphaVantageBarTimesAcrossDaylightSavingChanges() {
        // Local US/Eastern open times → UTC (zoneinfo): the bar's event time is open + 1 minute.
        let cases: [(local: String, utc: String)] = [
            ("2024-01-05 09:30:00", "2024-01-05T14:30:00Z"),  // EST
            ("2024-03-10 01:59:00", "2024-03-10T06:59:00Z"),  // last EST minute before spring forward
            ("2024-03-10 03:00:00", "2024-03-10T07:00:00Z"),  // first EDT minute
            ("2024-07-01 09:30:00", "2024-07-01T13:30:00Z"),  // EDT
            ("2024-11-03 00:59:00", "2024-11-03T04:59:00Z"),  // EDT before fall back
            ("2024-11-03 01:30:00", "2024-11-03T05:30:00Z"),  // ambiguous hour: first occurrence (EDT)
            ("2024-11-03 02:00:00", "2024-11-03T07:00:00Z"),  // EST after fall back
            ("2006-03-12 12:00:00", "2006-03-12T17:00:00Z"),  // 1987–2006 rule: still EST in March
            ("2006-04-02 03:00:00", "2006-04-02T07:00:00Z"),  // 1st Sunday of April: EDT
            ("2006-10-29 00:59:00", "2006-10-29T04:59:00Z"),  // last Sunday of October: EDT until 02:00
            ("2006-10-29 02:00:00", "2006-10-29T07:00:00Z"),
        ]
        for (local, expected) in cases {
            var decoder = AlphaVantageDecoder(symbols: SymbolTable(), venue: nil)
            let (outcome, events) = decode(&decoder, avBody([(local, "11.0")]), at: utc("2030-01-01"))
            XCTAssertEqual(outcome, .decoded(count: 1), local)
            XCTAssertEqual(events.first?.eventTime, utc(expected) + TimeUtil.nsPerMinute, local)
            XCTAssertEqual(VendorTimeZone.usEastern.local(fromUTC: utc(expected)), utc(local), "inverse of \(local)")
        }
        var decoder = AlphaVantageDecoder(symbols: SymbolTable(), venue: nil)
        let (outcome, events) = decode(
            &decoder, avBody([("2024-01-05 09:30:00", "1")], zone: "UTC"), at: utc("2030-01-01"))
        XCTAssertEqual(outcome, .decoded(count: 1))
        XCTAssertEqual(events.first?.eventTime, utc("2024-01-05 09:31:00"))
        let unknownZone = decode(
            &decoder, avBody([("2024-01-05 09:30:00", "1")], zone: "Asia/Tokyo"), at: utc("2030-01-01"))
        guard case .malformed(.badTimestamp, let detail) = unknownZone.0 else { return XCTFail("\(unknownZone.0)") }
        XCTAssertTrue(detail.contains("Asia/Tokyo"), detail)
    }

    func testAlphaVantageBarsAsTheBarReaderMakesThemOnceAndOnlyWhenComplete() {
        let symbols = SymbolTable()
        var decoder = AlphaVantageDecoder(symbols: symbols, venue: "av")
        // Newest first, as Alpha Vantage sends them; 10:02 is still forming at 10:02:30 local.
        let first = avBody([
            ("2024-01-05 10:02:00", "12"), ("2024-01-05 10:01:00", "11"), ("2024-01-05 10:00:00", "10"),
        ])
        let receive = utc("2024-01-05T15:02:30Z")
        let (outcome, events) = decode(&decoder, first, at: receive)
        XCTAssertEqual(outcome, .decoded(count: 2))
        XCTAssertEqual(
            events.map(\.eventTime), [utc("2024-01-05T15:01:00Z"), utc("2024-01-05T15:02:00Z")], "oldest first")
        let bar = events[1]
        XCTAssertEqual(bar.kind, .bar)
        XCTAssertEqual(symbols.name(bar.symbol), "av:IBM")
        XCTAssertEqual([bar.open, bar.high, bar.low, bar.price, bar.size], [10.0, 11.5, 9.5, 11, 120])
        XCTAssertEqual(bar.receiveTime, receive)
        XCTAssertEqual(bar.sequence, bar.eventTime / TimeUtil.nsPerMinute)
        XCTAssertEqual(bar.source, 0)
        // The next poll overlaps: only the now complete 10:02 and the new 10:03 (complete at 10:04).
        let second = avBody([
            ("2024-01-05 10:03:00", "13"), ("2024-01-05 10:02:00", "12"), ("2024-01-05 10:01:00", "11"),
        ])
        let (outcome2, events2) = decode(&decoder, second, at: utc("2024-01-05T15:04:00Z"))
        XCTAssertEqual(outcome2, .decoded(count: 2))
        XCTAssertEqual(events2.map(\.price), [12, 13])
        XCTAssertEqual(decode(&decoder, second, at: utc("2024-01-05T15:05:00Z")).0, .skipped(.repeated))
    }

    func testAlphaVantageThrottleAndErrorBodies() {
        var decoder = AlphaVantageDecoder(symbols: SymbolTable(), venue: nil)
        let now = utc("2030-01-01")
        let note =
            #"{"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."}"#
        let information = #"{"Information": "Our standard API rate limit is 25 requests per day."}"#
        let error = #"{"Error Message": "Invalid API call. Please retry or visit the documentation."}"#
        XCTAssertEqual(decode(&decoder, note, at: now).0, .skipped(.status))
        XCTAssertEqual(decode(&decoder, information, at: now).0, .skipped(.status))
        XCTAssertEqual(
            decode(&decoder, error, at: now).0,
            .malformed(
                reason: .malformedLine,
                detail: "Error Message: Invalid API call. Please retry or visit the documentation."))
        XCTAssertEqual(
            Array(note.utf8).withUnsafeBytes { AlphaVantageDecoder.notice(in: $0) },
            .note("Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."))
        var broken = avBody([("2024-01-05 10:00:00", "x1")])
        XCTAssertEqual(
            decode(&decoder, broken, at: now).0,
            .malformed(reason: .badNumber, detail: "bar 2024-01-05 10:00:00: bad 4. close"))
        broken = avBody([("2024-01-05 10:00:00", "1")]).replacingOccurrences(of: #""2. Symbol": "IBM", "#, with: "")
        XCTAssertEqual(
            decode(&decoder, broken, at: now).0,
            .malformed(reason: .malformedLine, detail: "Meta Data without a Symbol"))
        XCTAssertEqual(
            decode(&decoder, "{\"Time Series (5min)\": {}}", at: now).0,
            .unknown(detail: "Time Series (5min): only 1min bars are read"))
    }

    func testAlphaVantageGlobalQuoteSnapshots() {
        let symbols = SymbolTable()
        var decoder = AlphaVantageDecoder(symbols: symbols, venue: nil)
        func quote(_ price: String, _ volume: String, day: String = "2024-01-05") -> String {
            #"{"Global Quote": {"01. symbol": "IBM", "02. open": "160.0", "03. high": "162.0", "04. low": "159.5", "#
                + #""05. price": "\#(price)", "06. volume": "\#(volume)", "07. latest trading day": "\#(day)", "#
                + #""08. previous close": "159.0", "09. change": "1.2", "10. change percent": "0.75%"}}"#
        }
        let now = utc("2024-01-05T16:00:00Z")
        var (outcome, events) = decode(&decoder, quote("161.2", "1000"), at: now)
        XCTAssertEqual(outcome, .decoded(count: 1))
        XCTAssertEqual(events.first.map { [$0.price, $0.size] }, [161.2, 1000])
        XCTAssertEqual(events.first?.kind, .trade)
        XCTAssertEqual(events.first?.eventTime, now)
        (outcome, events) = decode(&decoder, quote("161.3", "1250"), at: now + 1)
        XCTAssertEqual(events.first.map { [$0.price, $0.size] }, [161.3, 250], "volume since the previous snapshot")
        XCTAssertEqual(decode(&decoder, quote("161.3", "1250"), at: now + 2).0, .skipped(.repeated))
        (outcome, events) = decode(&decoder, quote("162", "40", day: "2024-01-08"), at: now + 3)
        XCTAssertEqual(events.first.map { [$0.price, $0.size] }, [162, 40], "a new day starts from 0")
        XCTAssertEqual(decode(&decoder, #"{"Global Quote": {}}"#, at: now).0, .skipped(.other))
    }

    func testFMPChartEnvelopeQuotesAndErrors() {
        let symbols = SymbolTable()
        var decoder = FMPDecoder(symbols: symbols, venue: nil)
        let chart =
            #"[ {"date": "2024-03-10 03:01:00", "open": 5.0, "low": 4.5, "high": 5.5, "close": 5.25, "volume": 300}, "#
            + #"{"date": "2024-03-10 01:59:00", "open": 4.0, "low": 3.5, "high": 4.5, "close": 4.25, "volume": 200} ]"#
        let envelope = #"{"symbol":"AAPL","historical_chart_1min":\#(chart)}"#
        var (outcome, events) = decode(&decoder, envelope, at: utc("2024-03-10T07:01:30Z"))
        // 01:59 EST → 06:59Z (complete at 07:00Z); 03:01 EDT → 07:01Z, forming until 07:02Z.
        XCTAssertEqual(outcome, .decoded(count: 1))
        XCTAssertEqual(events.map(\.eventTime), [utc("2024-03-10T07:00:00Z")])
        XCTAssertEqual(events.first.map { [$0.open, $0.high, $0.low, $0.price, $0.size] }, [4.0, 4.5, 3.5, 4.25, 200])
        XCTAssertEqual(events.first.map { symbols.name($0.symbol) }, "AAPL")
        (outcome, events) = decode(&decoder, envelope, at: utc("2024-03-10T07:02:00Z"))
        XCTAssertEqual(outcome, .decoded(count: 1))
        XCTAssertEqual(events.map(\.eventTime), [utc("2024-03-10T07:02:00Z")])
        XCTAssertEqual(decode(&decoder, envelope, at: utc("2024-03-10T08:00:00Z")).0, .skipped(.repeated))
        guard case .malformed(.malformedLine, _) = decode(&decoder, chart, at: utc("2030-01-01")).0 else {
            return XCTFail("a bare chart array has no symbol")
        }
        var named = FMPDecoder(symbols: symbols, venue: nil, defaultSymbol: "MSFT")
        XCTAssertEqual(decode(&named, chart, at: utc("2030-01-01")).0, .decoded(count: 2))

        let quote =
            #"[{"symbol": "AAPL", "name": "Apple Inc.", "price": 181.9, "changesPercentage": 0.5, "#
            + #""volume": 5000, "timestamp": 1704470400, "exchange": "NASDAQ"}]"#
        (outcome, events) = decode(&decoder, quote, at: utc("2024-01-05T16:00:01Z"))
        XCTAssertEqual(outcome, .decoded(count: 1))
        XCTAssertEqual(events.first?.eventTime, 1_704_470_400 * TimeUtil.nsPerSecond)
        XCTAssertEqual(events.first.map { [$0.price, $0.size] }, [181.9, 5000])
        XCTAssertEqual(decode(&decoder, quote, at: utc("2024-01-05T16:00:02Z")).0, .skipped(.repeated))
        // A broken later element rejects the message and leaves the snapshot state as it was.
        let twoQuotes =
            #"[{"symbol": "AAPL", "price": 182.0, "volume": 5600, "timestamp": 1704470460}, "#
            + #"{"symbol": "MSFT", "price": "x", "volume": 10, "timestamp": 1704470460}]"#
        XCTAssertEqual(
            decode(&decoder, twoQuotes, at: utc("2024-01-05T16:01:01Z")).0,
            .malformed(reason: .badNumber, detail: "quote: bad price"))
        (outcome, events) = decode(
            &decoder, twoQuotes.replacingOccurrences(of: #""x""#, with: "400.5"),
            at: utc("2024-01-05T16:01:02Z"))
        XCTAssertEqual(outcome, .decoded(count: 2))
        XCTAssertEqual(events.map { [$0.price, $0.size] }, [[182.0, 600], [400.5, 10]])
        XCTAssertEqual(decode(&decoder, "[]", at: utc("2030-01-01")).0, .skipped(.other))
        XCTAssertEqual(
            decode(&decoder, #"{"Error Message": "Invalid API KEY."}"#, at: utc("2030-01-01")).0,
            .malformed(reason: .malformedLine, detail: "Error Message: Invalid API KEY."))
        let badNumber = envelope.replacingOccurrences(of: #""close": 5.25"#, with: #""close": "x""#)
        XCTAssertEqual(
            decode(&decoder, badNumber, at: utc("2030-01-01")).0,
            .malformed(reason: .badNumber, detail: "bar 2024-03-10 03:01:00: bad close"))
    }
}
