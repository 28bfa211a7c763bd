import TapeCore

/// Calendar times as bar vendors and platforms write them, parsed without allocating.
///
/// A date is `YYYY-MM-DD`, `YYYY.MM.DD` (MetaTrader), `YYYY/MM/DD` or `YYYYMMDD` (HistData); a time of
/// day is `HH:MM[:SS[.f…]]` or `HHMM`, `HHMMSS`, `HHMMSSfff` (HistData); a zone is `Z`, `±HH`, `±HHMM`,
/// `±HH:MM` or ` UTC`/` GMT`, and a time without one is UTC. A date and its time are joined by a space
/// or `T` in one field (`2012-02-01 00:00:00+00:00`, `20120201 000000`), follow each other without a
/// separator (`20120201000000`), or sit in two columns (`2012.02.01`,`00:00`). A date alone is
/// midnight UTC (daily bars).
///
/// The parser checks the calendar (a month's days, hours below 24) but not Tape's accepted range: it
/// returns seconds and nanoseconds of years 0001 … 9999, and the caller decides (`accepted`), so that a
/// well-formed time outside 1970 … 2200 is reported as outside the range rather than as no time.
/// `TimeUtil.parseDateTime`'s ISO-8601 forms parse to the same instant here.
public enum BarTimeText {
    /// A time as seconds since the epoch plus nanoseconds (0 ..< 1e9).
    public typealias Instant = (seconds: Int64, nanos: Int64)

    /// `date[( |T)time[zone]]`, `date` followed directly by a compact time, or `date` alone.
    public static func parse(_ text: UnsafePointer<UInt8>, _ count: Int) -> Instant? {
        guard let (days, dateEnd, compactDate) = date(text, count) else { return nil }
        if dateEnd == count { return (days * 86_400, 0) }
        var start = dateEnd
        if text[start] == UInt8(ascii: " ") || text[start] == UInt8(ascii: "T") {
            start += 1
        } else if !(compactDate && isDigit(text[start])) {
            return nil
        }
        guard let (seconds, nanos) = timeOfDay(text + start, count - start) else { return nil }
        return (days * 86_400 + seconds, nanos)
    }

    /// A date in one field and its time of day (with an optional zone) in another.
    public static func parse(date dateText: UnsafePointer<UInt8>, _ dateCount: Int,
                             time timeText: UnsafePointer<UInt8>, _ timeCount: Int) -> Instant? {
        guard let (days, dateEnd, _) = date(dateText, dateCount), dateEnd == dateCount else { return nil }
        guard let (seconds, nanos) = timeOfDay(timeText, timeCount) else { return nil }
        return (days * 86_400 + seconds, nanos)
    }

    /// ns since the epoch when the instant is inside `TimeUtil`'s accepted range, else nil.
    @inline(__always)
    public static func accepted(_ instant: Instant) -> Nanos? {
        guard instant.seconds >= 0, instant.seconds <= TimeUtil.acceptedNanosMax / TimeUtil.nsPerSecond else {
            return nil
        }
        let nanos = instant.seconds * TimeUtil.nsPerSecond + instant.nanos
        return TimeUtil.isAccepted(nanos) ? nanos : nil
    }

    /// The date at the start of `text`: days since 1970-01-01, where it ends, and whether it was the
    /// compact `YYYYMMDD`.
    @inline(__always)
    static func date(_ text: UnsafePointer<UInt8>, _ count: Int) -> (days: Int64, end: Int, compact: Bool)? {
        guard count >= 8, let year = digits(text, 0, 4) else { return nil }
        let separator = text[4]
        let month: Int, day: Int, end: Int
        if isDigit(separator) {
            guard let m = digits(text, 4, 2), let d = digits(text, 6, 2) else { return nil }
            month = m; day = d; end = 8
        } else {
            guard separator == UInt8(ascii: "-") || separator == UInt8(ascii: ".") || separator == UInt8(ascii: "/"),
                  count >= 10, let m = digits(text, 5, 2), text[7] == separator, let d = digits(text, 8, 2)
            else { return nil }
            month = m; day = d; end = 10
        }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= TimeUtil.daysInMonth(year, month) else {
            return nil
        }
        return (Int64(TimeUtil.daysFromCivil(year, month, day)), end, end == 8)
    }

    /// `HH:MM[:SS[.f…]]` or `HHMM[SS[fff]]`, then an optional zone; the whole of `text`. Seconds of the
    /// day with the zone's offset taken off (may be negative or past one day), and nanoseconds.
    @inline(__always)
    static func timeOfDay(_ text: UnsafePointer<UInt8>, _ count: Int) -> (seconds: Int64, nanos: Int64)? {
        guard count >= 4, let hour = digits(text, 0, 2), hour < 24 else { return nil }
        var minute = 0, second = 0
        var nanos: Int64 = 0
        var index: Int
        // A fraction may follow the seconds only (not the minutes, not HistData's milliseconds).
        var fractionAllowed = false
        if text[2] == UInt8(ascii: ":") {
            guard let m = digits(text, 3, 2, count) else { return nil }
            minute = m
            index = 5
            if index < count && text[index] == UInt8(ascii: ":") {
                guard let s = digits(text, index + 1, 2, count) else { return nil }
                second = s
                index += 3
                fractionAllowed = true
            }
        } else {
            // Compact: HHMM, HHMMSS or HHMMSSfff (HistData ticks).
            var run = 2
            while run < count && isDigit(text[run]) { run += 1 }
            guard run == 4 || run == 6 || run == 9, let m = digits(text, 2, 2) else { return nil }
            minute = m
            if run >= 6, let s = digits(text, 4, 2) { second = s }
            if run == 9, let milliseconds = digits(text, 6, 3) { nanos = Int64(milliseconds) * 1_000_000 }
            fractionAllowed = run == 6
            index = run
        }
        guard minute < 60, second <= 60 else { return nil }
        if fractionAllowed && index < count && text[index] == UInt8(ascii: ".") {
            index += 1
            var fractionDigits = 0
            while index < count && isDigit(text[index]) {
                if fractionDigits < 9 { nanos = nanos * 10 + Int64(text[index] &- 48); fractionDigits += 1 }
                index += 1
            }
            guard fractionDigits > 0 else { return nil }
            while fractionDigits < 9 { nanos *= 10; fractionDigits += 1 }
        }
        var seconds = Int64(hour * 3_600 + minute * 60 + second)
        guard let (offsetSeconds, zoneEnd) = zone(text, count, from: index), zoneEnd == count else { return nil }
        seconds -= offsetSeconds
        return (seconds, nanos)
    }

    /// The zone at `start`: its offset east of UTC in seconds and where it ends (no zone: 0, `start`).
    @inline(__always)
    static func zone(_ text: UnsafePointer<UInt8>, _ count: Int, from start: Int) -> (Int64, Int)? {
        if start == count { return (0, start) }
        let first = text[start]
        if first == UInt8(ascii: "Z") { return (0, start + 1) }
        if first == UInt8(ascii: " ") {
            // ` UTC` / ` GMT`
            guard count - start == 4 else { return nil }
            let a = text[start + 1], b = text[start + 2], c = text[start + 3]
            let utc = a == UInt8(ascii: "U") && b == UInt8(ascii: "T") && c == UInt8(ascii: "C")
            let gmt = a == UInt8(ascii: "G") && b == UInt8(ascii: "M") && c == UInt8(ascii: "T")
            return utc || gmt ? (0, count) : nil
        }
        guard first == UInt8(ascii: "+") || first == UInt8(ascii: "-"),
              let hours = digits(text, start + 1, 2, count), hours < 24 else { return nil }
        var minutes = 0
        var end = start + 3
        if end < count && text[end] == UInt8(ascii: ":") {
            guard let m = digits(text, end + 1, 2, count) else { return nil }
            minutes = m
            end += 3
        } else if let m = digits(text, end, 2, count) {
            minutes = m
            end += 2
        }
        guard minutes < 60 else { return nil }
        let offset = Int64(hours * 3_600 + minutes * 60)
        return (first == UInt8(ascii: "+") ? offset : -offset, end)
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- 48 <= 9 }

    /// The decimal value of `length` digits at `start`, nil if one is not a digit or `count` ends first.
    @inline(__always)
    static func digits(_ text: UnsafePointer<UInt8>, _ start: Int, _ length: Int, _ count: Int = Int.max) -> Int? {
        if start + length > count { return nil }
        var value = 0
        for index in start..<(start + length) {
            let digit = text[index] &- 48
            if digit > 9 { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }
}

extension BarTimeText {
    /// The shape of a time text, for the summary: `2021-12-31 23:01:00.000000` → `YYYY-MM-DD HH:MM:SS.ffffff`,
    /// `20120201 000000` → `YYYYMMDD HHMMSS`, `2012-02-01 00:00:00+00:00` → `YYYY-MM-DD HH:MM:SS+HH:MM`.
    /// nil when `text` is not a time `parse` reads. Cold path (once per input).
    public static func shape(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.withUnsafeBufferPointer({ parse($0.baseAddress!, $0.count) }) != nil else {
            return nil
        }
        return shape(of: bytes, date: true)
    }

    /// The shape of a date column and a time-of-day column: `YYYY.MM.DD + HH:MM`.
    public static func shape(date: String, time: String) -> String? {
        let dateBytes = Array(date.utf8), timeBytes = Array(time.utf8)
        guard !dateBytes.isEmpty, !timeBytes.isEmpty else { return nil }
        let parsed = dateBytes.withUnsafeBufferPointer { dateText in
            timeBytes.withUnsafeBufferPointer { timeText in
                parse(date: dateText.baseAddress!, dateText.count, time: timeText.baseAddress!, timeText.count)
            }
        }
        guard parsed != nil else { return nil }
        return shape(of: dateBytes, date: true) + " + " + shape(of: timeBytes, date: false)
    }

    /// Replaces digits by the letters of their place, following the grammar `parse` reads.
    private static func shape(of bytes: [UInt8], date: Bool) -> String {
        var letters: [Character] = []
        var index = 0
        func take(_ count: Int, _ letter: Character) {
            for _ in 0..<count where index < bytes.count && isDigit(bytes[index]) { letters.append(letter); index += 1 }
        }
        func copy() { if index < bytes.count { letters.append(Character(UnicodeScalar(bytes[index]))); index += 1 } }
        if date {
            take(4, "Y")
            if index < bytes.count && !isDigit(bytes[index]) { copy() }
            take(2, "M")
            if index < bytes.count && !isDigit(bytes[index]) { copy() }
            take(2, "D")
            if index == bytes.count { return String(letters) }
            if !isDigit(bytes[index]) { copy() }
        }
        take(2, "H")
        if index < bytes.count && bytes[index] == UInt8(ascii: ":") { copy() }
        take(2, "M")
        if index < bytes.count && bytes[index] == UInt8(ascii: ":") { copy() }
        take(2, "S")
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") { copy() }
        while index < bytes.count && isDigit(bytes[index]) { letters.append("f"); index += 1 }
        // The zone: `+05:30` → `+HH:MM`; `Z`, ` UTC` as written.
        if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
            copy()
            take(2, "H")
            if index < bytes.count && bytes[index] == UInt8(ascii: ":") { copy() }
            take(2, "M")
        }
        while index < bytes.count { copy() }
        return String(letters)
    }
}
