import TapeCore

/// The local time zones REST vendors print their bar times in, turned into UTC without Foundation.
/// Alpha Vantage names the zone in `"Meta Data"` (`"US/Eastern"`); FMP prints exchange local time
/// (America/New_York for US stocks) without naming it.
public enum VendorTimeZone: Sendable, Equatable {
    case utc
    /// America/New_York (= US/Eastern): EST (UTC−5) and EDT (UTC−4). DST by the US rule in force each
    /// year: from 2007, 2nd Sunday of March 02:00 to 1st Sunday of November 02:00 local; 1987–2006,
    /// 1st Sunday of April to last Sunday of October. (Years before 1987 use the 1987 rule.)
    case usEastern

    /// The zone for an IANA or vendor name: `US/Eastern`, `America/New_York`, `UTC`; nil otherwise.
    public static func named(_ bytes: UnsafeRawBufferPointer) -> VendorTimeZone? {
        if bytes.elementsEqual("US/Eastern".utf8) || bytes.elementsEqual("America/New_York".utf8) { return .usEastern }
        if bytes.elementsEqual("UTC".utf8) || bytes.elementsEqual("Etc/UTC".utf8) || bytes.elementsEqual("GMT".utf8) {
            return .utc
        }
        return nil
    }

    static let hourNanos: Int64 = 3_600 * TimeUtil.nsPerSecond
    static let dayNanos: Int64 = 86_400 * TimeUtil.nsPerSecond

    /// UTC for a local wall-clock time (given as ns since the epoch as if it were UTC).
    /// Local times that occur twice (the hour before 02:00 on the day DST ends) are read as the first
    /// (EDT); times that do not exist (02:00–02:59 on the day DST starts) are read as EDT too.
    public func utc(fromLocal local: Nanos) -> Nanos {
        switch self {
        case .utc:
            return local
        case .usEastern:
            let (start, end) = Self.easternDaylightBounds(year: Self.year(of: local))
            // Bounds in local wall time: 02:00 on the start day and 02:00 (EDT) on the end day.
            let daylight = local >= start + 2 * Self.hourNanos && local < end + 2 * Self.hourNanos
            return local + (daylight ? 4 : 5) * Self.hourNanos
        }
    }

    /// Local wall-clock time (as ns if it were UTC) of a UTC instant.
    public func local(fromUTC utc: Nanos) -> Nanos {
        switch self {
        case .utc:
            return utc
        case .usEastern:
            let (start, end) = Self.easternDaylightBounds(year: Self.year(of: utc))
            // DST starts at 07:00 UTC (02:00 EST) and ends at 06:00 UTC (02:00 EDT).
            let daylight = utc >= start + 7 * Self.hourNanos && utc < end + 6 * Self.hourNanos
            return utc - (daylight ? 4 : 5) * Self.hourNanos
        }
    }

    private static func year(of time: Nanos) -> Int {
        let days = Int(time >= 0 ? time / dayNanos : (time - dayNanos + 1) / dayNanos)
        return TimeUtil.civilFromDays(days).year
    }

    /// Midnight (as ns) of the first and the last day of US daylight saving time in `year`.
    static func easternDaylightBounds(year: Int) -> (start: Nanos, end: Nanos) {
        if year >= 2007 {
            return (midnight(nthSunday: 2, month: 3, year: year), midnight(nthSunday: 1, month: 11, year: year))
        }
        return (midnight(nthSunday: 1, month: 4, year: year), lastSundayMidnight(month: 10, year: year))
    }

    /// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
    private static func weekday(days: Int) -> Int { ((days % 7) + 7 + 4) % 7 }

    private static func midnight(nthSunday n: Int, month: Int, year: Int) -> Nanos {
        let first = TimeUtil.daysFromCivil(year, month, 1)
        let toSunday = (7 - weekday(days: first)) % 7
        return Nanos(first + toSunday + 7 * (n - 1)) * dayNanos
    }

    private static func lastSundayMidnight(month: Int, year: Int) -> Nanos {
        let last = TimeUtil.daysFromCivil(year, month, TimeUtil.daysInMonth(year, month))
        return Nanos(last - weekday(days: last)) * dayNanos
    }
}
