import Foundation
import XCTest
import TapeCore

/// SplitMix64: a seeded generator, so that every run draws the same cases and a failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

/// Issue 9, defect 1: time and number parsers range-check instead of trapping, checked against
/// independent references: hand-computed edges (Python `datetime`), Foundation's Gregorian calendar and
/// ISO-8601 formatter, and C's `strtoll`/`strtod`, on seeded random inputs.
final class ParseRangeTests: XCTestCase {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// Edges of the accepted range; before the fix the first two trapped (ns overflow in the parser).
    func testDateTimesOutsideTheRangeAreNil() {
        for text in ["9999-01-01T00:00:00Z", "1000-01-01T00:00:00Z", "1677-09-21T00:12:43Z", "2262-04-12T00:00:00Z",
                     "2200-01-01T00:00:00.000000001Z", "1969-12-31T23:59:59.999999999Z", "1970-01-01T00:30:00+01:00",
                     "2199-12-31T23:30:00-01:00", "2013-02-30", "2013-02-29", "2100-02-29", "2024-04-31"] {
            XCTAssertNil(TimeUtil.parseDateTime(text), text)
        }
        // Python: datetime(2200,1,1,tzinfo=timezone.utc).timestamp() == 7258118400.
        XCTAssertEqual(TimeUtil.parseDateTime("2200-01-01T00:00:00Z"), 7_258_118_400_000_000_000)
        XCTAssertEqual(TimeUtil.parseDateTime("2200-01-01T01:00:00+01:00"), 7_258_118_400_000_000_000)
        XCTAssertEqual(TimeUtil.parseDateTime("1970-01-01T00:00:00Z"), 0)
        XCTAssertEqual(TimeUtil.parseDateTime("2000-02-29"), 951_782_400_000_000_000)  // Python: 951782400
        XCTAssertEqual(TimeUtil.acceptedNanosMax, 7_258_118_400_000_000_000)
    }

    func testUserTimesOutsideTheRangeAreNil() {
        for text in ["9223372036854775807", "-9223372036854775808", "7258118400000000001", "-00000000001",
                     "9999-01-01T00:00:00Z", "1000-01-01T00:00:00Z"] {
            XCTAssertNil(TimeUtil.parseUserTime(text), text)
        }
        XCTAssertEqual(TimeUtil.parseUserTime("7258118400000000000"), 7_258_118_400_000_000_000)
    }

    func testCheckedConversionNeverTraps() {
        XCTAssertNil(TimeUtil.acceptedNanos(9_300_000_000_000_000, unitNanos: 1_000))
        XCTAssertNil(TimeUtil.acceptedNanos(Int64.max, unitNanos: 1_000_000_000))
        XCTAssertNil(TimeUtil.acceptedNanos(Int64.min, unitNanos: 1_000_000))
        XCTAssertNil(TimeUtil.acceptedNanos(-1, unitNanos: 1))
        XCTAssertEqual(TimeUtil.acceptedNanos(7_258_118_400_000, unitNanos: 1_000_000), TimeUtil.acceptedNanosMax)
        XCTAssertNil(TimeUtil.acceptedNanos(7_258_118_400_001, unitNanos: 1_000_000))
    }

    /// Random calendar fields (some invalid: day 31 in a 30-day month, Feb 29 in common years, years
    /// outside the range) against Foundation: valid and inside the range → Foundation's instant, else nil.
    func testDateTimesAgainstFoundationCalendar() {
        var random = SeededGenerator(seed: 9)
        for _ in 0..<20_000 {
            let year = Int.random(in: 1960...2210, using: &random), month = Int.random(in: 1...12, using: &random)
            let day = Int.random(in: 1...31, using: &random), hour = Int.random(in: 0...23, using: &random)
            let minute = Int.random(in: 0...59, using: &random), second = Int.random(in: 0...59, using: &random)
            let nanosecond = Int.random(in: 0...999_999_999, using: &random)
            let text = String(format: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ld.%09ldZ", year, month, day, hour, minute, second,
                              nanosecond)
            let components = DateComponents(calendar: Self.utc, timeZone: Self.utc.timeZone, year: year, month: month,
                                            day: day, hour: hour, minute: minute, second: second)
            var expected: Int64? = nil
            if components.isValidDate, let date = Self.utc.date(from: components) {
                let nanos = Int64(date.timeIntervalSince1970) * 1_000_000_000 + Int64(nanosecond)
                expected = (0...7_258_118_400_000_000_000).contains(nanos) ? nanos : nil
            }
            XCTAssertEqual(TimeUtil.parseDateTime(text), expected, text)
        }
    }

    /// Random instants in the range, printed by Foundation's ISO-8601 formatter in random offsets
    /// (`+05:30`, `-08:00`, `Z`), read back to the same instant.
    func testDateTimesPrintedByFoundationReadBack() {
        var random = SeededGenerator(seed: 10)
        let formatter = ISO8601DateFormatter()
        for _ in 0..<5_000 {
            let seconds = Int64.random(in: 0...7_258_118_400, using: &random)
            formatter.timeZone = TimeZone(secondsFromGMT: 900 * Int.random(in: -48...56, using: &random))!
            let text = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            XCTAssertEqual(TimeUtil.parseDateTime(text), seconds * 1_000_000_000, text)
        }
    }

    /// Random integers (digits, an optional `-`, near and beyond the Int64 limits) against `strtoll`:
    /// equal when strtoll reads the whole text without ERANGE, nil otherwise. Before the fix Int64.min
    /// was nil.
    func testParseIntAgainstStrtoll() {
        var random = SeededGenerator(seed: 11)
        var texts = ["-9223372036854775808", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
                     "-", "0", "-0", "18446744073709551616"]
        for _ in 0..<50_000 {
            var text = Bool.random(using: &random) ? "-" : ""
            for _ in 0..<Int.random(in: 1...19, using: &random) {
                text.append(Character(UnicodeScalar(UInt8.random(in: 48...57, using: &random))))
            }
            if Int.random(in: 0..<20, using: &random) == 0 { text.append("x") }
            texts.append(text)
        }
        for text in texts {
            errno = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let reference: Int64? = text.withCString { start in
                let value = strtoll(start, &end, 10)
                let consumed = end.map { UnsafePointer($0) - start } ?? 0
                return consumed == strlen(start) && consumed > 0 && errno != ERANGE ? Int64(value) : nil
            }
            XCTAssertEqual(Numbers.parseInt(text), reference, text)
        }
    }

    /// Random decimals (long mantissas, exponents from -400 to 400) against `strtod`, bit for bit.
    func testParseDoubleAgainstStrtod() {
        var random = SeededGenerator(seed: 12)
        func digits(_ count: Int) -> String {
            String((0..<count).map { _ in Character(UnicodeScalar(UInt8.random(in: 48...57, using: &random))) })
        }
        for _ in 0..<50_000 {
            var text = Bool.random(using: &random) ? "-" : ""
            text += digits(Int.random(in: 1...25, using: &random))
            if Bool.random(using: &random) { text += "." + digits(Int.random(in: 1...25, using: &random)) }
            if Bool.random(using: &random) { text += "e\(Int.random(in: -400...400, using: &random))" }
            let reference = strtod(text, nil)
            let parsed = Numbers.parseDouble(text)
            XCTAssertEqual(parsed?.bitPattern, reference.bitPattern, text)
        }
    }

    /// Names are UTF-8 text without control bytes; only a new name is validated.
    func testSymbolTableRefusesInvalidUTF8() {
        let symbols = SymbolTable()
        for invalid: [UInt8] in [[0x80], [0x42, 0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0xAF],
                                 [0x41, 0x00], [0x41, 0x0A], [0x7F]] {
            XCTAssertEqual(invalid.withUnsafeBytes { symbols.intern(bytes: $0) }, 0, "\(invalid)")
        }
        XCTAssertEqual(symbols.count, 1, "nothing interned")
        let valid = Array("ÄPFEL€𝄞".utf8)
        let id = valid.withUnsafeBytes { symbols.intern(bytes: $0) }
        XCTAssertNotEqual(id, 0)
        XCTAssertEqual(symbols.name(id), "ÄPFEL€𝄞")
        XCTAssertEqual(([0x41, 0xFF, 0x22, 0x5C] as [UInt8]).withUnsafeBytes { SymbolTable.escaped($0) }, #""A\xFF\"\\""#)
    }
}
