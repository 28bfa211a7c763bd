import TapeCore

/// When a market is open: weekly sessions in the market's own time zone, minus a list of closed
/// trading dates. A value built from its kind and holidays when the graph is made; its queries are
/// pure arithmetic on UTC nanoseconds (no wall clock, no Foundation), so the stale-feed rule can ask
/// them from a timer.
///
///     let fx = TradingCalendar(kind: .fx)!
///     fx.isOpen(at: TimeUtil.parseDateTime("2024-03-09T12:00:00Z")!)          // false: a Saturday
///     fx.interval(containingOrAfter: saturdayNoon)                           // Sunday 17:00 → Friday 17:00 New York
///
/// A session belongs to the trading date on which it closes (the CME and FX convention: Sunday's
/// 17:00 open is Monday's session); a holiday removes the session of that trading date. Sessions that
/// touch (FX's 17:00 roll) form one open stretch: the market does not close between them.
public struct TradingCalendar: Sendable, Equatable {
    /// The built-in calendars (docs/graph.md, "Trading sessions").
    public enum Kind: String, CaseIterable, Sendable, Comparable {
        /// Open every instant (crypto venues).
        case crypto
        /// Spot FX: Sunday 17:00 to Friday 17:00 America/New_York, no daily break (the 17:00 roll is
        /// the trading-date boundary).
        case fx
        /// CME Globex futures: Sunday 17:00 to Friday 16:00 America/Chicago, closed daily 16:00–17:00.
        case cme
        /// US equities regular hours: Monday–Friday 09:30–16:00 America/New_York.
        case usEquities = "us_equities"
        /// US equities with pre- and after-market: Monday–Friday 04:00–20:00 America/New_York.
        case usEquitiesExtended = "us_equities_extended"

        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
        /// The names as written in the config, for messages.
        public static let namesText = allCases.map(\.rawValue).joined(separator: ", ")
    }

    /// An open stretch [open, close) in UTC ns.
    public struct Interval: Sendable, Equatable {
        public var open: Nanos
        public var close: Nanos
        public init(open: Nanos, close: Nanos) {
            self.open = open
            self.close = close
        }
    }

    /// One session, by the weekday of its trading date: it opens `openDaysBefore` days before that
    /// date at `openMinute` and closes on the date at `closeMinute` (local minutes after midnight).
    struct Session: Sendable, Equatable {
        var openDaysBefore: Int
        var openMinute: Int
        var closeMinute: Int
    }

    public let kind: Kind
    /// nil: always open (crypto).
    let zone: ZoneOffsets?
    /// Indexed by weekday, 0 = Sunday … 6 = Saturday; nil = no session on trading dates of that weekday.
    let sessions: [Session?]
    /// Closed trading dates, as local days since 1970-01-01.
    public let holidays: Set<Int>

    static let minuteNanos = TimeUtil.nsPerMinute
    static let dayNanos = 86_400 * TimeUtil.nsPerSecond
    /// Days searched back for the start of the open stretch around an instant: longer than any
    /// stretch of the built-in calendars (FX's Sunday-to-Friday, 5 days) plus a day.
    static let lookBackDays = 8
    /// Days searched forward for the next session: a year of consecutive holidays at most.
    static let lookAheadDaysMax = 370
    /// Open stretches a silence deadline looks through before it gives up (each shorter than the silence).
    static let deadlineIntervalsMax = 64

    /// The calendar of `kind` with these closed trading dates (local days since 1970-01-01); nil when
    /// the tz database does not know the calendar's time zone.
    public init?(kind: Kind, holidays: [Int] = []) {
        self.kind = kind
        self.holidays = Set(holidays)
        let weekdays: ClosedRange<Int> = 1...5
        var sessions = [Session?](repeating: nil, count: 7)
        let session: Session?
        switch kind {
        case .crypto:
            zone = nil
            session = nil
        case .fx:
            guard let newYork = ZoneOffsets.newYork else { return nil }
            zone = newYork
            session = Session(openDaysBefore: 1, openMinute: 17 * 60, closeMinute: 17 * 60)
        case .cme:
            guard let chicago = ZoneOffsets.chicago else { return nil }
            zone = chicago
            session = Session(openDaysBefore: 1, openMinute: 17 * 60, closeMinute: 16 * 60)
        case .usEquities:
            guard let newYork = ZoneOffsets.newYork else { return nil }
            zone = newYork
            session = Session(openDaysBefore: 0, openMinute: 9 * 60 + 30, closeMinute: 16 * 60)
        case .usEquitiesExtended:
            guard let newYork = ZoneOffsets.newYork else { return nil }
            zone = newYork
            session = Session(openDaysBefore: 0, openMinute: 4 * 60, closeMinute: 20 * 60)
        }
        if let session { for weekday in weekdays { sessions[weekday] = session } }
        self.sessions = sessions
        assert((zone == nil) == (kind == .crypto))
    }

    /// 0 = Sunday … 6 = Saturday for days since 1970-01-01 (a Thursday).
    static func weekday(ofDay day: Int) -> Int { ((day % 7) + 7 + 4) % 7 }

    /// Days since 1970-01-01 of the UTC or local ns `time` (floor).
    static func day(of time: Nanos) -> Int {
        Int(time >= 0 ? time / dayNanos : (time + 1) / dayNanos - 1)
    }

    /// The session of one trading date (local days since 1970-01-01), nil on a weekend or a holiday.
    func session(tradingDay day: Int) -> Interval? {
        guard let zone, let session = sessions[Self.weekday(ofDay: day)], !holidays.contains(day) else { return nil }
        let openLocal = Nanos(day - session.openDaysBefore) * Self.dayNanos + Nanos(session.openMinute) * Self.minuteNanos
        let closeLocal = Nanos(day) * Self.dayNanos + Nanos(session.closeMinute) * Self.minuteNanos
        let interval = Interval(open: zone.utc(fromLocal: openLocal), close: zone.utc(fromLocal: closeLocal))
        assert(interval.open < interval.close, "a session opens before it closes")
        return interval
    }

    /// The open stretch that contains `instant` (open ≤ instant < close), else the next one; nil when
    /// none starts within `lookAheadDaysMax` days. Crypto: (−∞, +∞) as (Int64.min, Int64.max).
    public func interval(containingOrAfter instant: Nanos) -> Interval? {
        guard let zone else { return Interval(open: .min, close: .max) }
        let today = Self.day(of: zone.local(fromUTC: instant))
        var stretch: Interval? = nil
        for day in (today - Self.lookBackDays)...(today + Self.lookAheadDaysMax) {
            guard let next = session(tradingDay: day) else { continue }
            if var current = stretch, next.open <= current.close {
                current.close = max(current.close, next.close)   // touching sessions: one stretch
                stretch = current
                continue
            }
            if let current = stretch, current.close > instant { return current }
            stretch = next
        }
        if let current = stretch, current.close > instant { return current }
        return nil
    }

    /// True when the market is open at `instant`.
    public func isOpen(at instant: Nanos) -> Bool {
        guard let interval = interval(containingOrAfter: instant) else { return false }
        return interval.open <= instant
    }

    /// When a feed silent since `last` has been silent for `duration` of open market: the first instant
    /// `due` with due − start = duration inside one open stretch, where start is `last` or the stretch's
    /// open, whichever is later (a silence across a weekend counts from Sunday's open, not from Friday).
    /// A stretch that closes at or before `due` does not count (at its close the market is closed) and
    /// the search moves to the next. nil when no stretch within reach is long enough. Crypto:
    /// (last + duration, last).
    public func silenceDeadline(since last: Nanos, duration: Nanos) -> (due: Nanos, countedFrom: Nanos)? {
        precondition(duration >= 0, "a silence lasts a duration, never negative")
        var from = last
        for _ in 0..<Self.deadlineIntervalsMax {
            guard let interval = interval(containingOrAfter: from) else { return nil }
            let start = max(last, interval.open)
            let due = start + duration
            if due < interval.close { return (due, start) }
            from = interval.close
        }
        return nil
    }
}
