import TapeCore
import TapeIO
import TapeSources

/// The fields of one CSV line, found without allocating: offsets into the line's bytes. Quoted fields
/// (`"12,37"`, with `""` for a quote) are supported; the quotes are not part of the field.
public struct CSVRow {
    public private(set) var line = UnsafeRawBufferPointer(start: nil, count: 0)
    private var starts: [Int] = []
    private var lengths: [Int] = []
    public private(set) var count = 0

    public init(capacity: Int = 32) {
        starts = Array(repeating: 0, count: capacity)
        lengths = Array(repeating: 0, count: capacity)
    }

    /// Splits `line` on commas. Returns false on an unterminated quote.
    public mutating func split(_ l: UnsafeRawBufferPointer) -> Bool {
        line = l
        count = 0
        let n = l.count
        var i = 0
        while true {
            if count == starts.count { starts.append(0); lengths.append(0) }
            if i < n && l[i] == UInt8(ascii: "\"") {
                let s = i + 1
                var j = s
                while true {
                    if j >= n { return false }
                    if l[j] == UInt8(ascii: "\"") {
                        if j + 1 < n && l[j + 1] == UInt8(ascii: "\"") { j += 2; continue }
                        break
                    }
                    j += 1
                }
                starts[count] = s; lengths[count] = j - s; count += 1
                i = j + 1
                if i < n && l[i] != UInt8(ascii: ",") { return false }
            } else {
                var j = i
                while j < n && l[j] != UInt8(ascii: ",") { j += 1 }
                starts[count] = i; lengths[count] = j - i; count += 1
                i = j
            }
            if i >= n { return true }
            i += 1   // the comma
            if i == n { if count == starts.count { starts.append(0); lengths.append(0) }; starts[count] = n; lengths[count] = 0; count += 1; return true }
        }
    }

    @inline(__always) public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: line[starts[i]..<(starts[i] + lengths[i])])
    }
    @inline(__always) public func isEmpty(_ i: Int) -> Bool { lengths[i] == 0 }
    @inline(__always) public func double(_ i: Int) -> Double? {
        let b = bytes(i)
        if b.count == 0 { return nil }
        return Numbers.parseDouble(b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count)
            ?? Self.special(b)
    }
    /// `NaN`/`inf` spelled out: parsed so that the validator reports `nan_value` rather than a bad number.
    static func special(_ b: UnsafeRawBufferPointer) -> Double? {
        let s = String(decoding: b, as: UTF8.self).lowercased()
        switch s { case "nan": return .nan; case "inf", "+inf", "infinity": return .infinity; case "-inf": return -.infinity; default: return nil }
    }
    @inline(__always) public func int(_ i: Int) -> Int64? {
        let b = bytes(i)
        if b.count == 0 { return nil }
        return Numbers.parseInt(b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count)
    }
    public func string(_ i: Int) -> String { String(decoding: bytes(i), as: UTF8.self) }
}
