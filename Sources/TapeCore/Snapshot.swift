/// A snapshot could not be read: truncated, corrupted, or written by another version or config.
/// Reading never traps on bad bytes: every problem is one of these, with the byte offset.
public struct SnapshotError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var offset: Int
    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
    public var description: String { "snapshot: \(message) (at byte \(offset))" }
}

/// Appends little-endian values to a byte buffer. The counterpart of `SnapshotReader`; the layout
/// of a graph snapshot is documented in docs/snapshot.md.
///
///     var writer = SnapshotWriter()
///     writer.append(Int64(42)); writer.append(3.5); writer.append("spot:BTCUSDT")
///     let bytes = writer.bytes
public struct SnapshotWriter {
    public private(set) var bytes: [UInt8] = []

    public init() { bytes.reserveCapacity(4096) }

    public mutating func append(_ value: UInt64) {
        var remaining = value
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: remaining))
            remaining >>= 8
        }
    }

    public mutating func append(_ value: Int64) { append(UInt64(bitPattern: value)) }

    public mutating func append(_ value: UInt32) { append(UInt64(value)) }

    /// A Double by its bit pattern (NaN payloads and signed zeros survive).
    public mutating func append(_ value: Double) { append(value.bitPattern) }

    public mutating func append(_ value: Bool) { bytes.append(value ? 1 : 0) }

    public mutating func appendByte(_ byte: UInt8) { bytes.append(byte) }

    /// A count (of elements that follow): written as a UInt64.
    public mutating func appendCount(_ count: Int) {
        precondition(count >= 0, "a count is never negative")
        append(UInt64(count))
    }

    /// A string: byte count, then its UTF-8 bytes.
    public mutating func append(_ value: String) {
        let utf8 = Array(value.utf8)
        appendCount(utf8.count)
        bytes.append(contentsOf: utf8)
    }

    /// Raw bytes, preceded by their count (a nested, self-delimited payload).
    public mutating func appendBlock(_ block: [UInt8]) {
        appendCount(block.count)
        bytes.append(contentsOf: block)
    }
}

/// Reads what `SnapshotWriter` wrote. Every read checks the remaining length and throws
/// `SnapshotError` on truncation or an implausible value; nothing here traps on bad input.
public struct SnapshotReader {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    public func error(_ message: String) -> SnapshotError { SnapshotError(message, offset: offset) }

    public mutating func readUInt64() throws -> UInt64 {
        guard remaining >= 8 else { throw error("truncated: expected 8 bytes, \(remaining) left") }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        offset += 8
        return value
    }

    public mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readUInt64()) }

    public mutating func readUInt32() throws -> UInt32 {
        let value = try readUInt64()
        guard value <= UInt64(UInt32.max) else { throw error("value \(value) does not fit 32 bits") }
        return UInt32(value)
    }

    public mutating func readDouble() throws -> Double { Double(bitPattern: try readUInt64()) }

    public mutating func readBool() throws -> Bool {
        guard remaining >= 1 else { throw error("truncated: expected a flag byte") }
        let byte = bytes[offset]
        guard byte <= 1 else { throw error("flag byte is \(byte), expected 0 or 1") }
        offset += 1
        return byte == 1
    }

    /// A count of elements each at least `minimumElementBytes` long; refuses a count that the
    /// remaining bytes cannot hold (so garbage never makes the caller allocate a huge array).
    public mutating func readCount(minimumElementBytes: Int = 1, limit: Int = Int(Int32.max)) throws -> Int {
        precondition(minimumElementBytes >= 0 && limit >= 0)
        let raw = try readUInt64()
        guard raw <= UInt64(limit) else { throw error("count \(raw) above the limit \(limit)") }
        let count = Int(raw)
        if minimumElementBytes > 0 && count > remaining / minimumElementBytes {
            throw error("truncated: count \(count) needs more than the \(remaining) bytes left")
        }
        return count
    }

    /// Exactly `count` raw bytes.
    public mutating func readBytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw error("truncated: expected \(count) bytes, \(remaining) left")
        }
        let slice = Array(bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    public mutating func readString() throws -> String {
        let count = try readCount()
        let utf8 = try readBytes(count)
        guard let text = String(validating: utf8, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return text
    }

    /// A nested payload written by `appendBlock`.
    public mutating func readBlock() throws -> [UInt8] {
        try readBytes(try readCount())
    }

    /// Throws unless every byte was consumed (a payload longer than its reader expects is corrupt).
    public func expectEnd(_ what: String) throws {
        guard isAtEnd else { throw error("\(remaining) unread bytes after \(what)") }
    }
}

/// FNV-1a, 64 bit: the checksum of a snapshot and the hash of a config's canonical text. Not
/// cryptographic: it catches accidental damage (a cut file, a flipped byte), not tampering.
public enum FNV1a64 {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01b3

    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash = offsetBasis
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* prime }
        return hash
    }
}
