/// Calendar helpers for UTC nanosecond timestamps. Pure arithmetic (no Foundation, no time zones).
public enum TimeUtil {
    public static let nsPerSecond: Int64 = 1_000_000_000
    public static let nsPerMinute: Int64 = 60_000_000_000

    /// The accepted range of every time Tape reads (event and receive times, bar times, `--from`/`--to`):
    /// 1970-01-01T00:00:00Z ≤ t ≤ 2200-01-01T00:00:00Z, in ns since the epoch. Parsers reject a time
    /// outside it (`bad_timestamp`), so an accepted time is far inside Int64 (which ends in 2262): later
    /// arithmetic (a bar's end, `end + lateness`, a stale-feed due time) has 62 years of headroom and
    /// cannot overflow.
    public static let acceptedNanosMin: Nanos = 0
    public static let acceptedNanosMax: Nanos = 7_258_118_400_000_000_000
    /// The same range as calendar years (a date in `acceptedYearMax` is accepted only on its first instant).
    public static let acceptedYearMin = 1970
    public static let acceptedYearMax = 2200
    /// The longest duration a configuration may give (a timeframe, an allowed lateness, a stale-feed
    /// delay): 366 days. An accepted time plus a few such durations stays far inside Int64.
    public static let durationNanosMax: Nanos = 366 * 86_400 * nsPerSecond
    /// The range as text, for messages.
    public static let acceptedRangeText = "1970-01-01T00:00:00Z ... 2200-01-01T00:00:00Z"

    /// True when `t` (ns) is inside the accepted range.
    @inline(__always)
    public static func isAccepted(_ t: Nanos) -> Bool { t >= acceptedNanosMin && t <= acceptedNanosMax }

    /// `value × nsPerUnit` when the product is inside the accepted range, else nil (never traps): the one
    /// checked conversion from s, ms or µs to ns.
    @inline(__always)
    public static func acceptedNanos(_ value: Int64, unitNanos nsPerUnit: Int64) -> Nanos? {
        let (product, overflow) = value.multipliedReportingOverflow(by: nsPerUnit)
        return !overflow && isAccepted(product) ? product : nil
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    public static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Parses `YYYY-MM-DD[ T]HH:MM[:SS[.fffffffff]][Z|+00:00|-05:00]` (UTC unless an offset is given),
    /// or `YYYY-MM-DD`, into ns since the epoch. Returns nil if malformed, if the day does not exist in
    /// its month (`2013-02-30`), or if the time is outside the accepted range (`isAccepted`).
    public static func parseDateTime(_ p: UnsafePointer<UInt8>, _ n: Int) -> Nanos? {
        func num(_ at: Int, _ len: Int) -> Int? {
            if at + len > n { return nil }
            var v = 0
            for k in at..<(at + len) {
                let d = Int(p[k]) - 48
                if d < 0 || d > 9 { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard n >= 10, let y = num(0, 4), p[4] == UInt8(ascii: "-"), let mo = num(5, 2), p[7] == UInt8(ascii: "-"),
              let d = num(8, 2), (1...12).contains(mo), (1...daysInMonth(y, mo)).contains(d) else { return nil }
        // One year of margin each side for offsets; the exact range is checked on the result.
        guard y >= acceptedYearMin - 1 && y <= acceptedYearMax + 1 else { return nil }
        var secs = Int64(daysFromCivil(y, mo, d)) * 86400
        var frac: Int64 = 0
        var i = 10
        if i < n {
            // `i + 3 < n` before looking for the `:`: "2024-08-09T12" ends right after the hour.
            guard p[i] == UInt8(ascii: " ") || p[i] == UInt8(ascii: "T"), let h = num(i + 1, 2), i + 3 < n,
                  p[i + 3] == UInt8(ascii: ":"), let mi = num(i + 4, 2), h < 24, mi < 60 else { return nil }
            secs += Int64(h * 3600 + mi * 60)
            i += 6
            if i < n && p[i] == UInt8(ascii: ":") {
                guard let s = num(i + 1, 2), s <= 60 else { return nil }
                secs += Int64(s)
                i += 3
                if i < n && p[i] == UInt8(ascii: ".") {
                    i += 1
                    var digits = 0
                    while i < n, p[i] >= 48, p[i] <= 57 {
                        if digits < 9 { frac = frac * 10 + Int64(p[i] - 48); digits += 1 }
                        i += 1
                    }
                    if digits == 0 { return nil }
                    while digits < 9 { frac *= 10; digits += 1 }
                }
            }
            if i < n {
                if p[i] == UInt8(ascii: "Z") { i += 1 }
                else if p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
                    let sign: Int64 = p[i] == UInt8(ascii: "+") ? 1 : -1
                    guard let oh = num(i + 1, 2) else { return nil }
                    var om = 0
                    if i + 3 < n && p[i + 3] == UInt8(ascii: ":") { guard let x = num(i + 4, 2) else { return nil }; om = x; i += 6 }
                    else if let x = num(i + 3, 2) { om = x; i += 5 } else { i += 3 }
                    secs -= sign * Int64(oh * 3600 + om * 60)
                }
            }
            if i != n { return nil }
        }
        let nanos = secs * nsPerSecond + frac
        return isAccepted(nanos) ? nanos : nil
    }

    /// Days in a month of the proleptic Gregorian calendar.
    public static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public static func parseDateTime(_ s: String) -> Nanos? {
        var s = s
        return s.withUTF8 { b in b.count == 0 ? nil : parseDateTime(b.baseAddress!, b.count) }
    }

    /// `2024-08-09T00:00:54.123456789Z` (nanoseconds always printed).
    public static func iso(_ t: Nanos) -> String {
        var secs = t / nsPerSecond
        var ns = t % nsPerSecond
        if ns < 0 { ns += nsPerSecond; secs -= 1 }
        var days = secs / 86400
        var rem = secs % 86400
        if rem < 0 { rem += 86400; days -= 1 }
        let (y, m, d) = civilFromDays(Int(days))
        func p2(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var nsStr = String(ns)
        while nsStr.count < 9 { nsStr = "0" + nsStr }
        return "\(y)-\(p2(Int64(m)))-\(p2(Int64(d)))T\(p2(rem / 3600)):\(p2(rem % 3600 / 60)):\(p2(rem % 60)).\(nsStr)Z"
    }

    /// Parses a user-facing time: integer ns, or a date/time as `parseDateTime` accepts; nil when
    /// malformed or outside the accepted range.
    public static func parseUserTime(_ s: String) -> Nanos? {
        if let v = Numbers.parseInt(s), s.count > 10 { return isAccepted(v) ? v : nil }
        return parseDateTime(s)
    }
}
