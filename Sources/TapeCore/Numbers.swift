#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte-level number parsing and canonical number printing. No Foundation, no allocation.
public enum Numbers {
    @usableFromInline static let pow10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Parses a decimal number (`-12.5`, `61837.63000000`, `1e-5`, `3.1E+2`) into the nearest Double,
    /// correctly rounded. Returns nil for anything else (empty, `nan`, `inf`, stray characters).
    @inlinable
    public static func parseDouble(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        if n <= 0 { return nil }
        var i = 0
        var neg = false
        if p[0] == UInt8(ascii: "-") { neg = true; i = 1 } else if p[0] == UInt8(ascii: "+") { i = 1 }
        var mant: UInt64 = 0
        var digits = 0          // significant digits kept in mant
        var dropped = false     // nonzero digits beyond 19
        var exp10 = 0
        var sawDigit = false
        while i < n {
            let d = p[i] &- 48
            if d > 9 { break }
            sawDigit = true
            if digits < 19 { if mant != 0 || d != 0 { digits += 1 }; mant = mant &* 10 &+ UInt64(d) }
            else { exp10 += 1; if d != 0 { dropped = true } }
            i += 1
        }
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            while i < n {
                let d = p[i] &- 48
                if d > 9 { break }
                sawDigit = true
                if digits < 19 { if mant != 0 || d != 0 { digits += 1 }; mant = mant &* 10 &+ UInt64(d); exp10 -= 1 }
                else if d != 0 { dropped = true }
                i += 1
            }
        }
        if !sawDigit { return nil }
        if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            var eneg = false
            if i < n && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) { eneg = p[i] == UInt8(ascii: "-"); i += 1 }
            var e = 0
            var eDigits = 0
            while i < n {
                let d = p[i] &- 48
                if d > 9 { break }
                if e < 100_000 { e = e * 10 + Int(d) }
                eDigits += 1
                i += 1
            }
            if eDigits == 0 { return nil }
            exp10 += eneg ? -e : e
        }
        if i != n { return nil }
        // Clinger's fast path: exact when the mantissa fits in 53 bits and 10^|e| is exact.
        if !dropped && mant <= (1 << 53) && exp10 >= -22 && exp10 <= 22 {
            var v = Double(mant)
            if exp10 < 0 { v /= pow10[-exp10] } else { v *= pow10[exp10] }
            return neg ? -v : v
        }
        if mant == 0 && !dropped { return neg ? -0.0 : 0.0 }
        return slowParse(p, n)
    }

    /// `strtod` on a NUL-terminated copy (on the stack when short): any length, so a long mantissa
    /// (more than 350 bytes of digits, e.g. `0.000…0001`) is read correctly rounded, not refused.
    @usableFromInline
    static func slowParse(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> Double? in
            for k in 0..<n { buf[k] = CChar(bitPattern: p[k]) }
            buf[n] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(buf.baseAddress!, &end)
            if end != buf.baseAddress! + n { return nil }
            return v
        }
    }

    public static func parseDouble(_ s: Substring) -> Double? {
        var s = s
        return s.withUTF8 { parseDouble($0.baseAddress!, $0.count) }
    }

    public static func parseDouble(_ s: String) -> Double? {
        var s = s
        return s.withUTF8 { b in b.count == 0 ? nil : parseDouble(b.baseAddress!, b.count) }
    }

    /// Parses an optionally `-`-signed decimal integer of at most 20 bytes (Int64.min ... Int64.max);
    /// nil on overflow or stray characters.
    @inlinable
    public static func parseInt(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        if n <= 0 || n > 20 { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") { negative = true; i = 1; if n == 1 { return nil } }
        var magnitude: UInt64 = 0
        while i < n {
            let digit = p[i] &- 48
            if digit > 9 { return nil }
            let (scaled, overflowMultiply) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflowAdd) = scaled.addingReportingOverflow(UInt64(digit))
            if overflowMultiply || overflowAdd { return nil }
            magnitude = sum
            i += 1
        }
        if negative {
            // Int64.min's magnitude is one more than Int64.max's.
            return magnitude <= Int64.max.magnitude + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil
        }
        return magnitude <= Int64.max.magnitude ? Int64(magnitude) : nil
    }

    public static func parseInt(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { b in b.count == 0 ? nil : parseInt(b.baseAddress!, b.count) }
    }

    /// Most decimal places `decimalPlaces(_:)` reports and `rounded(_:decimalPlaces:)` keeps: beyond
    /// twelve a value is not a decimal quantity as a feed prints it (a ratio, a noisy sum).
    public static let decimalPlacesMax = 12

    /// Decimal places of the shortest decimal that reads back as `x` (`0.001` → 3, `710.971` → 3,
    /// `5` → 0), at most `decimalPlacesMax` (also for NaN, infinities and values like 1/3). No allocation.
    /// Used to sum quantities without float noise: the sum of values with at most d places is a
    /// decimal with at most d places, so rounding the Double sum to d places gives it back exactly (as
    /// long as the accumulated error stays below half a unit of the d-th place, i.e. for any realistic
    /// volume: the error of n additions is about n × 1e-16 of the sum).
    @inlinable
    public static func decimalPlaces(_ x: Double) -> Int {
        guard x.isFinite else { return decimalPlacesMax }
        let magnitude = x.magnitude
        if magnitude == magnitude.rounded(.towardZero) { return 0 }
        for places in 1..<decimalPlacesMax {
            let scale = pow10[places]
            let scaled = (magnitude * scale).rounded()
            if scaled >= shortDecimalMantissaLimit { return decimalPlacesMax }
            if scaled / scale == magnitude { return places }
        }
        return decimalPlacesMax
    }

    /// 10^exponent for 0 ≤ exponent ≤ 22 (exact in a Double).
    @inlinable
    public static func powerOfTen(_ exponent: Int) -> Double { pow10[exponent] }

    /// `x` rounded to `places` decimal places (0 ≤ places ≤ `decimalPlacesMax`): the Double nearest to
    /// the decimal, so that it prints as that decimal (`0.30000000000000004` at 1 place → `0.3`). A value
    /// whose scaled magnitude reaches 10^15 (no room for the places in a Double's 53 bits) and NaN are
    /// returned unchanged.
    @inlinable
    public static func rounded(_ x: Double, decimalPlaces places: Int) -> Double {
        precondition(places >= 0 && places <= decimalPlacesMax, "decimal places out of range")
        guard x.isFinite else { return x }
        let scale = pow10[places]
        let scaled = (x * scale).rounded()
        if scaled.magnitude >= shortDecimalMantissaLimit { return x }
        // m / 10^d with m an exact integer and 10^d exact: one correctly rounded division.
        return scaled / scale
    }

    /// Canonical text of a number: the shortest decimal that reads back to the same Double
    /// (Swift's round-trip printing), without a trailing ".0"; NaN prints as the empty string.
    /// This form is part of the digest contract: do not change it without changing every golden digest.
    public static func format(_ d: Double) -> String {
        if d.isNaN { return "" }
        if d == 0 { return "0" }  // folds -0 into 0
        var s = d.description
        if s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }

    /// Appends the canonical text of `d` (exactly the bytes of `format(d)`) to a byte buffer.
    ///
    /// Fast paths make no String: an integer up to 2^53 prints as its digits; any other value in
    /// [1e-4, 1e14) whose shortest round-trip form has at most `shortDecimalDigitsMax` significant digits
    /// prints from the integer `m = round(d × 10^k)` at the first `k` where `m / 10^k` reads back as `d`.
    /// With at most 15 digits the grid 10^-k is more than 4 ulps wide, so at most one grid point rounds
    /// to `d` and the floating-point product cannot pick a neighbour: the result is the unique shortest
    /// form, which is what Swift prints. Everything else (16–17 digits, exponent forms) goes through
    /// `Double.description`, which allocates when the text is longer than 15 bytes.
    /// `NumbersTests` checks byte equality with `format` on millions of values.
    public static func append(_ d: Double, to out: inout [UInt8]) {
        if d.isNaN { return }
        if d == 0 { out.append(UInt8(ascii: "0")); return }
        let magnitude = d.magnitude
        if magnitude <= integerExactMax && magnitude == magnitude.rounded(.towardZero) {
            append(Int64(d), to: &out)
            return
        }
        if magnitude >= shortDecimalMin && magnitude < shortDecimalMax && appendShortDecimal(d, to: &out) { return }
        var text = d.description
        text.withUTF8 { bytes in
            var length = bytes.count
            if length >= 2 && bytes[length - 2] == UInt8(ascii: ".") && bytes[length - 1] == UInt8(ascii: "0") {
                length -= 2
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[0..<length]))
        }
    }

    /// Largest magnitude printed as an integer by Swift (2^53); above it Swift uses the exponent form.
    static let integerExactMax: Double = 9_007_199_254_740_992
    /// Swift prints magnitudes from 1e-4 in decimal notation (below: `1e-05`).
    static let shortDecimalMin: Double = 1e-4
    /// Upper bound of the short-decimal fast path: 15 digits with at least one fractional digit.
    static let shortDecimalMax: Double = 1e14
    /// Most significant digits the short-decimal fast path handles (see `append(_:to:)`).
    static let shortDecimalDigitsMax = 15
    @usableFromInline static let shortDecimalMantissaLimit: Double = 1e15

    private static func appendShortDecimal(_ d: Double, to out: inout [UInt8]) -> Bool {
        let magnitude = d.magnitude
        // m must stay below 10^15, and m >= magnitude × 10^k, so k is bounded by the magnitude.
        for fractionDigits in 1...(shortDecimalDigitsMax + 4) {
            let scale = pow10[fractionDigits]
            let scaled = (magnitude * scale).rounded()
            if scaled >= shortDecimalMantissaLimit { return false }
            if scaled / scale == magnitude {
                if d < 0 { out.append(UInt8(ascii: "-")) }
                appendDecimal(mantissa: UInt64(scaled), fractionDigits: fractionDigits, to: &out)
                return true
            }
        }
        return false
    }

    /// Writes `mantissa / 10^fractionDigits` as `I.FFF` (leading `0.` and zeros when below 1).
    private static func appendDecimal(mantissa: UInt64, fractionDigits: Int, to out: inout [UInt8]) {
        assert(mantissa % 10 != 0, "the first k that round-trips has no trailing zero")
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { scratch in
            var count = 0
            var rest = mantissa
            while rest > 0 { scratch[count] = UInt8(48 + rest % 10); rest /= 10; count += 1 }
            while count <= fractionDigits { scratch[count] = 48; count += 1 }  // at least one integer digit
            var index = count
            while index > fractionDigits { index -= 1; out.append(scratch[index]) }
            out.append(UInt8(ascii: "."))
            while index > 0 { index -= 1; out.append(scratch[index]) }
        }
    }

    public static func append(_ v: Int64, to out: inout [UInt8]) {
        if v == 0 { out.append(48); return }
        var x = v.magnitude
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var k = 0
        withUnsafeMutableBytes(of: &tmp) { t in
            while x > 0 { t[k] = UInt8(48 + x % 10); x /= 10; k += 1 }
            while k > 0 { k -= 1; out.append(t[k]) }
        }
    }
}
