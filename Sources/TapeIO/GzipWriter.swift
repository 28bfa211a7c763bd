import CZlib
import TapeCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes gzip. Each `flush()` ends the current gzip member and starts a new one, so everything
/// flushed is a complete member on disk and readable after a `kill -9` (multi-member files are read
/// back by `GzipStream`). Memory: one 256 KiB buffer.
public final class GzipWriter {
    public let path: String
    private var fd: Int32
    private var z = z_stream()
    private var memberOpen = false
    private var out: UnsafeMutablePointer<UInt8>
    private let outCap = 1 << 18
    private var pending: [UInt8] = []
    public private(set) var bytesWritten: Int64 = 0      // compressed bytes on disk
    public private(set) var uncompressedBytes: Int64 = 0
    private let level: Int32

    public struct WriteError: Error, CustomStringConvertible {
        public let path: String; public let detail: String
        public var description: String { "\(path): \(detail)" }
    }

    public init(path: String, level: Int32 = 6) throws {
        self.path = path
        self.level = level
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw WriteError(path: path, detail: "cannot create: \(String(cString: strerror(errno)))") }
        out = .allocate(capacity: outCap)
        pending.reserveCapacity(1 << 16)
    }

    deinit { try? close(); out.deallocate() }

    public func write(_ s: String) { pending.append(contentsOf: s.utf8); if pending.count >= 1 << 16 { try? compressPending() } }
    public func writeLine(_ s: String) { write(s); pending.append(0x0A) }
    public func write(bytes: UnsafeRawBufferPointer) {
        pending.append(contentsOf: bytes)
        if pending.count >= 1 << 16 { try? compressPending() }
    }

    private func startMember() throws {
        z = z_stream()
        guard tape_deflateInit2(&z, level, 15 + 16) == Z_OK else { throw WriteError(path: path, detail: "deflateInit failed") }
        memberOpen = true
    }

    private func deflateAll(_ flush: Int32) throws {
        repeat {
            z.next_out = out
            z.avail_out = UInt32(outCap)
            let r = deflate(&z, flush)
            if r == Z_STREAM_ERROR { throw WriteError(path: path, detail: "deflate failed") }
            let n = outCap - Int(z.avail_out)
            try writeAll(out, n)
        } while z.avail_out == 0 || (flush == Z_FINISH && z.avail_in > 0)
    }

    private func writeAll(_ p: UnsafeMutablePointer<UInt8>, _ n: Int) throws {
        var off = 0
        while off < n {
            let w = Glibc.write(fd, p + off, n - off)
            if w < 0 { if errno == EINTR { continue }; throw WriteError(path: path, detail: "write failed: \(String(cString: strerror(errno)))") }
            off += w
        }
        bytesWritten += Int64(n)
    }

    private func compressPending() throws {
        if pending.isEmpty { return }
        if !memberOpen { try startMember() }
        uncompressedBytes += Int64(pending.count)
        try pending.withUnsafeMutableBytes { b in
            z.next_in = b.baseAddress!.assumingMemoryBound(to: UInt8.self)
            z.avail_in = UInt32(b.count)
            try deflateAll(Z_NO_FLUSH)
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Ends the current gzip member (if anything was written since the last flush).
    public func flush() throws {
        try compressPending()
        guard memberOpen else { return }
        z.next_in = nil; z.avail_in = 0
        try deflateAll(Z_FINISH)
        deflateEnd(&z)
        memberOpen = false
    }

    public func close() throws {
        if fd < 0 { return }
        try flush()
        Glibc.close(fd)
        fd = -1
    }
}
