import TapeCore
import TapeIO
import TapeSources

/// The fields of one CSV line (comma-separated, or `;`/tab when told), found without allocating: offsets into the line's bytes. Quoted fields
/// (`"12,37"`, with `""` for a quote, RFC 4180) are supported; the quotes are not part of the field.
/// A quoted field holding `""` is unescaped once, into a buffer the row owns (rare: only such fields
/// are copied), so `bytes`, `string` and the number parsers all see the field's text.
public struct CSVRow {
    public private(set) var line = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Offset of each field in `line`; for an unescaped field, `-(offset in the unescape buffer) - 1`.
    private var starts: [Int] = []
    private var lengths: [Int] = []
    private var unescaped: UnescapeBuffer? = nil
    public private(set) var count = 0

    public init(capacity: Int = 32) {
        starts = Array(repeating: 0, count: capacity)
        lengths = Array(repeating: 0, count: capacity)
    }

    /// Splits `line` on `separator` (a comma unless told: bar files may use `;` or tab). Returns false on
    /// an unterminated quote.
    public mutating func split(_ l: UnsafeRawBufferPointer, separator: UInt8 = UInt8(ascii: ",")) -> Bool {
        line = l
        count = 0
        var unescapedBytes = 0
        let n = l.count
        var i = 0
        while true {
            if count == starts.count { starts.append(0); lengths.append(0) }
            if i < n && l[i] == UInt8(ascii: "\"") {
                let s = i + 1
                var j = s
                var doubledQuotes = false
                while true {
                    if j >= n { return false }
                    if l[j] == UInt8(ascii: "\"") {
                        if j + 1 < n && l[j + 1] == UInt8(ascii: "\"") { j += 2; doubledQuotes = true; continue }
                        break
                    }
                    j += 1
                }
                if doubledQuotes {
                    let length = unescapeField(UnsafeRawBufferPointer(rebasing: l[s..<j]), at: unescapedBytes)
                    starts[count] = -unescapedBytes - 1; lengths[count] = length
                    unescapedBytes += length
                } else {
                    starts[count] = s; lengths[count] = j - s
                }
                count += 1
                i = j + 1
                if i < n && l[i] != separator { return false }
            } else {
                var j = i
                while j < n && l[j] != separator { j += 1 }
                starts[count] = i; lengths[count] = j - i; count += 1
                i = j
            }
            if i >= n { return true }
            i += 1   // the separator
            if i == n {
                if count == starts.count { starts.append(0); lengths.append(0) }
                starts[count] = n; lengths[count] = 0; count += 1
                return true
            }
        }
    }

    /// Copies a quoted field's content with every `""` made `"` to `offset` in the unescape buffer
    /// (a fresh buffer when a copy of this row still shares it); returns the unescaped length.
    private mutating func unescapeField(_ quoted: UnsafeRawBufferPointer, at offset: Int) -> Int {
        if unescaped == nil || !isKnownUniquelyReferenced(&unescaped) { unescaped = UnescapeBuffer() }
        let buffer = unescaped!
        buffer.reserve(offset + quoted.count)
        var written = 0
        var k = 0
        while k < quoted.count {
            buffer.bytes[offset + written] = quoted[k]
            written += 1
            // Inside a closed quoted field a quote always comes doubled: keep one, skip the other.
            k += quoted[k] == UInt8(ascii: "\"") ? 2 : 1
        }
        assert(written < quoted.count, "a field with doubled quotes gets shorter")
        return written
    }

    @inline(__always) public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        let start = starts[i]
        if start >= 0 { return UnsafeRawBufferPointer(rebasing: line[start..<(start + lengths[i])]) }
        return UnsafeRawBufferPointer(start: unescaped!.bytes + (-start - 1), count: lengths[i])
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

/// The bytes of a row's unescaped fields: grown, never shrunk, reused from line to line.
final class UnescapeBuffer {
    private(set) var bytes: UnsafeMutablePointer<UInt8>
    private var capacity: Int

    init() {
        capacity = 256
        bytes = .allocate(capacity: capacity)
    }

    deinit { bytes.deallocate() }

    /// Makes room for `needed` bytes, keeping the bytes already written.
    func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var grown = capacity
        while grown < needed { grown *= 2 }
        let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        larger.update(from: bytes, count: capacity)
        bytes.deallocate()
        bytes = larger
        capacity = grown
    }
}
