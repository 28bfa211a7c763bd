import TapeCore
import TapeIO

/// Writes one feed's stamped messages as a raw capture: the format `RawCaptureReader` reads
/// (`<receive ns> <message>` per line, gzipped) with a `RawCapture.Header` first line, so that
/// `tape replay DIR/*.gz` reads a live session back with the same decoders.
///
///     let recorder = try CaptureRecorder(directory: "rec", header: header)
///     let line = try recorder.append(receiveTime: stamp, message: bytes)
///     try recorder.flush()   // at every clock tick: what was written survives a kill -9
///
/// Files are `<feed>-<first receive time as yyyyMMdd-HHmmss.SSS>Z.gz`; a file that reaches `maxBytes`
/// (uncompressed) is closed and the next message starts a new one (`rotated` says so: the live
/// source then restarts the feed's decoder and validator, as the replay of the new file will).
/// Crash safety: `flush()` ends the gzip member (complete members are readable after a kill -9; a cut
/// member is reported by the reader as `truncated_gzip`, the lines before it kept).
public final class CaptureRecorder {
    public let directory: String
    public let header: RawCapture.Header
    public let maxBytes: Int64
    /// Every file written so far, in order (the last one is open).
    public private(set) var paths: [String] = []
    /// The line number of the last message in the current file (the header is line 1).
    public private(set) var lineNumber = 0
    public private(set) var messages = 0

    private var writer: GzipWriter?
    /// Scratch for `<receive ns><space>`: 19 digits at most, then the space.
    private var prefix: [UInt8] = Array(repeating: UInt8(ascii: " "), count: 24)
    private let newline: [UInt8] = [UInt8(ascii: "\n")]

    public init(directory: String, header: RawCapture.Header, maxBytes: Int64 = 256 << 20) throws {
        precondition(maxBytes > 0, "maxBytes must be positive")
        self.directory = directory
        self.header = header
        self.maxBytes = maxBytes
        try FS.makeDirectories(directory)
    }

    /// The current file's path (nil before the first message).
    public var path: String? { writer == nil ? nil : paths.last }

    /// Appends one message; returns its line number in the current file and whether a new file was
    /// started for it. Throws the first write failure (later calls throw it again).
    @discardableResult
    public func append(receiveTime: Nanos, message: UnsafeRawBufferPointer) throws
        -> (line: Int, rotated: Bool) {
        var rotated = false
        if let open = writer, open.uncompressedBytes >= maxBytes {
            try open.close()
            writer = nil
            rotated = true
        }
        if writer == nil { try startFile(at: receiveTime) }
        guard let writer else { preconditionFailure("a file is open") }
        if let failure = writer.writeError { throw failure }
        // `<digits><space>` right-aligned in `prefix`, then the message, then the newline.
        let digits = Self.decimal(receiveTime, into: &prefix, end: prefix.count - 1)
        let first = prefix.count - 1 - digits
        prefix.withUnsafeBytes { writer.write(bytes: UnsafeRawBufferPointer(rebasing: $0[first...])) }
        writer.write(bytes: message)
        newline.withUnsafeBytes { writer.write(bytes: $0) }
        lineNumber += 1
        messages += 1
        return (lineNumber, rotated)
    }

    /// Ends the current gzip member (complete on disk after a crash). Throws the first failure.
    public func flush() throws { try writer?.flush() }

    /// Ends the file (fsync) and releases it. Idempotent.
    public func close() throws {
        defer { writer = nil }
        try writer?.close()
    }

    private func startFile(at receiveTime: Nanos) throws {
        var name = "\(header.feed)-\(Self.fileStamp(receiveTime))Z.gz"
        var suffix = 2
        while FS.exists("\(directory)/\(name)") {
            name = "\(header.feed)-\(Self.fileStamp(receiveTime))Z-\(suffix).gz"
            suffix += 1
        }
        let path = "\(directory)/\(name)"
        let opened = try GzipWriter(path: path)
        opened.writeLine(header.line)
        writer = opened
        paths.append(path)
        lineNumber = 1
    }

    /// `20240808-235959.123` from ns UTC.
    static func fileStamp(_ time: Nanos) -> String {
        let iso = TimeUtil.iso(time)   // 2024-08-08T23:59:59.123456789Z
        let date = iso.prefix(10).filter { $0 != "-" }
        let clock = iso.dropFirst(11).prefix(8).filter { $0 != ":" }
        let millis = iso.dropFirst(20).prefix(3)
        return "\(date)-\(clock).\(millis.count == 3 ? String(millis) : "000")"
    }

    /// Writes `value` (≥ 0) right-aligned to end before `buffer[end]`; returns the digit count.
    @inline(__always)
    static func decimal(_ value: Int64, into buffer: inout [UInt8], end: Int) -> Int {
        precondition(value >= 0, "receive times are positive")
        var remaining = value
        var position = end
        repeat {
            position -= 1
            buffer[position] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
        } while remaining > 0
        return end - position
    }
}
