import Foundation
import PropertyBased
import TapeCore
import TapeTestSupport
import Testing

/// Property-based tests (swift-property-based: generated inputs, failures shrunk to a small case and
/// reported with a seed) of the number and time parsers against independent references: C's `strtod`,
/// Foundation's ISO-8601 formatter and Python's `datetime`. The seeded XCTest cases in
/// ParseRangeTests stay beside them (fixed draws, exact ranges).
@Suite struct NumberParserPropertyTests {
    /// `strtod` on the whole text, or nil when it does not read all of it.
    static func reference(_ text: String) -> Double? {
        text.withCString { start -> Double? in
            var end: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(start, &end)
            return end.map { UnsafePointer($0) - start } == text.utf8.count && !text.isEmpty ? value : nil
        }
    }

    /// Decimal text of every shape: a sign or not, up to 400 integer and 400 fraction digits (long
    /// mantissas far past 19 digits, many leading zeros), an exponent from -400 to 400 with `e`/`E` and
    /// a sign. Same bits as `strtod` (correctly rounded, -0 kept, overflow to infinity, underflow to 0).
    @Test func decimalsParseToTheBitsOfStrtod() async {
        let digits = Gen.number.string(of: 0...400)
        await propertyCheck(count: 3_000, input: Gen.int(in: 0...2), digits, Gen.int(in: 0...2), digits,
                            Gen.int(in: 0...4), Gen.int(in: -400...400)) {
            sign, whole, point, fraction, marker, exponent in
            var text = ["", "-", "+"][sign] + whole
            if point > 0 { text += "." + fraction }
            if marker > 0 { text += ["e", "E", "e+", "e-0"][marker - 1] + String(exponent) }
            let expected = Self.reference(text)
            #expect(Numbers.parseDouble(text)?.bitPattern == expected?.bitPattern, "\(text)")
        }
    }

    /// Short decimals near the edges: subnormals, the largest finite values, halfway cases (…5 exactly
    /// between two doubles), 17 to 25 significant digits.
    @Test func edgeDecimalsParseToTheBitsOfStrtod() async {
        let digits = Gen.number.string(of: 1...25)
        await propertyCheck(count: 3_000, input: digits, Gen.int(in: -345...330)) { digits, exponent in
            for text in ["\(digits)e\(exponent)", "0.\(digits)e\(exponent)", "\(digits)5e\(exponent)"] {
                #expect(Numbers.parseDouble(text)?.bitPattern == Self.reference(text)?.bitPattern, "\(text)")
            }
        }
    }

    /// Anything that is not decimal text (hex floats, `inf`, `nan`, spaces, stray bytes) is refused,
    /// where `strtod` would read a prefix or a special value.
    @Test func nonDecimalTextIsRefused() async {
        let printable = Gen.character(in: " "..."~").string(of: 1...12)
        await propertyCheck(count: 3_000, input: printable) { text in
            let isDecimal = text.wholeMatch(of: #/[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?/#) != nil
            let parsed = Numbers.parseDouble(text)
            if isDecimal {
                #expect(parsed?.bitPattern == Self.reference(text)?.bitPattern, "\(text)")
            } else {
                #expect(parsed == nil, "\(text)")
            }
        }
    }
}

@Suite struct TimeParserPropertyTests {
    static let inRange: ClosedRange<Int64> = 0...7_258_118_400_000_000_000

    /// Whole-second instants printed by Foundation's ISO-8601 formatter (`Z` or an offset in minutes,
    /// `-12:00` … `+14:00`, with or without the colon) read back to Foundation's instant.
    @Test func foundationISO8601TextReadsBack() async {
        await propertyCheck(count: 3_000, input: Gen.int(in: -86_400...7_258_204_800), Gen.int(in: -720...840),
                            Gen.bool) { seconds, offsetMinutes, colon in
            let formatter = ISO8601DateFormatter()
            formatter.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)!
            if !colon { formatter.formatOptions.remove(.withColonSeparatorInTimeZone) }
            let text = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            let instant = formatter.date(from: text).map { Int64($0.timeIntervalSince1970) * 1_000_000_000 }
            let expected = instant.flatMap { Self.inRange.contains($0) ? $0 : nil }
            #expect(TimeUtil.parseDateTime(text) == expected, "\(text)")
        }
    }

    /// Calendar text of every form Tape reads (`T` or space, with or without seconds, 1 to 12 fraction
    /// digits, `Z`, `±hh:mm`, `±hhmm`, `±hh` or no zone), with days past the month's end and years outside
    /// the range, against Python's `datetime.fromisoformat` (one python3 process for every case).
    @Test(.enabled(if: PythonDateTime.available || runningUnderCI, "python3 (required under CI=true)"))
    func calendarTextAgreesWithPythonDatetime() async throws {
        let python = try PythonDateTime()
        await propertyCheck(count: 3_000, input: Gen.int(in: 1965...2205), Gen.int(in: 1...12),
                            Gen.int(in: 1...31), Gen.int(in: 0...86_399), Gen.int(in: 0...14),
                            Gen.number.string(of: 12),
                            Gen.int(in: 0...7), Gen.int(in: -14 * 60...14 * 60)) {
            year, month, day, secondOfDay, form, fraction, zone, offsetMinutes in
            let date = String(format: "%04d-%02d-%02d", year, month, day)
            var text = date
            if form > 0 {
                let (hour, minute, second) = (secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
                text += (form % 2 == 0 ? "T" : " ") + String(format: "%02d:%02d", hour, minute)
                if form > 1 { text += String(format: ":%02d", second) }
                if form > 2 { text += "." + fraction.prefix(form - 2) }
                let sign = offsetMinutes < 0 ? "-" : "+"
                let (offsetHours, offsetRest) = (abs(offsetMinutes) / 60, abs(offsetMinutes) % 60)
                switch zone {
                case 1: text += "Z"
                case 2, 3: text += sign + String(format: "%02d:%02d", offsetHours, offsetRest)
                case 4: text += sign + String(format: "%02d%02d", offsetHours, offsetRest)
                case 5: text += sign + String(format: "%02d", offsetHours)
                default: break
                }
            }
            let expected = try python.nanoseconds(text)
            #expect(TimeUtil.parseDateTime(text) == expected, "\(text)")
        }
    }
}

/// One python3 process that reads ISO-8601 lines and answers each with its instant in ns since the epoch
/// (UTC when no zone is given), or `nil` when `datetime.fromisoformat` refuses it or it is outside
/// 1970-01-01 … 2200-01-01. Python's datetime keeps microseconds: the script keeps digits 7-9 of the
/// fraction itself (digits past the ninth are dropped, as Tape documents).
final class PythonDateTime: @unchecked Sendable {
    static let script = #"""
        import re, sys
        from datetime import datetime, timezone
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        for line in sys.stdin:
            text = line.rstrip("\n")
            extra = 0
            match = re.fullmatch(r"(.*:\d\d)\.(\d+)(.*)", text)
            if match:
                digits = match.group(2)
                text = match.group(1) + "." + digits[:6].ljust(6, "0") + match.group(3)
                extra = int(digits[6:9].ljust(3, "0"))
            try:
                moment = datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
                delta = moment - epoch
                nanos = (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000 + extra
                print(nanos if 0 <= nanos <= 7258118400 * 10**9 else "nil", flush=True)
            except ValueError:
                print("nil", flush=True)
        """#

    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
            || (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
                FileManager.default.isExecutableFile(atPath: "\($0)/python3")
            }
    }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffered: [UInt8] = []
    private let lock = NSLock()

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// Python's answer for one line of text.
    func nanoseconds(_ text: String) throws -> Int64? {
        lock.lock()
        defer { lock.unlock() }
        try input.fileHandleForWriting.write(contentsOf: Data((text + "\n").utf8))
        while !buffered.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw MissingRequirement(description: "python3 stopped answering at \(text)") }
            buffered += chunk
        }
        let end = buffered.firstIndex(of: 0x0A)!
        let answer = String(decoding: buffered[..<end], as: UTF8.self)
        buffered.removeSubrange(...end)
        return answer == "nil" ? nil : Int64(answer)
    }
}
