import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeHTTP
import TapeREST

/// Pollers against a real HTTP server on loopback (vendor_server.py) serving real bars
/// (../shared/data/bars), with a fake clock: rate limits, backoff, auth failures, key hygiene, and the
/// bars decoded from the delivered bodies equal to the 1-minute bar reader's.
final class RESTPollerTests: XCTestCase {
    static let barFile = "btc-perp-20211231-20220201_1m.csv.gz"
    static let symbol = "BTC-PERP"
    static let key = "SECRETKEY12345"
    static let wrongKey = "WRONGKEY98765"
    /// After every bar of the file: every served bar is complete.
    static let receiveTime = TimeUtil.parseDateTime("2030-01-01 00:00:00")!

    struct Delivery { var time: Int64; var body: [UInt8] }

    private func settings(
        _ server: VendorServer, key: String = key, limits: [RateLimit],
        attempts: Int = 6
    ) -> RESTPollerSettings {
        RESTPollerSettings(
            symbols: [Self.symbol], baseURL: server.baseURL, apiKey: key, limits: limits,
            roundIntervalNanoseconds: 0, timeoutMilliseconds: 5_000,
            backoffInitialNanoseconds: 1_000_000_000, backoffMaxNanoseconds: 30_000_000_000,
            attemptsPerPollMax: attempts, seed: 7)
    }

    /// Decodes the delivered bodies in order with one decoder (as the live engine and the replay do).
    private func decodeAll<Decoder: WireDecoder>(_ deliveries: [Delivery], _ decoder: inout Decoder)
        -> (events: [MarketEvent], outcomes: [DecodeOutcome])
    {
        var events: [MarketEvent] = []
        var outcomes: [DecodeOutcome] = []
        for delivery in deliveries {
            outcomes.append(
                delivery.body.withUnsafeBytes {
                    decoder.decode($0, receiveTime: Self.receiveTime, into: &events)
                })
        }
        return (events, outcomes)
    }

    private func assertBarsEqualReader(
        _ events: [MarketEvent], symbols: SymbolTable, rows: Int,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let expected = try RESTTestData.readerBars(try RESTTestData.bars(Self.barFile), count: rows)
        XCTAssertEqual(expected.count, rows, file: file, line: line)
        XCTAssertEqual(
            events.count, expected.count, "bars decoded over all polls (no duplicates, none missing)",
            file: file, line: line)
        for (index, pair) in zip(events, expected).enumerated()
        where RESTTestData.barFields(pair.0) != RESTTestData.barFields(pair.1) {
            XCTFail("bar \(index): \(pair.0) != reader's \(pair.1)", file: file, line: line)
            return
        }
        XCTAssertTrue(
            events.allSatisfy { symbols.name($0.symbol) == Self.symbol && $0.receiveTime == Self.receiveTime },
            file: file, line: line)
        let ends = events.map(\.eventTime)
        XCTAssertEqual(Set(ends).count, ends.count, "no bar twice", file: file, line: line)
    }

    func testAlphaVantagePollsGiveTheBarReadersBarsWithinFivePerMinute() throws {
        let bars = try RESTTestData.bars(Self.barFile)
        let server = try VendorServer(bars: bars, symbol: Self.symbol, key: Self.key, window: 100, step: 40)
        defer { server.stop() }
        let fake = FakeClock()
        let deliveries = Collected<Delivery>()
        let logs = Collected<String>()
        let poller = try AlphaVantagePoller(
            settings: settings(server, limits: [.perMinute(5), .perDay(25)]), endpoint: .intraday1min,
            clock: fake.clock, log: { logs.append($0) },
            deliver: { body in deliveries.append(Delivery(time: fake.now, body: Array(body))) })
        let wallStart = Date()
        try poller.run(roundsMax: 12)
        let delivered = deliveries.all
        XCTAssertEqual(delivered.count, 12)
        // 5 per minute: any 6 consecutive calls span at least 60 s of the (fake) clock.
        for index in 0..<(delivered.count - 5) {
            XCTAssertGreaterThanOrEqual(delivered[index + 5].time - delivered[index].time, 60_000_000_000)
        }
        XCTAssertLessThan(Date().timeIntervalSince(wallStart), 30, "the fake clock makes the waits free")
        XCTAssertTrue(logs.all.contains { $0.contains("waiting for rate limit") })
        XCTAssertFalse(logs.all.contains { $0.contains(Self.key) }, "the key never appears in a log line")
        XCTAssertEqual(poller.counters.polls, 12)
        XCTAssertEqual(poller.counters.bodiesDelivered, 12)
        XCTAssertFalse(delivered.contains { $0.body.contains(0x0A) }, "newlines became spaces")

        let symbols = SymbolTable()
        var decoder = AlphaVantageDecoder(symbols: symbols, venue: nil)
        let (events, outcomes) = decodeAll(delivered, &decoder)
        XCTAssertEqual(outcomes.first, .decoded(count: 100))
        XCTAssertEqual(Array(outcomes.dropFirst()), Array(repeating: .decoded(count: 40), count: 11))
        try assertBarsEqualReader(events, symbols: symbols, rows: 100 + 40 * 11)
        // Polled again (same bodies, a later receive time): nothing new.
        var again: [MarketEvent] = []
        let outcome = delivered[3].body.withUnsafeBytes {
            decoder.decode($0, receiveTime: Self.receiveTime + 1, into: &again)
        }
        XCTAssertEqual(outcome, .skipped(.repeated))
        XCTAssertTrue(again.isEmpty)
    }

    /// Delivered bodies are one line each: recorded as a raw capture (`<ns> <body>`) and replayed through
    /// `RawCaptureReader` with the same decoder, they give the bar reader's bars (validated, no rejects).
    func testRecordedBodiesReplayAsARawCapture() throws {
        let bars = try RESTTestData.bars(Self.barFile)
        let server = try VendorServer(
            bars: bars, symbol: Self.symbol, key: Self.key, window: 100, step: 40,
            faults: "av:3=note")
        defer { server.stop() }
        let fake = FakeClock()
        let deliveries = Collected<Delivery>()
        let poller = try AlphaVantagePoller(
            settings: settings(server, limits: [.perMinute(5), .perDay(25)]), endpoint: .intraday1min,
            clock: fake.clock, log: { _ in },
            deliver: { body in deliveries.append(Delivery(time: fake.now, body: Array(body))) })
        try poller.run(roundsMax: 5)
        var capture: [UInt8] = []
        for (index, delivery) in deliveries.all.enumerated() {
            capture.append(contentsOf: "\(Self.receiveTime + Int64(index)) ".utf8)
            capture.append(contentsOf: delivery.body)
            capture.append(0x0A)
        }
        let path = NSTemporaryDirectory() + "tape-rest-capture-\(getpid())-\(UInt64.random(in: 0..<UInt64.max)).txt"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(capture)))
        defer { XCTAssertNoThrow(try FileManager.default.removeItem(atPath: path)) }
        let rejects = RejectCollector()
        let options = ReaderOptions(symbols: SymbolTable(), rejects: rejects)
        let reader = try RawCaptureReader(
            path: path, options: options, decoder: AlphaVantageDecoder(symbols: options.symbols, venue: nil),
            threaded: false)
        var events: [MarketEvent] = []
        var event = MarketEvent()
        while reader.next(&event) == .event { events.append(event) }
        XCTAssertEqual(reader.stats.lines, 6)
        XCTAssertEqual(reader.stats.rejected, 0, "\(rejects)")
        XCTAssertEqual(reader.stats.skipped, 1, "the throttle note")
        let expected = try RESTTestData.readerBars(bars, count: 100 + 40 * 4)
        XCTAssertEqual(events.map(RESTTestData.barFields), expected.map(RESTTestData.barFields))
    }

    func testFMPPollsGiveTheBarReadersBars() throws {
        let bars = try RESTTestData.bars(Self.barFile)
        let server = try VendorServer(bars: bars, symbol: Self.symbol, key: Self.key, window: 100, step: 30)
        defer { server.stop() }
        let fake = FakeClock()
        let deliveries = Collected<Delivery>()
        let poller = try FMPPoller(
            settings: settings(server, limits: [.perMinute(300)]), endpoint: .historicalChart1min,
            clock: fake.clock, log: { _ in },
            deliver: { body in deliveries.append(Delivery(time: fake.now, body: Array(body))) })
        try poller.run(roundsMax: 8)
        XCTAssertEqual(deliveries.all.count, 8)
        let symbols = SymbolTable()
        var decoder = FMPDecoder(symbols: symbols, venue: nil)
        let (events, outcomes) = decodeAll(deliveries.all, &decoder)
        XCTAssertEqual(outcomes, [.decoded(count: 100)] + Array(repeating: .decoded(count: 30), count: 7))
        try assertBarsEqualReader(events, symbols: symbols, rows: 100 + 30 * 7)
    }

    func testA429AndAThrottleNoteBackOffAndRetry() throws {
        let bars = try RESTTestData.bars(Self.barFile)
        let server = try VendorServer(
            bars: bars, symbol: Self.symbol, key: Self.key, window: 100, step: 40,
            faults: "av:2=429,av:4=note,av:5=information,fmp:2=429,fmp:3=500")
        defer { server.stop() }
        let fake = FakeClock()
        let deliveries = Collected<Delivery>()
        let logs = Collected<String>()
        let poller = try AlphaVantagePoller(
            settings: settings(server, limits: [.perMinute(500)]), endpoint: .intraday1min, clock: fake.clock,
            log: { logs.append($0) }, deliver: { deliveries.append(Delivery(time: fake.now, body: Array($0))) })
        try poller.run(roundsMax: 3)
        let counters = poller.counters
        XCTAssertEqual(counters.polls, 6)  // data, 429, data, note, information, data
        XCTAssertEqual(counters.tooManyRequests, 1)
        XCTAssertEqual(counters.throttleNotes, 2)
        XCTAssertEqual(counters.backoffWaits, 3)
        XCTAssertEqual(counters.bodiesDelivered, 5)  // the 429 body is not delivered; throttle notes are
        XCTAssertEqual(counters.errors, 0)
        XCTAssertTrue(
            logs.all.contains {
                $0.contains("alphavantage 127.0.0.1:\(server.port): backing off") && $0.contains("HTTP 429")
            })
        XCTAssertTrue(logs.all.contains { $0.contains("throttled: Thank you for using Alpha Vantage") })
        // Backoff waits: at least the first delay's lower bound (initial/2) between the 429 and its retry.
        let times = deliveries.all.map(\.time)
        XCTAssertGreaterThanOrEqual(times[1] - times[0], 500_000_000)
        let symbols = SymbolTable()
        var decoder = AlphaVantageDecoder(symbols: symbols, venue: nil)
        let (events, outcomes) = decodeAll(deliveries.all, &decoder)
        XCTAssertEqual(
            outcomes,
            [
                .decoded(count: 100), .decoded(count: 40), .skipped(.status), .skipped(.status),
                .decoded(count: 40),
            ])
        try assertBarsEqualReader(events, symbols: symbols, rows: 180)

        let fmpDeliveries = Collected<Delivery>()
        let fmp = try FMPPoller(
            settings: settings(server, limits: [.perMinute(300)]), endpoint: .historicalChart1min, clock: fake.clock,
            log: { logs.append($0) }, deliver: { fmpDeliveries.append(Delivery(time: fake.now, body: Array($0))) })
        try fmp.run(roundsMax: 2)
        XCTAssertEqual(fmp.counters.polls, 4)  // data, 429, 500, data
        XCTAssertEqual(fmp.counters.tooManyRequests, 1)
        XCTAssertEqual(fmp.counters.errors, 1)
        XCTAssertEqual(fmp.counters.backoffWaits, 2)
        XCTAssertEqual(fmp.counters.bodiesDelivered, 2)
        XCTAssertFalse(logs.all.contains { $0.contains(Self.key) }, "the key never appears in a log line")
    }

    func testABadKeyStopsWithAnErrorNamingThePeerAndNoKey() throws {
        let bars = try RESTTestData.bars(Self.barFile)
        let server = try VendorServer(bars: bars, symbol: Self.symbol, key: Self.key)
        defer { server.stop() }
        let logs = Collected<String>()
        let deliveries = Collected<Delivery>()
        let peers = ["alphavantage 127.0.0.1:\(server.port)", "fmp 127.0.0.1:\(server.port)"]
        for peer in peers {
            let fake = FakeClock()
            let common = settings(server, key: Self.wrongKey, limits: [.perMinute(5)])
            let deliver: @Sendable (UnsafeRawBufferPointer) -> Void = {
                deliveries.append(Delivery(time: 0, body: Array($0)))
            }
            let poller: RESTPoller
            if peer.hasPrefix("alpha") {
                poller = try AlphaVantagePoller(
                    settings: common, endpoint: .intraday1min, clock: fake.clock,
                    log: { logs.append($0) }, deliver: deliver)
            } else {
                poller = try FMPPoller(
                    settings: common, endpoint: .historicalChart1min, clock: fake.clock,
                    log: { logs.append($0) }, deliver: deliver)
            }
            do throws(RESTPollerError) {
                try poller.run(roundsMax: 3)
                XCTFail("\(peer): a bad key must stop the poller")
            } catch {
                guard case .authenticationFailed(let errorPeer, let detail) = error else {
                    return XCTFail("\(peer): \(error)")
                }
                XCTAssertEqual(errorPeer, peer)
                XCTAssertTrue(error.description.hasPrefix(peer + ": authentication failed"), error.description)
                XCTAssertTrue(detail.lowercased().contains("api"), detail)
                XCTAssertFalse(error.description.contains(Self.wrongKey))
            }
            XCTAssertEqual(poller.counters.polls, 1, "\(peer): no retry with a refused key")
            XCTAssertEqual(poller.state, .failed)
        }
        XCTAssertTrue(logs.all.contains { $0.contains(peers[0] + ": failed") })
        XCTAssertTrue(logs.all.contains { $0.contains(peers[1] + ": failed") })
        XCTAssertFalse(logs.all.contains { $0.contains(Self.wrongKey) }, "no key in any log line")
        XCTAssertFalse(deliveries.all.contains { String(decoding: $0.body, as: UTF8.self).contains(Self.wrongKey) })
    }

    func testTheKeyIsMaskedInDeliveredBodies() throws {
        // A vendor echoing the key back (some error pages do): the delivered body holds *** instead.
        let body = Array(#"{"Error Message": "key SECRETKEY12345 is not premium", "x": "SECRETKEY12345"}"#.utf8)
        var masked = body
        Redaction.redact(&masked, secret: Array(Self.key.utf8))
        XCTAssertEqual(
            String(decoding: masked, as: UTF8.self), #"{"Error Message": "key *** is not premium", "x": "***"}"#)
        XCTAssertEqual(Redaction.redact("GET /q?apikey=SECRETKEY12345&x=1", secret: Self.key), "GET /q?apikey=***&x=1")
    }

    func testStartStopOnItsOwnThreadWithTheSystemClock() throws {
        let bars = try RESTTestData.bars(Self.barFile)
        let server = try VendorServer(bars: bars, symbol: Self.symbol, key: Self.key, window: 10, step: 1)
        defer { server.stop() }
        let deliveries = Collected<Delivery>()
        let logs = Collected<String>()
        let poller = try FMPPoller(
            symbols: [Self.symbol], endpoint: .historicalChart1min, apiKey: Self.key,
            baseURL: server.baseURL, limits: [.perMinute(6_000)],
            roundIntervalNanoseconds: 20_000_000, log: { logs.append($0) },
            deliver: { deliveries.append(Delivery(time: 0, body: Array($0))) })
        poller.start()
        let deadline = Date().addingTimeInterval(10)
        while deliveries.all.count < 3 && Date() < deadline { usleep(10_000) }
        poller.stop()
        XCTAssertNil(poller.join())
        XCTAssertGreaterThanOrEqual(deliveries.all.count, 3)
        XCTAssertEqual(poller.state, .stopped)
        XCTAssertTrue(logs.all.last?.contains("fmp 127.0.0.1:\(server.port): stopped") ?? false, "\(logs.all)")
    }

    func testATransportErrorNamesTheHostAndNotTheKey() throws {
        let client = try HTTPClient(timeoutMilliseconds: 2_000)
        // Port 9 (discard) on loopback: nothing listens in the test environment.
        XCTAssertThrowsError(try client.get("http://127.0.0.1:9/query?apikey=\(Self.key)", redacting: Self.key)) {
            error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("GET 127.0.0.1:9: "), text)
            XCTAssertFalse(text.contains(Self.key), text)
        }
        XCTAssertThrowsError(try client.post("http://user:\(Self.key)@127.0.0.1:9/write?p=\(Self.key)",
                                             body: Array("x v=1".utf8), headers: ["Content-Type: text/plain"],
                                             redacting: Self.key)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("POST 127.0.0.1:9: "), text)
            XCTAssertFalse(text.contains(Self.key), text)
        }
        XCTAssertEqual(HTTPClient.host(of: "https://user:pw@www.alphavantage.co/query?apikey=X"), "www.alphavantage.co")
    }

    func testMissingKeyIsATypedError() {
        XCTAssertThrowsError(
            try AlphaVantagePoller(
                settings: RESTPollerSettings(
                    symbols: ["IBM"], baseURL: "http://127.0.0.1:1", apiKey: "", limits: [.perMinute(5)]),
                endpoint: .globalQuote, deliver: { _ in })
        ) { error in
            XCTAssertEqual(
                error as? RESTPollerError,
                .missingAPIKey(peer: "alphavantage 127.0.0.1:1", variable: "ALPHAVANTAGE_API_KEY"))
        }
        XCTAssertNil(RESTPollerSettings.apiKey(explicit: nil, variable: "FMP_API_KEY", environment: [:]))
        XCTAssertEqual(
            RESTPollerSettings.apiKey(explicit: nil, variable: "FMP_API_KEY", environment: ["FMP_API_KEY": "k"]), "k")
    }
}

/// The limiter and the backoff alone (no server).
final class RESTPacingTests: XCTestCase {
    func testSlidingWindowAllowsFivePerMinuteAndTwentyFivePerDay() {
        var limiter = SlidingWindowRateLimiter(limits: [.perMinute(5), .perDay(25)])
        let second: Int64 = 1_000_000_000
        var now: Int64 = 0
        for _ in 0..<5 {
            XCTAssertEqual(limiter.delayBeforeNextCall(now: now), 0)
            limiter.recordCall(now: now)
            now += second
        }
        // Calls at 0,1,2,3,4 s; at 5 s the 6th waits until 60 s.
        XCTAssertEqual(limiter.delayBeforeNextCall(now: now), 55 * second)
        var calls = 5
        while calls < 25 {
            now += limiter.delayBeforeNextCall(now: now)
            limiter.recordCall(now: now)
            calls += 1
        }
        // The 26th waits for the day window of the first call (at 0 s).
        XCTAssertEqual(limiter.delayBeforeNextCall(now: now), 86_400 * second - now)
    }

    func testBackoffGrowsWithJitterAndIsSeeded() {
        var first = Backoff(initialNanoseconds: 1_000, maxNanoseconds: 16_000, seed: 42)
        var second = Backoff(initialNanoseconds: 1_000, maxNanoseconds: 16_000, seed: 42)
        let delays = (0..<8).map { _ in first.nextDelay() }
        XCTAssertEqual(delays, (0..<8).map { _ in second.nextDelay() }, "same seed, same waits")
        let ceilings: [Int64] = [1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000, 16_000]
        for (delay, ceiling) in zip(delays, ceilings) {
            XCTAssertTrue(delay >= ceiling / 2 && delay <= ceiling, "\(delay) in [\(ceiling / 2), \(ceiling)]")
        }
        first.reset()
        XCTAssertLessThanOrEqual(first.nextDelay(), 1_000)
    }
}
