import XCTest
import TapeCore
import TapeClock
import TapeGraph

/// The trading calendars across DST switches, weekends, CME's daily break and holidays. Expected
/// instants are the published facts written out by hand (US DST 2024: 10 March 02:00 local to
/// 3 November 02:00 local; UK: 31 March 01:00 UTC), never computed by the code under test.
final class TradingCalendarTests: XCTestCase {
    /// UTC instant of an ISO text (`2024-03-10T21:00:00Z`).
    func utc(_ text: String) -> Nanos { TimeUtil.parseDateTime(text)! }
    let hour: Nanos = 3_600_000_000_000
    let minute: Nanos = 60_000_000_000

    func calendar(_ kind: TradingCalendar.Kind, holidays: [String] = []) -> TradingCalendar {
        TradingCalendar(kind: kind, holidays: holidays.map { Int(utc($0) / (24 * hour)) })!
    }

    func interval(_ open: String, _ close: String) -> TradingCalendar.Interval {
        TradingCalendar.Interval(open: utc(open), close: utc(close))
    }

    // MARK: time zones

    func testNewYorkAndChicagoSwitchOnTheSecondSundayOfMarchAndTheFirstOfNovember() throws {
        let newYork = try XCTUnwrap(ZoneOffsets.named("America/New_York"))
        XCTAssertEqual(newYork.offset(atUTC: utc("2024-03-10T06:59:59Z")), -5 * hour)   // 01:59:59 EST
        XCTAssertEqual(newYork.offset(atUTC: utc("2024-03-10T07:00:00Z")), -4 * hour)   // 03:00 EDT
        XCTAssertEqual(newYork.offset(atUTC: utc("2024-11-03T05:59:59Z")), -4 * hour)   // 01:59:59 EDT
        XCTAssertEqual(newYork.offset(atUTC: utc("2024-11-03T06:00:00Z")), -5 * hour)   // 01:00 EST
        // 2006 still had the old rule: first Sunday of April to the last Sunday of October.
        XCTAssertEqual(newYork.offset(atUTC: utc("2006-04-02T06:59:59Z")), -5 * hour)
        XCTAssertEqual(newYork.offset(atUTC: utc("2006-04-02T07:00:00Z")), -4 * hour)
        XCTAssertEqual(newYork.offset(atUTC: utc("2006-10-29T06:00:00Z")), -5 * hour)
        let chicago = try XCTUnwrap(ZoneOffsets.named("America/Chicago"))
        XCTAssertEqual(chicago.offset(atUTC: utc("2024-03-10T07:59:59Z")), -6 * hour)
        XCTAssertEqual(chicago.offset(atUTC: utc("2024-03-10T08:00:00Z")), -5 * hour)
        XCTAssertEqual(chicago.offset(atUTC: utc("2024-11-03T06:59:59Z")), -5 * hour)
        XCTAssertEqual(chicago.offset(atUTC: utc("2024-11-03T07:00:00Z")), -6 * hour)
        let london = try XCTUnwrap(ZoneOffsets.named("Europe/London"))
        XCTAssertEqual(london.offset(atUTC: utc("2024-03-31T00:59:59Z")), 0)
        XCTAssertEqual(london.offset(atUTC: utc("2024-03-31T01:00:00Z")), hour)
        XCTAssertNil(ZoneOffsets.named("Nowhere/Atlantis"))
    }

    func testLocalTimesInTheSkippedAndTheRepeatedHour() throws {
        let newYork = try XCTUnwrap(ZoneOffsets.newYork)
        // Plain local times either side of the switches.
        XCTAssertEqual(newYork.utc(fromLocal: utc("2024-03-10T17:00:00Z")), utc("2024-03-10T21:00:00Z"))
        XCTAssertEqual(newYork.utc(fromLocal: utc("2024-03-08T17:00:00Z")), utc("2024-03-08T22:00:00Z"))
        XCTAssertEqual(newYork.utc(fromLocal: utc("2024-11-03T17:00:00Z")), utc("2024-11-03T22:00:00Z"))
        // 02:30 does not exist on 10 March: read with the offset before the jump, i.e. 03:30 EDT.
        XCTAssertEqual(newYork.utc(fromLocal: utc("2024-03-10T02:30:00Z")), utc("2024-03-10T07:30:00Z"))
        // 01:30 happens twice on 3 November: the first (EDT).
        XCTAssertEqual(newYork.utc(fromLocal: utc("2024-11-03T01:30:00Z")), utc("2024-11-03T05:30:00Z"))
        XCTAssertEqual(newYork.local(fromUTC: utc("2024-11-03T06:30:00Z")), utc("2024-11-03T01:30:00Z"))
    }

    // MARK: calendars

    func testCryptoIsAlwaysOpen() {
        let crypto = calendar(.crypto)
        for text in ["2024-03-09T12:00:00Z", "2024-03-10T07:00:00Z", "2024-12-25T00:00:00Z", "1970-01-01T00:00:00Z"] {
            XCTAssertTrue(crypto.isOpen(at: utc(text)), text)
        }
        let last = utc("2024-03-08T22:00:00Z")
        XCTAssertEqual(crypto.silenceDeadline(since: last, duration: 2 * minute)?.due, last + 2 * minute)
        XCTAssertEqual(crypto.silenceDeadline(since: last, duration: 2 * minute)?.countedFrom, last)
    }

    func testFXOpensSunday17NewYorkAndClosesFriday17AcrossBothDSTSwitches() {
        let fx = calendar(.fx)
        // Friday 8 March 2024 (EST): closes at 17:00 = 22:00Z.
        XCTAssertTrue(fx.isOpen(at: utc("2024-03-08T21:59:59Z")))
        XCTAssertFalse(fx.isOpen(at: utc("2024-03-08T22:00:00Z")))
        XCTAssertFalse(fx.isOpen(at: utc("2024-03-09T12:00:00Z")))          // Saturday
        // Sunday 10 March is the spring-forward day: 17:00 EDT = 21:00Z.
        XCTAssertFalse(fx.isOpen(at: utc("2024-03-10T20:59:59Z")))
        XCTAssertTrue(fx.isOpen(at: utc("2024-03-10T21:00:00Z")))
        // No daily break: 17:00 on a weekday is the roll, the market stays open.
        XCTAssertTrue(fx.isOpen(at: utc("2024-03-12T21:00:00Z")))
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-03-13T12:00:00Z")),
                       interval("2024-03-10T21:00:00Z", "2024-03-15T21:00:00Z"))
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-03-06T12:00:00Z")),
                       interval("2024-03-03T22:00:00Z", "2024-03-08T22:00:00Z"))
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-03-09T12:00:00Z")),
                       interval("2024-03-10T21:00:00Z", "2024-03-15T21:00:00Z"))
        // Fall back on Sunday 3 November: Friday 1 November closes 21:00Z (EDT), Sunday opens 22:00Z (EST).
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-10-30T12:00:00Z")),
                       interval("2024-10-27T21:00:00Z", "2024-11-01T21:00:00Z"))
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-11-02T12:00:00Z")),
                       interval("2024-11-03T22:00:00Z", "2024-11-08T22:00:00Z"))
    }

    func testCMEHasADailyBreak16To17ChicagoAndAWeekend() {
        let cme = calendar(.cme)
        // Monday 4 March 2024 (CST): break 16:00–17:00 = 22:00–23:00Z.
        XCTAssertTrue(cme.isOpen(at: utc("2024-03-04T21:59:59Z")))
        XCTAssertFalse(cme.isOpen(at: utc("2024-03-04T22:00:00Z")))
        XCTAssertFalse(cme.isOpen(at: utc("2024-03-04T22:59:59Z")))
        XCTAssertTrue(cme.isOpen(at: utc("2024-03-04T23:00:00Z")))
        // Monday 11 March (CDT): 21:00–22:00Z.
        XCTAssertEqual(cme.interval(containingOrAfter: utc("2024-03-11T15:00:00Z")),
                       interval("2024-03-10T22:00:00Z", "2024-03-11T21:00:00Z"))
        XCTAssertFalse(cme.isOpen(at: utc("2024-03-11T21:30:00Z")))
        XCTAssertEqual(cme.interval(containingOrAfter: utc("2024-03-11T21:30:00Z")),
                       interval("2024-03-11T22:00:00Z", "2024-03-12T21:00:00Z"))
        // Weekend: Friday 8 March closes 16:00 CST = 22:00Z; Sunday 10 March opens 17:00 CDT = 22:00Z.
        XCTAssertFalse(cme.isOpen(at: utc("2024-03-08T22:00:00Z")))
        XCTAssertEqual(cme.interval(containingOrAfter: utc("2024-03-08T22:00:00Z")),
                       interval("2024-03-10T22:00:00Z", "2024-03-11T21:00:00Z"))
        // Fall back: Sunday 3 November opens 17:00 CST = 23:00Z.
        XCTAssertEqual(cme.interval(containingOrAfter: utc("2024-11-02T12:00:00Z")),
                       interval("2024-11-03T23:00:00Z", "2024-11-04T22:00:00Z"))
    }

    func testUSEquitiesRegularAndExtendedHoursFollowNewYorkTime() {
        let equities = calendar(.usEquities)
        XCTAssertEqual(equities.interval(containingOrAfter: utc("2024-03-08T12:00:00Z")),
                       interval("2024-03-08T14:30:00Z", "2024-03-08T21:00:00Z"))         // EST
        XCTAssertEqual(equities.interval(containingOrAfter: utc("2024-03-08T21:00:00Z")),
                       interval("2024-03-11T13:30:00Z", "2024-03-11T20:00:00Z"))         // EDT, after the weekend
        XCTAssertEqual(equities.interval(containingOrAfter: utc("2024-11-01T12:00:00Z")),
                       interval("2024-11-01T13:30:00Z", "2024-11-01T20:00:00Z"))
        XCTAssertEqual(equities.interval(containingOrAfter: utc("2024-11-02T12:00:00Z")),
                       interval("2024-11-04T14:30:00Z", "2024-11-04T21:00:00Z"))
        XCTAssertFalse(equities.isOpen(at: utc("2024-03-09T15:00:00Z")))                 // Saturday
        let extended = calendar(.usEquitiesExtended)
        XCTAssertEqual(extended.interval(containingOrAfter: utc("2024-03-08T08:00:00Z")),
                       interval("2024-03-08T09:00:00Z", "2024-03-09T01:00:00Z"))         // 04:00–20:00 EST
    }

    func testAHolidayClosesItsTradingDate() {
        let equities = calendar(.usEquities, holidays: ["2024-12-25"])
        XCTAssertFalse(equities.isOpen(at: utc("2024-12-25T15:00:00Z")))
        XCTAssertEqual(equities.interval(containingOrAfter: utc("2024-12-25T15:00:00Z")),
                       interval("2024-12-26T14:30:00Z", "2024-12-26T21:00:00Z"))
        XCTAssertTrue(calendar(.usEquities).isOpen(at: utc("2024-12-25T15:00:00Z")), "no holiday unless listed")
        // CME: the trading date 25 December is the session from the 24th 17:00 to the 25th 16:00 CT.
        let cme = calendar(.cme, holidays: ["2024-12-25"])
        XCTAssertTrue(cme.isOpen(at: utc("2024-12-24T21:00:00Z")))                       // 15:00 CT on the 24th
        XCTAssertFalse(cme.isOpen(at: utc("2024-12-25T12:00:00Z")))
        XCTAssertEqual(cme.interval(containingOrAfter: utc("2024-12-25T12:00:00Z")),
                       interval("2024-12-25T23:00:00Z", "2024-12-26T22:00:00Z"))
        // FX: the holiday splits the week's stretch at the 17:00 rolls either side of it.
        let fx = calendar(.fx, holidays: ["2024-12-25"])
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-12-23T12:00:00Z")),
                       interval("2024-12-22T22:00:00Z", "2024-12-24T22:00:00Z"))
        XCTAssertEqual(fx.interval(containingOrAfter: utc("2024-12-25T12:00:00Z")),
                       interval("2024-12-25T22:00:00Z", "2024-12-27T22:00:00Z"))
    }

    // MARK: silence deadlines

    func testASilenceCountsFromTheLaterOfTheLastEventAndTheSessionOpen() throws {
        let fx = calendar(.fx)
        // Last quote Friday 16:59 EST; 2 minutes of silence would end after the close: counted from
        // Sunday's open instead (17:00 EDT = 21:00Z), due 21:02Z.
        let friday = try XCTUnwrap(fx.silenceDeadline(since: utc("2024-03-08T21:59:00Z"), duration: 2 * minute))
        XCTAssertEqual(friday.due, utc("2024-03-10T21:02:00Z"))
        XCTAssertEqual(friday.countedFrom, utc("2024-03-10T21:00:00Z"))
        // Inside the week: the last event plus the duration.
        XCTAssertEqual(fx.silenceDeadline(since: utc("2024-03-12T10:00:00Z"), duration: 2 * minute)?.due,
                       utc("2024-03-12T10:02:00Z"))
        // A silence that ends exactly at the close does not count (at the close the market is closed).
        XCTAssertEqual(fx.silenceDeadline(since: utc("2024-03-08T21:58:00Z"), duration: 2 * minute)?.due,
                       utc("2024-03-10T21:02:00Z"))
        // CME: the last trade at 15:59 CDT, the break, then counted from 17:00 CDT.
        let cme = calendar(.cme)
        XCTAssertEqual(cme.silenceDeadline(since: utc("2024-03-11T20:59:00Z"), duration: 2 * minute)?.due,
                       utc("2024-03-11T22:02:00Z"))
        // US equities: a silence longer than a session never completes.
        let equities = calendar(.usEquities)
        XCTAssertNil(equities.silenceDeadline(since: utc("2024-03-11T14:00:00Z"), duration: 7 * hour))
        XCTAssertEqual(equities.silenceDeadline(since: utc("2024-03-11T19:59:00Z"), duration: 2 * minute)?.due,
                       utc("2024-03-12T13:32:00Z"))
    }
}

/// `sessions:` in the pipeline config and the stale-feed rule under calendars, through the graph.
final class SessionsConfigTests: XCTestCase {
    func testSessionsKeysParseAndResolveSymbolsExactFirstThenPatternsInOrder() throws {
        let config = try PipelineConfig.load(yaml: """
        sessions:
          default: fx
          symbols: {"cme:ES*": cme, "*": crypto, "spot:BTCUSDT": us_equities, "cme:ESH4": us_equities}
          holidays: {us_equities: [2024-12-25, 2024-07-04, 2024-12-25]}
        """, source: "p.yaml")
        let sessions = config.sessions
        XCTAssertEqual(sessions.defaultCalendar, .fx)
        XCTAssertEqual(sessions.calendar(forSymbol: "cme:ESM4"), .cme)
        XCTAssertEqual(sessions.calendar(forSymbol: "cme:ESH4"), .usEquities, "an exact name beats an earlier pattern")
        XCTAssertEqual(sessions.calendar(forSymbol: "spot:BTCUSDT"), .usEquities)
        XCTAssertEqual(sessions.calendar(forSymbol: "fxcm:GBPUSD"), .crypto, "the catch-all pattern")
        XCTAssertEqual(sessions.holidays[.usEquities]?.count, 2, "deduplicated")
        XCTAssertTrue(config.canonicalText.contains("sessions.default=fx\n"), config.canonicalText)
        XCTAssertTrue(config.canonicalText.contains("sessions.holidays.us_equities=2024-07-04,2024-12-25\n"))
        XCTAssertTrue(config.canonicalText.contains("sessions.symbol=cme cme:ES*\n"))

        // Defaults: no sessions line, so config hashes of every existing config are unchanged.
        let explicitDefault = try PipelineConfig.load(yaml: "sessions: {default: crypto}\n", source: "p.yaml")
        XCTAssertEqual(explicitDefault, PipelineConfig())
        XCTAssertFalse(PipelineConfig().canonicalText.contains("sessions"))
        XCTAssertTrue(explicitDefault.sessions.isDefault)

        // Overrides (scenarios): an entry with the same pattern replaces, a new one is added after.
        let merged = try config.merged(overrides: "sessions: {symbols: {\"cme:ES*\": fx, \"FXCM-*\": fx}}",
                                       source: "s.yaml")
        XCTAssertEqual(merged.sessions.symbols.map(\.pattern), ["cme:ES*", "*", "spot:BTCUSDT", "cme:ESH4", "FXCM-*"])
        XCTAssertEqual(merged.sessions.calendar(forSymbol: "cme:ESM4"), .fx)

        XCTAssertTrue(PipelineConfig.Sessions.matches(pattern: Array("a*b*c".utf8), Array("aXbYYc".utf8)))
        XCTAssertFalse(PipelineConfig.Sessions.matches(pattern: Array("a*b*c".utf8), Array("aXbYYcd".utf8)))
        XCTAssertTrue(PipelineConfig.Sessions.matches(pattern: Array("*".utf8), Array("".utf8)))
    }

    func testBadSessionsKeysNameTheKey() {
        func message(_ yaml: String) -> String {
            do { _ = try PipelineConfig.load(yaml: yaml, source: "p.yaml"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message("sessions: {default: forex}\n"),
                       "p.yaml: sessions.default: unknown calendar \"forex\" (one of crypto, fx, cme, us_equities, us_equities_extended)")
        XCTAssertTrue(message("sessions: {symbols: {\"fxcm:GBPUSD\": 24/5}}\n")
            .hasPrefix("p.yaml: sessions.symbols.fxcm:GBPUSD: unknown calendar \"24/5\""))
        XCTAssertEqual(message("sessions: {holidays: {cme: [2024-13-01]}}\n"),
                       "p.yaml: sessions.holidays.cme[0]: expected a date like 2024-12-25, got \"2024-13-01\"")
        XCTAssertEqual(message("sessions: {holidays: {crypto: [2024-12-25]}}\n"),
                       "p.yaml: sessions.holidays.crypto: crypto is open every day: it has no holidays")
        XCTAssertEqual(message("sessions: {holidays: {cme: 2024-12-25}}\n"),
                       "p.yaml: sessions.holidays.cme: expected a list of dates like [2024-12-25]")
        XCTAssertEqual(message("sessions: {weekends: true}\n"),
                       "p.yaml: sessions.weekends: unknown key (allowed here: default, symbols, holidays)")
        XCTAssertEqual(message("sessions: {symbols: {\"\": fx}}\n"),
                       "p.yaml: sessions.symbols.: a symbol name or a pattern with *, not empty, without control characters")
    }

    // MARK: the rule through the graph

    /// A graph with `stale_feed.after` 2 minutes on symbol `fxcm:GBPUSD` under `calendar`.
    func make(_ calendar: TradingCalendar.Kind) -> (Graph, SimulatedClock, CollectingSink, SymbolID) {
        var config = PipelineConfig()
        config.timeframes = [Timeframe("1m")!]
        config.staleFeed.after = 120_000_000_000
        config.sessions.symbols = [.init(pattern: "fxcm:*", calendar: calendar)]
        let clock = SimulatedClock(), sink = CollectingSink(), symbols = SymbolTable()
        let id = symbols.intern("fxcm:GBPUSD")
        return (Graph(config: config, clock: clock, symbols: symbols, sink: sink), clock, sink, id)
    }

    func quote(_ time: Nanos, _ symbol: SymbolID) -> MarketEvent {
        .quote(eventTime: time, receiveTime: time, symbol: symbol, bid: 1.27, bidSize: 1, ask: 1.2701, askSize: 1)
    }

    /// Quotes every 30 s over [from, to).
    func quotes(from: Nanos, to: Nanos, _ symbol: SymbolID) -> [MarketEvent] {
        stride(from: from, to: to, by: 30_000_000_000).map { quote($0, symbol) }
    }

    func stale(_ sink: CollectingSink) -> [AnomalyOutput] {
        sink.outputs.compactMap { if case .anomaly(let a) = $0, a.rule == "stale_feed" { return a }; return nil }
    }

    func testAWeekendIsNoAnomalyUnderFXAndOneUnderCrypto() {
        let utc = { (text: String) in TimeUtil.parseDateTime(text)! }
        // Quotes until Friday 8 March 2024 16:59:30 EST (21:59:30Z), again from Sunday 17:01 EDT (21:01Z).
        let events = quotes(from: utc("2024-03-08T20:00:00Z"), to: utc("2024-03-08T22:00:00Z"), 0)
            + quotes(from: utc("2024-03-10T21:01:00Z"), to: utc("2024-03-10T22:00:00Z"), 0)
        for (kind, expected) in [(TradingCalendar.Kind.fx, [Nanos]()), (.crypto, [utc("2024-03-08T22:01:30Z")])] {
            let (graph, clock, sink, id) = make(kind)
            for event in events {
                var delivered = event
                delivered.symbol = id
                clock.advance(to: delivered.receiveTime)
                graph.onEvent(delivered)
            }
            graph.finish()
            XCTAssertEqual(stale(sink).map(\.time), expected, "\(kind)")
        }
        // Sunday's first quote 3 minutes after the open: stale at open + 2 min, the silence counted from the open.
        let late = quotes(from: utc("2024-03-08T21:00:00Z"), to: utc("2024-03-08T22:00:00Z"), 0)
            + quotes(from: utc("2024-03-10T21:03:00Z"), to: utc("2024-03-10T21:10:00Z"), 0)
        let (graph, clock, sink, id) = make(.fx)
        for event in late {
            var delivered = event
            delivered.symbol = id
            clock.advance(to: delivered.receiveTime)
            graph.onEvent(delivered)
        }
        XCTAssertEqual(stale(sink).map(\.time), [utc("2024-03-10T21:02:00Z")])
        XCTAssertEqual(stale(sink).first?.value, 120)
    }

    func testCMEDailyBreakIsNoAnomalyAndASnapshotTakenInTheBreakContinuesTheSame() throws {
        let utc = { (text: String) in TimeUtil.parseDateTime(text)! }
        // Monday 11 March 2024: quotes until 15:59:30 CDT (20:59:30Z), then from 17:00:30 CDT (22:00:30Z)
        // to 17:09:30, then silence: stale at 17:11:30 CDT (22:11:30Z) under cme.
        let events = quotes(from: utc("2024-03-11T20:00:00Z"), to: utc("2024-03-11T21:00:00Z"), 0)
            + quotes(from: utc("2024-03-11T22:00:30Z"), to: utc("2024-03-11T22:10:00Z"), 0)
            + [quote(utc("2024-03-11T22:30:00Z"), 0)]
        func run(_ kind: TradingCalendar.Kind, splitAt split: Int? = nil) throws -> [String] {
            let made = make(kind)
            var graph = made.0
            var clock = made.1
            var id = made.3
            let sink = made.2
            let config = graph.config
            for (index, event) in events.enumerated() {
                if index == split {
                    // The clock moves into the gap before this event (no timer is due there), then the split.
                    clock.advance(to: (events[index - 1].receiveTime + event.receiveTime) / 2)
                    let bytes = graph.snapshot()
                    let restoredClock = SimulatedClock(), symbols = SymbolTable()
                    let restored = Graph(config: config, clock: restoredClock, symbols: symbols, sink: sink)
                    try restored.restore(from: bytes)
                    (graph, clock) = (restored, restoredClock)
                    id = symbols.lookup("fxcm:GBPUSD")!
                }
                var delivered = event
                delivered.symbol = id
                clock.advance(to: delivered.receiveTime)
                graph.onEvent(delivered)
            }
            graph.finish()
            return stale(sink).map { "\($0.time) \($0.value)" }
        }
        XCTAssertEqual(try run(.cme), ["\(utc("2024-03-11T22:11:30Z")) 120.0"])
        XCTAssertEqual(try run(.crypto), ["\(utc("2024-03-11T21:01:30Z")) 120.0", "\(utc("2024-03-11T22:11:30Z")) 120.0"])
        // Split in the break (the timer pending for 17:02 CDT carries over) and inside the session.
        XCTAssertEqual(try run(.cme, splitAt: 120), try run(.cme))
        XCTAssertEqual(try run(.cme, splitAt: 125), try run(.cme))
    }
}
