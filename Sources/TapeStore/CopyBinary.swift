/// Rows in PostgreSQL's binary `COPY` format, built into one reusable byte buffer.
///
/// Format (PostgreSQL docs, "COPY — Binary Format"): the 11-byte signature `PGCOPY\n\377\r\n\0`, a 32-bit
/// flags field and a 32-bit header-extension length (both 0); then per row a 16-bit field count and per
/// field a 32-bit length (-1 = NULL) and the value in the type's binary send format, big-endian; then
/// the 16-bit trailer -1. Used types: `int8`, `int2`, `float8` (IEEE 754), `text` (UTF-8 bytes) and
/// `timestamptz` (int8 microseconds since 2000-01-01 00:00 UTC).
///
/// Binary rather than text: doubles travel as their 8 bytes (no formatting here, no parsing in the
/// server, exactly the value the graph computed), and the server's COPY was measured faster with it
/// (BENCHMARKS.md). NaN is written as NULL (an indicator in its lookback, a bar without volume).
///
/// No allocation per row once the buffer has grown: `reset()` keeps the capacity.
public struct CopyBinaryRows {
    public private(set) var bytes: [UInt8] = []
    public private(set) var rows = 0
    private var fieldsLeft = 0

    static let signature: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00]
    /// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC).
    static let postgresEpochMicros: Int64 = 946_684_800_000_000

    public init(capacity: Int = 1 << 16) {
        bytes.reserveCapacity(capacity)
        reset()
    }

    /// A finished stream read back (a spooled batch): `bytes` with header and trailer, `rows` rows.
    public init(finishedBytes: [UInt8], rows: Int) {
        bytes = finishedBytes
        self.rows = rows
        fieldsLeft = -1
    }

    /// Empties the buffer (keeping its capacity) and writes the header.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: Self.signature)
        appendBE(UInt32(0))
        appendBE(UInt32(0))
        rows = 0
        fieldsLeft = 0
    }

    /// Appends the trailer: `bytes` is then one whole `COPY … FROM STDIN (FORMAT binary)` input.
    /// No row may follow until `reset()`.
    public mutating func finish() {
        precondition(fieldsLeft == 0, "last row incomplete")
        appendBE(UInt16(0xFFFF))
        fieldsLeft = -1
    }

    public var isEmpty: Bool { rows == 0 }

    public mutating func beginRow(fields: Int) {
        precondition(fieldsLeft == 0, "previous row incomplete, or finished")
        appendBE(UInt16(fields))
        fieldsLeft = fields
        rows += 1
    }

    public mutating func int8(_ value: Int64) {
        appendBE(UInt32(8))
        appendBE(UInt64(bitPattern: value))
        fieldsLeft -= 1
    }

    public mutating func int2(_ value: Int16) {
        appendBE(UInt32(2))
        appendBE(UInt16(bitPattern: value))
        fieldsLeft -= 1
    }

    /// NaN is NULL.
    public mutating func float8(_ value: Double) {
        if value.isNaN { null(); return }
        appendBE(UInt32(8))
        appendBE(value.bitPattern)
        fieldsLeft -= 1
    }

    public mutating func text(_ utf8: [UInt8]) {
        appendBE(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
        fieldsLeft -= 1
    }

    /// The same from a `String`'s UTF-8 view (no copy of it).
    public mutating func text(_ string: String) {
        appendBE(UInt32(string.utf8.count))
        bytes.append(contentsOf: string.utf8)
        fieldsLeft -= 1
    }

    /// A Unix-epoch time in ns as `timestamptz` (truncated to the microsecond, toward minus infinity).
    public mutating func timestamptz(nanos: Int64) {
        let micros = nanos >= 0 ? nanos / 1000 : (nanos - 999) / 1000
        int8(micros - Self.postgresEpochMicros)
    }

    public mutating func null() {
        appendBE(UInt32(0xFFFF_FFFF))
        fieldsLeft -= 1
    }

    @inline(__always) private mutating func appendBE(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always) private mutating func appendBE(_ value: UInt32) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) private mutating func appendBE(_ value: UInt64) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { bytes.append(contentsOf: $0) }
    }
}
