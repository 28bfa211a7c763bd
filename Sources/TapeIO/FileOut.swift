#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffered append-only file (plain). Writes go through a 256 KiB buffer.
public final class BufferedFile {
    public let path: String
    private var fd: Int32
    private var buf: [UInt8] = []

    public struct OpenError: Error, CustomStringConvertible {
        public let path: String; public let errno: Int32
        public var description: String { "\(path): cannot write: \(String(cString: strerror(errno)))" }
    }

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw OpenError(path: path, errno: errno) }
        buf.reserveCapacity(1 << 18)
    }

    public func write(_ s: String) {
        buf.append(contentsOf: s.utf8)
        if buf.count >= 1 << 18 { flush() }
    }

    public func writeLine(_ s: String) { write(s); buf.append(0x0A) }

    public func flush() {
        var off = 0
        while off < buf.count {
            let n = buf.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { if errno == EINTR { continue }; break }
            off += n
        }
        buf.removeAll(keepingCapacity: true)
    }

    public func close() {
        if fd >= 0 { flush(); Glibc.close(fd); fd = -1 }
    }

    deinit { close() }
}

public enum FS {
    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws {
        var cur = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            cur += "/" + part
            if mkdir(cur, 0o755) != 0 && errno != EEXIST {
                throw BufferedFile.OpenError(path: cur, errno: errno)
            }
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    public static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func writeText(_ path: String, _ text: String) throws {
        let f = try BufferedFile(path: path)
        f.write(text)
        f.close()
    }
}
