/// Interned id of a symbol (or exchange, or condition string). 0 is reserved for "none".
public typealias SymbolID = UInt32

/// Interns names to small integer ids. One table per run (no global state); ids are assigned in
/// first-seen order, which is deterministic because input order is.
///
/// `intern(bytes:)` does not allocate when the name was seen before (the common case on the hot path):
/// it hashes the bytes and compares against stored names.
public final class SymbolTable: @unchecked Sendable {
    private var names: [String] = [""]
    private var utf8Names: [[UInt8]] = [[]]
    private var index: [String: SymbolID] = ["": 0]
    // Open-addressing table from byte-hash to id, for allocation-free lookups.
    private var slots: [UInt32]
    private var mask: Int
    private var lastID: SymbolID = 0

    public init() {
        slots = Array(repeating: UInt32.max, count: 64)
        mask = 63
    }

    public var count: Int { names.count }

    public func name(_ id: SymbolID) -> String { names[Int(id)] }
    public func utf8(_ id: SymbolID) -> [UInt8] { utf8Names[Int(id)] }

    public func lookup(_ name: String) -> SymbolID? { index[name] }

    public func intern(_ name: String) -> SymbolID {
        if let id = index[name] { return id }
        return name.utf8.withContiguousStorageIfAvailable { intern(bytes: UnsafeRawBufferPointer($0)) }
            ?? intern(bytes: Array(name.utf8))
    }

    public func intern(bytes: [UInt8]) -> SymbolID {
        bytes.withUnsafeBytes { intern(bytes: $0) }
    }

    @inline(__always)
    private static func hash(_ b: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf29ce484222325
        for x in b { h = (h ^ UInt64(x)) &* 0x100000001b3 }
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always)
    private func equal(_ id: SymbolID, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = utf8Names[Int(id)]
        if n.count != b.count { return false }
        return n.withUnsafeBytes { nb in
            for i in 0..<nb.count where nb[i] != b[i] { return false }
            return true
        }
    }

    /// Interns the name spelled by these bytes (UTF-8). Allocation-free when already known.
    /// Returns 0 ("none") for bytes that are not a valid name (`isValidName`): a reader rejects such a
    /// record (`bad_symbol`) rather than deliver a phantom symbol. Only a name not seen before is
    /// validated, so the check costs nothing on the hot path.
    public func intern(bytes b: UnsafeRawBufferPointer) -> SymbolID {
        if b.count == 0 { return 0 }
        if lastID != 0 && equal(lastID, b) { return lastID }
        var i = SymbolTable.hash(b) & mask
        while true {
            let s = slots[i]
            if s == UInt32.max { break }
            if equal(s, b) { lastID = s; return s }
            i = (i + 1) & mask
        }
        guard SymbolTable.isValidName(b) else { return 0 }
        let name = String(decoding: b, as: UTF8.self)
        let id = SymbolID(names.count)
        names.append(name)
        utf8Names.append(Array(b))
        index[name] = id
        slots[i] = id
        if names.count * 2 > slots.count { rehash() }
        lastID = id
        return id
    }

    /// A valid name is UTF-8 text without control bytes (0x00–0x1F, 0x7F). ASCII is checked byte by byte;
    /// only a name with a byte ≥ 0x80 goes through the UTF-8 validator.
    public static func isValidName(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var asciiOnly = true
        for byte in bytes {
            if byte < 0x20 || byte == 0x7F { return false }
            if byte >= 0x80 { asciiOnly = false }
        }
        return asciiOnly || String(validating: bytes, as: UTF8.self) != nil
    }

    /// The bytes as a quoted ASCII string for messages: printable ASCII as is, `"` and `\\` escaped,
    /// every other byte as `\xHH` (at most 60 bytes shown).
    public static func escaped(_ bytes: UnsafeRawBufferPointer) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var text: [UInt8] = [UInt8(ascii: "\"")]
        for byte in bytes.prefix(60) {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                text.append(contentsOf: [UInt8(ascii: "\\"), byte])
            } else if byte >= 0x20 && byte < 0x7F {
                text.append(byte)
            } else {
                text.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x")])
                text.append(contentsOf: [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
            }
        }
        if bytes.count > 60 { text.append(contentsOf: Array("…".utf8)) }
        text.append(UInt8(ascii: "\""))
        return String(decoding: text, as: UTF8.self)
    }

    private func rehash() {
        let n = slots.count * 2
        slots = Array(repeating: UInt32.max, count: n)
        mask = n - 1
        for id in 1..<names.count {
            utf8Names[id].withUnsafeBytes { b in
                var i = SymbolTable.hash(b) & mask
                while slots[i] != UInt32.max { i = (i + 1) & mask }
                slots[i] = UInt32(id)
            }
        }
    }
}

/// Builds `venue:SYMBOL` names in a reused buffer and interns them without allocating (after first sight).
public struct SymbolNamer {
    public let symbols: SymbolTable
    public let venue: String?
    private var scratch: [UInt8]
    private var rowScratch: [UInt8] = []
    private let prefixLength: Int

    public init(symbols: SymbolTable, venue: String?) {
        self.symbols = symbols
        self.venue = venue
        var s: [UInt8] = []
        s.reserveCapacity(128)
        if let v = venue, !v.isEmpty { s.append(contentsOf: v.utf8); s.append(UInt8(ascii: ":")) }
        prefixLength = s.count
        scratch = s
    }

    /// Interns `venue:` + the bytes (upper-cased when `upper`); 0 when they are not a valid name.
    @inline(__always)
    public mutating func intern(_ p: UnsafePointer<UInt8>, _ n: Int, upper: Bool = false) -> SymbolID {
        scratch.removeSubrange(prefixLength...)
        for k in 0..<n {
            var c = p[k]
            if upper && c >= 97 && c <= 122 { c -= 32 }
            scratch.append(c)
        }
        return scratch.withUnsafeBytes { symbols.intern(bytes: $0) }
    }

    /// Interns `venue:` + the bytes, where `rowVenue` (a row's own venue column) replaces this namer's venue.
    @inline(__always)
    public mutating func intern(_ bytes: UnsafeRawBufferPointer,
                                venue rowVenue: UnsafeRawBufferPointer? = nil) -> SymbolID {
        if rowVenue == nil && prefixLength == 0 { return symbols.intern(bytes: bytes) }
        if let rowVenue {
            rowScratch.removeAll(keepingCapacity: true)
            rowScratch.append(contentsOf: rowVenue)
            rowScratch.append(UInt8(ascii: ":"))
            rowScratch.append(contentsOf: bytes)
            return rowScratch.withUnsafeBytes { symbols.intern(bytes: $0) }
        }
        scratch.removeSubrange(prefixLength...)
        scratch.append(contentsOf: bytes)
        return scratch.withUnsafeBytes { symbols.intern(bytes: $0) }
    }
}
