/// A tiny allocation-free JSON scanner over bytes: walks one object's keys and values, returning byte
/// ranges. Strings are returned raw (escapes are not decoded; the fields Tape reads never hold any).
/// Nested objects/arrays are skipped (or their range returned, to scan them in turn).
public struct JSONScanner {
    public enum Kind: UInt8, Sendable { case string, number, bool, null, object, array }
    /// A value: `kind` and its bytes (strings without quotes; objects/arrays with brackets).
    public struct Value {
        public var kind: Kind
        public var start: Int
        public var count: Int
        /// For `.bool`.
        public var isTrue: Bool
    }

    public let p: UnsafePointer<UInt8>
    public let n: Int
    public var i: Int
    /// Set when the input is not valid JSON where scanned.
    public private(set) var failed = false

    public init(_ p: UnsafePointer<UInt8>, _ n: Int, start: Int = 0) {
        self.p = p; self.n = n; self.i = start
    }

    @inline(__always) mutating func ws() {
        while i < n {
            let c = p[i]
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 } else { break }
        }
    }

    /// Enters an object (`{`). False (and `failed`) if the next value is not an object.
    public mutating func beginObject() -> Bool {
        ws()
        if i < n && p[i] == UInt8(ascii: "{") { i += 1; first = true; return true }
        failed = true
        return false
    }

    private var first = true

    /// Next key of the current object as a byte range (start, count), or nil at `}` (or on error:
    /// check `failed`). Call `value()` after each key.
    public mutating func nextKey() -> (start: Int, count: Int)? {
        ws()
        guard i < n else { failed = true; return nil }
        if p[i] == UInt8(ascii: "}") { i += 1; return nil }
        if !first {
            guard p[i] == UInt8(ascii: ",") else { failed = true; return nil }
            i += 1; ws()
        }
        first = false
        guard i < n, p[i] == UInt8(ascii: "\"") else { failed = true; return nil }
        guard let s = string() else { failed = true; return nil }
        ws()
        guard i < n, p[i] == UInt8(ascii: ":") else { failed = true; return nil }
        i += 1
        return s
    }

    /// Scans a string starting at the opening quote; returns the content range.
    @inline(__always) mutating func string() -> (start: Int, count: Int)? {
        i += 1
        let s = i
        while i < n {
            let c = p[i]
            if c == UInt8(ascii: "\"") { i += 1; return (s, i - 1 - s) }
            if c == UInt8(ascii: "\\") { i += 2; continue }
            if c < 0x20 { return nil }
            i += 1
        }
        return nil
    }

    /// Scans the next value; nil (and `failed`) if it is not valid JSON.
    public mutating func value() -> Value? {
        ws()
        guard i < n else { failed = true; return nil }
        let c = p[i]
        let s = i
        switch c {
        case UInt8(ascii: "\""):
            guard let r = string() else { failed = true; return nil }
            return Value(kind: .string, start: r.start, count: r.count, isTrue: false)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard skipNested() else { failed = true; return nil }
            return Value(kind: c == UInt8(ascii: "{") ? .object : .array, start: s, count: i - s, isTrue: false)
        case UInt8(ascii: "t"):
            if lit("true") { return Value(kind: .bool, start: s, count: 4, isTrue: true) }
        case UInt8(ascii: "f"):
            if lit("false") { return Value(kind: .bool, start: s, count: 5, isTrue: false) }
        case UInt8(ascii: "n"):
            if lit("null") { return Value(kind: .null, start: s, count: 4, isTrue: false) }
        default:
            if c == UInt8(ascii: "-") || (c >= 48 && c <= 57) {
                i += 1
                while i < n {
                    let d = p[i]
                    if (d >= 48 && d <= 57) || d == UInt8(ascii: ".") || d == UInt8(ascii: "e")
                        || d == UInt8(ascii: "E") || d == UInt8(ascii: "+") || d == UInt8(ascii: "-") { i += 1 } else { break }
                }
                return Value(kind: .number, start: s, count: i - s, isTrue: false)
            }
        }
        failed = true
        return nil
    }

    @inline(__always) private mutating func lit(_ w: StaticString) -> Bool {
        let m = w.utf8CodeUnitCount
        if i + m > n { return false }
        let b = w.utf8Start
        for k in 0..<m where p[i + k] != b[k] { return false }
        i += m
        return true
    }

    /// Byte classes for `skipNested`: 1 quote, 2 open bracket, 3 close bracket, 0 anything else.
    nonisolated(unsafe) private static let classes: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        t.initialize(repeating: 0, count: 256)
        t[Int(UInt8(ascii: "\""))] = 1
        t[Int(UInt8(ascii: "{"))] = 2; t[Int(UInt8(ascii: "["))] = 2
        t[Int(UInt8(ascii: "}"))] = 3; t[Int(UInt8(ascii: "]"))] = 3
        return UnsafePointer(t)
    }()

    /// Skips a nested object/array (balanced brackets, strings respected). The hot loop of scanning
    /// (Binance depth messages are mostly nested arrays), hence the class table.
    private mutating func skipNested() -> Bool {
        let t = Self.classes
        var depth = 0
        var j = i
        defer { i = j }
        while j < n {
            let c = t[Int(p[j])]
            if c == 0 { j += 1; continue }
            if c == 1 {
                j += 1
                while j < n {
                    let d = p[j]
                    if d == UInt8(ascii: "\"") { break }
                    j += d == UInt8(ascii: "\\") ? 2 : 1
                }
                if j >= n { return false }
                j += 1
                continue
            }
            if c == 2 { depth += 1 } else {
                depth -= 1
                if depth == 0 { j += 1; return true }
            }
            j += 1
        }
        return false
    }

    /// The next non-whitespace byte (not consumed), nil at the end.
    public mutating func peek() -> UInt8? {
        ws()
        return i < n ? p[i] : nil
    }

    /// Consumes `c` (after whitespace) if it is next.
    public mutating func take(_ c: UInt8) -> Bool {
        ws()
        if i < n && p[i] == c { i += 1; return true }
        return false
    }

    /// True when only whitespace remains.
    public mutating func atEnd() -> Bool { ws(); return i == n }

    /// Compares bytes at a range with an ASCII literal.
    @inline(__always)
    public func equals(_ start: Int, _ count: Int, _ w: StaticString) -> Bool {
        if count != w.utf8CodeUnitCount { return false }
        let b = w.utf8Start
        for k in 0..<count where p[start + k] != b[k] { return false }
        return true
    }

    @inline(__always) public func double(_ v: Value) -> Double? {
        guard v.kind == .string || v.kind == .number else { return nil }
        if v.count <= 0 { return nil }
        if let x = _parseDouble(p + v.start, v.count) { return x }
        return nonFinite(v.start, v.count)
    }

    /// `NaN`/`nan`, `Inf`/`inf`/`Infinity` (optionally signed) map to the IEEE values so that the
    /// validator rejects them as `nan_value` (not `bad_number`).
    private func nonFinite(_ s: Int, _ c: Int) -> Double? {
        var st = s, cnt = c, neg = false
        if cnt > 0 && (p[st] == UInt8(ascii: "-") || p[st] == UInt8(ascii: "+")) { neg = p[st] == UInt8(ascii: "-"); st += 1; cnt -= 1 }
        var low: UInt64 = 0
        if cnt > 8 { return nil }
        for k in 0..<cnt { low = (low << 8) | UInt64(p[st + k] | 0x20) }
        switch low {
        case 0x6e616e: return .nan                                  // nan
        case 0x696e66, 0x696e66696e697479: return neg ? -.infinity : .infinity  // inf, infinity
        default: return nil
        }
    }

    @inline(__always) public func int(_ v: Value) -> Int64? {
        guard v.kind == .number || v.kind == .string else { return nil }
        return _parseInt(p + v.start, v.count)
    }

    public func text(_ start: Int, _ count: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p + start, count: count), as: UTF8.self)
    }
}

import TapeCore
@inline(__always) func _parseDouble(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? { Numbers.parseDouble(p, n) }
@inline(__always) func _parseInt(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? { Numbers.parseInt(p, n) }
