import Foundation
import XCTest
import TapeCore

final class NumbersTests: XCTestCase {
    func parse(_ s: String) -> Double? { Numbers.parseDouble(s) }

    /// Decimal places of a quantity, and a noisy sum rounded back to them.
    func testDecimalPlacesAndRounding() {
        XCTAssertEqual(Numbers.decimalPlaces(5), 0)
        XCTAssertEqual(Numbers.decimalPlaces(0.001), 3)
        XCTAssertEqual(Numbers.decimalPlaces(710.971), 3)
        XCTAssertEqual(Numbers.decimalPlaces(0.00012345), 8)
        XCTAssertEqual(Numbers.decimalPlaces(-2.5), 1)
        XCTAssertEqual(Numbers.decimalPlaces(1.0 / 3), Numbers.decimalPlacesMax)
        XCTAssertEqual(Numbers.decimalPlaces(.nan), Numbers.decimalPlacesMax)
        XCTAssertEqual(Numbers.format(0.1 + 0.2), "0.30000000000000004")
        XCTAssertEqual(Numbers.format(Numbers.rounded(0.1 + 0.2, decimalPlaces: 1)), "0.3")
        XCTAssertEqual(Numbers.format(Numbers.rounded(710.9709999999974, decimalPlaces: 3)), "710.971")
        XCTAssertEqual(Numbers.format(Numbers.rounded(-12.345670000000001, decimalPlaces: 5)), "-12.34567")
        XCTAssertTrue(Numbers.rounded(.nan, decimalPlaces: 2).isNaN)
        XCTAssertEqual(Numbers.rounded(1e300, decimalPlaces: 3), 1e300, "no room for the places: unchanged")
        // Every sum of up to 200 quantities with at most 8 places rounds back to the exact decimal sum.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var exact: Int64 = 0
            var sum = 0.0
            var places = 0
            for _ in 0..<Int.random(in: 1...200, using: &generator) {
                let units = Int64.random(in: 1...1_000_000_000, using: &generator)
                let value = Double(units) / 1e8
                exact += units
                sum += value
                places = max(places, Numbers.decimalPlaces(value))
            }
            XCTAssertEqual(Numbers.rounded(sum, decimalPlaces: places), Double(exact) / 1e8)
        }
    }

    func testParsesDecimalsExactlyLikeStrtod() {
        for s in ["61837.63000000", "0.00000000", "1.54698000", "61800.30", "4", "-12.5", "1e-5", "3.1E+2",
                  "0.1", "123456789012345678901234567890", "2.2250738585072014e-308", "1.57597", "0.000001"] {
            XCTAssertEqual(parse(s), Double(s), s)
        }
    }

    func testRejectsNonNumbers() {
        for s in ["", "nan", "NaN", "inf", "1.2.3", "abc", "12a", "-", ".", "1e", " 1"] {
            XCTAssertNil(parse(s), s)
        }
    }

    func testCanonicalFormatIsShortestRoundTrip() {
        XCTAssertEqual(Numbers.format(61837.63), "61837.63")
        XCTAssertEqual(Numbers.format(5.0), "5")
        XCTAssertEqual(Numbers.format(-0.0), "0")
        XCTAssertEqual(Numbers.format(.nan), "")
        XCTAssertEqual(Numbers.format(0.1 + 0.2), "0.30000000000000004")
        XCTAssertEqual(Numbers.format(1e-7), "1e-07")
    }

    func appended(_ value: Double) -> String {
        var bytes: [UInt8] = []
        Numbers.append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The byte printer writes exactly `format`'s text (Swift's shortest round-trip form) everywhere:
    /// special values, every power of two, boundaries of its fast paths and their neighbours, random
    /// bit patterns and random decimals of every length.
    func testAppendWritesExactlyTheBytesOfFormat() {
        var values: [Double] = [.nan, -.nan, 0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude,
                                -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                                -.greatestFiniteMagnitude, 61837.63, 0.1 + 0.2, 1e-7, 5, -5, 0.5]
        let boundaries: [Double] = [9_007_199_254_740_992, 9_007_199_254_740_993, 1e-4, 1e-5, 1e14, 1e15, 1e16,
                                    999_999_999_999_999, 99_999_999_999_999.9, 0.000_099_999_999_999_999_99]
        for boundary in boundaries {
            var up = boundary, down = boundary
            for _ in 0..<50 { values += [up, down, -up, -down]; up = up.nextUp; down = down.nextDown }
        }
        for exponent in -1074...1023 {
            let power = Double(sign: .plus, exponent: exponent, significand: 1)
            values += [power, power.nextUp, power.nextDown, -power]
        }
        for exponent in -30...30 { values.append(Double("1e\(exponent)")!) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1_000_000 {
            values.append(Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator)))
            let digits = Int.random(in: 1...17, using: &generator)
            let mantissaLimit = (0..<digits).reduce(Int64(1)) { power, _ in power * 10 }
            let mantissa = Int64.random(in: 0..<mantissaLimit, using: &generator)
            let exponent = Int.random(in: -digits - 6...4, using: &generator)
            values.append(Double("\(mantissa)e\(exponent)")!)
        }
        var mismatches = 0
        for value in values where appended(value) != Numbers.format(value) {
            mismatches += 1
            if mismatches <= 10 {
                XCTFail("\(value.bitPattern): append '\(appended(value))' format '\(Numbers.format(value))'")
            }
        }
        XCTAssertEqual(mismatches, 0, "of \(values.count) values")
    }

    func testDateTimes() {
        XCTAssertEqual(TimeUtil.parseDateTime("2021-12-31 23:01:00.000000"), 1640991660 * 1_000_000_000)
        XCTAssertEqual(TimeUtil.parseDateTime("2012-02-01 00:00:00+00:00"), 1328054400 * 1_000_000_000)
        XCTAssertEqual(TimeUtil.parseDateTime("2012-02-01T01:00:00+01:00"), 1328054400 * 1_000_000_000)
        XCTAssertEqual(TimeUtil.parseDateTime("2024-08-09T00:00:00.5Z"), 1723161600 * 1_000_000_000 + 500_000_000)
        XCTAssertNil(TimeUtil.parseDateTime("2024-13-01"))
        XCTAssertEqual(TimeUtil.iso(1723161600 * 1_000_000_000 + 5), "2024-08-09T00:00:00.000000005Z")
    }
}

import TapeClock

final class ClockTests: XCTestCase {
    final class Recorder: TimerTarget {
        var fired: [(UInt64, Int64)] = []
        func onTimer(token: UInt64, now: Int64) { fired.append((token, now)) }
    }

    func testSimulatedClockFiresDueTimersInDueThenRegistrationOrder() {
        let c = SimulatedClock(start: 0)
        let r = Recorder()
        c.schedule(at: 30, target: r, token: 1)
        c.schedule(at: 10, target: r, token: 2)
        c.schedule(at: 30, target: r, token: 3)
        c.schedule(at: 20, target: r, token: 4)
        c.advance(to: 20)                       // at or before 20
        XCTAssertEqual(r.fired.map(\.0), [2, 4])
        XCTAssertEqual(r.fired.map(\.1), [10, 20], "now is the timer's due time while it runs")
        c.advance(to: 15)                       // time never goes back
        XCTAssertEqual(c.now, 20)
        c.advance(to: 100)
        XCTAssertEqual(r.fired.map(\.0), [2, 4, 1, 3])
        XCTAssertEqual(c.now, 100)
        c.schedule(at: 50, target: r, token: 5)  // in the past: fires at the next advance
        c.advance(to: 100)
        XCTAssertEqual(r.fired.last?.0, 5)
    }

    func testReceiveStamperIsStrictlyIncreasingEvenWhenWallTimeStepsBack() {
        // A scripted wall clock that stalls and steps back, as NTP can make CLOCK_REALTIME do.
        final class Script: @unchecked Sendable { var values: [Int64] = [100, 100, 90, 200, 150, 150]; var i = 0 }
        let script = Script()
        let stamper = ReceiveStamper(wallTime: { defer { script.i += 1 }; return script.values[script.i] })
        let stamps = (0..<6).map { _ in stamper.stamp() }
        XCTAssertEqual(stamps, [100, 101, 102, 200, 201, 202])
    }

    func testReceiveStamperAcrossThreadsGivesDistinctStamps() {
        let stamper = ReceiveStamper()
        let lock = NSLock()
        var all: [Int64] = []
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            var mine: [Int64] = []
            for _ in 0..<10_000 { mine.append(stamper.stamp()) }
            XCTAssertEqual(mine, mine.sorted(), "each thread sees increasing stamps")
            lock.lock(); all.append(contentsOf: mine); lock.unlock()
        }
        XCTAssertEqual(Set(all).count, 40_000, "no two stamps are equal")
    }
}
