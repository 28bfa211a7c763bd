import TapeCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffered append-only file (plain). Writes go through a `bufferBytes` buffer.
///
/// Errors are never dropped: the first failed `write(2)`, `fsync(2)` or `close(2)` is kept in
/// `writeError` (path, operation, errno text); later writes are discarded and every later `flush()` or
/// `close()` throws it. Durability: `flush()` hands the bytes to the kernel (they survive the process
/// being killed); `close()` also calls `fsync` once (they survive a power loss).
public final class BufferedFile {
    /// Bytes kept in memory before a `write(2)`.
    public static let bufferBytes = 1 << 18
    public let path: String
    private var fileDescriptor: Int32
    private var buffer: [UInt8] = []
    /// The first failure, if any (later calls report it).
    public private(set) var writeError: FileWriteError?
    /// Bytes the kernel accepted.
    public private(set) var bytesWritten: Int64 = 0
    /// The failure has been thrown to the owner at least once (then deinit has nothing to add).
    private var failureThrown = false
    /// Tests only: the byte at which writes fail as on a full disk (`WriteFaults`).
    private let failingByte: Int64?

    public init(path: String) throws {
        self.path = path
        failingByte = WriteFaults.failingByte(forPath: path)
        fileDescriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fileDescriptor < 0 { throw FileWriteError(path: path, operation: "create", errnoCode: errno) }
        buffer.reserveCapacity(BufferedFile.bufferBytes)
    }

    public func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= BufferedFile.bufferBytes { writeBuffer() }
    }

    public func write(bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= BufferedFile.bufferBytes { writeBuffer() }
    }

    public func writeLine(_ text: String) { write(text); buffer.append(0x0A) }

    /// Hands the buffer to the kernel; throws the first failure (this one or an earlier one).
    public func flush() throws {
        writeBuffer()
        if let writeError { failureThrown = true; throw writeError }
    }

    /// Flushes, `fsync`s once and closes; idempotent. Throws the first failure.
    public func close() throws {
        if fileDescriptor >= 0 {
            writeBuffer()
            if writeError == nil { writeError = FileWriteError.fsyncFailure(fileDescriptor, path: path) }
            if Glibc.close(fileDescriptor) != 0 && writeError == nil {
                writeError = FileWriteError(path: path, operation: "close", errnoCode: errno)
            }
            fileDescriptor = -1
        }
        if let writeError { failureThrown = true; throw writeError }
    }

    /// Writes the buffer out, or drops it once a write has failed (the failure is what gets reported).
    private func writeBuffer() {
        defer { buffer.removeAll(keepingCapacity: true) }
        guard writeError == nil, fileDescriptor >= 0 else { return }
        var offset = 0
        while offset < buffer.count {
            let allowed = WriteFaults.allowedBytes(buffer.count - offset, at: bytesWritten, failingByte: failingByte)
            let written = allowed == 0 ? 0 : buffer.withUnsafeBytes { bytes in
                Glibc.write(fileDescriptor, bytes.baseAddress! + offset, allowed)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 {
                writeError = FileWriteError(path: path, operation: "write", errnoCode: written < 0 ? errno : ENOSPC)
                return
            }
            offset += written
            bytesWritten += Int64(written)
        }
        assert(offset == buffer.count, "a buffer is written whole or the failure is recorded")
    }

    deinit {
        // The owner should have called close() and seen its error; if not, the error is still not hidden.
        if fileDescriptor >= 0 {
            let alreadyThrown = failureThrown
            do { try close() } catch {
                if !alreadyThrown { printToStandardError("tape: \(error) (file released without close())\n") }
            }
        }
    }
}

public enum FS {
    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws {
        var cur = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            cur += "/" + part
            if mkdir(cur, 0o755) != 0 && errno != EEXIST {
                throw FileWriteError(path: cur, operation: "mkdir", errnoCode: errno)
            }
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// True if `path` is a folder this process may create files in.
    public static func isWritableDirectory(_ path: String) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else { return false }
        return access(path, W_OK | X_OK) == 0
    }

    /// A regular file (not a pipe, FIFO, device or folder): one that can be read twice.
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

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
        let file = try BufferedFile(path: path)
        file.write(text)
        try file.close()
    }
}

/// Writes a message to standard error (fd 2) directly: no shared `FILE *` (Swift 6 strict concurrency).
func printToStandardError(_ message: String) {
    var text = message
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
