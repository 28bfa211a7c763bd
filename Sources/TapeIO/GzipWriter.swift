import CZlib
import TapeCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes gzip. Each `flush()` ends the current gzip member and starts a new one, so everything
/// flushed is a complete member handed to the kernel, readable after a `kill -9` (multi-member files
/// are read back by `GzipStream`); `sync()` also `fsync`s it (readable after a power loss), and
/// `close()` ends the member and `fsync`s once. Memory: one `outputBytes` buffer.
///
/// Errors are never dropped: the first failure (`write(2)`, `fsync(2)`, zlib) is kept in `writeError`
/// with the path and the system's reason; later writes are discarded and every later `flush()`,
/// `sync()` or `close()` throws it.
public final class GzipWriter {
    /// Compressed bytes buffered before a `write(2)`.
    public static let outputBytes = 1 << 18
    /// Uncompressed bytes collected before they are handed to deflate.
    public static let pendingBytes = 1 << 16
    public let path: String
    private var fileDescriptor: Int32
    private var stream = z_stream()
    private var memberOpen = false
    private var output: UnsafeMutablePointer<UInt8>
    private var pending: [UInt8] = []
    public private(set) var bytesWritten: Int64 = 0      // compressed bytes on disk
    public private(set) var uncompressedBytes: Int64 = 0
    private let level: Int32
    /// The first failure, if any (later calls report it).
    public private(set) var writeError: FileWriteError?
    /// The failure has been thrown to the owner at least once (then deinit has nothing to add).
    private var failureThrown = false
    /// Tests only: the byte at which writes fail as on a full disk (`WriteFaults`).
    private let failingByte: Int64?

    public init(path: String, level: Int32 = 6) throws {
        self.path = path
        failingByte = WriteFaults.failingByte(forPath: path)
        self.level = level
        fileDescriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fileDescriptor < 0 { throw FileWriteError(path: path, operation: "create", errnoCode: errno) }
        output = .allocate(capacity: GzipWriter.outputBytes)
        pending.reserveCapacity(GzipWriter.pendingBytes)
    }

    deinit {
        // The owner should have called close() and seen its error; if not, the error is still not hidden.
        if fileDescriptor >= 0 {
            let alreadyThrown = failureThrown
            do { try close() } catch {
                if !alreadyThrown { printToStandardError("tape: \(error) (gzip file released without close())\n") }
            }
        }
        if memberOpen { deflateEnd(&stream) }
        output.deallocate()
    }

    public func write(_ text: String) {
        pending.append(contentsOf: text.utf8)
        if pending.count >= GzipWriter.pendingBytes { compressPendingRecordingFailure() }
    }

    public func writeLine(_ text: String) { write(text); pending.append(0x0A) }

    public func write(bytes: UnsafeRawBufferPointer) {
        pending.append(contentsOf: bytes)
        if pending.count >= GzipWriter.pendingBytes { compressPendingRecordingFailure() }
    }

    private func startMember() throws {
        stream = z_stream()
        guard tape_deflateInit2(&stream, level, 15 + 16) == Z_OK else {
            throw FileWriteError(path: path, operation: "deflate", detail: "deflateInit failed")
        }
        memberOpen = true
    }

    private func deflateAll(_ flush: Int32) throws {
        repeat {
            stream.next_out = output
            stream.avail_out = UInt32(GzipWriter.outputBytes)
            let result = deflate(&stream, flush)
            if result == Z_STREAM_ERROR {
                throw FileWriteError(path: path, operation: "deflate", detail: "deflate failed")
            }
            let produced = GzipWriter.outputBytes - Int(stream.avail_out)
            try writeAll(output, produced)
        } while stream.avail_out == 0 || (flush == Z_FINISH && stream.avail_in > 0)
    }

    private func writeAll(_ bytes: UnsafeMutablePointer<UInt8>, _ count: Int) throws {
        var offset = 0
        while offset < count {
            let allowed = WriteFaults.allowedBytes(count - offset, at: bytesWritten + Int64(offset),
                                                   failingByte: failingByte)
            let written = allowed == 0 ? 0 : Glibc.write(fileDescriptor, bytes + offset, allowed)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 {
                throw FileWriteError(path: path, operation: "write", errnoCode: written < 0 ? errno : ENOSPC)
            }
            offset += written
        }
        bytesWritten += Int64(count)
    }

    /// Compresses `pending`; after a failure it only discards (the failure is what gets reported).
    private func compressPending() throws {
        if let writeError { pending.removeAll(keepingCapacity: true); failureThrown = true; throw writeError }
        if pending.isEmpty { return }
        do {
            if !memberOpen { try startMember() }
            uncompressedBytes += Int64(pending.count)
            try pending.withUnsafeMutableBytes { bytes in
                stream.next_in = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_in = UInt32(bytes.count)
                try deflateAll(Z_NO_FLUSH)
            }
            pending.removeAll(keepingCapacity: true)
        } catch let failure as FileWriteError {
            writeError = failure
            pending.removeAll(keepingCapacity: true)
            failureThrown = true
            throw failure
        }
    }

    /// The non-throwing write path: the failure is kept in `writeError` and thrown by the next flush/close.
    private func compressPendingRecordingFailure() {
        let alreadyThrown = failureThrown
        do { try compressPending() } catch {
            assert(writeError != nil, "every failure is recorded")
            failureThrown = alreadyThrown  // kept, not yet seen by the owner
        }
    }

    /// Ends the current gzip member (if anything was written since the last flush) and hands it to
    /// the kernel. Throws the first failure.
    public func flush() throws {
        try compressPending()
        guard memberOpen else { return }
        stream.next_in = nil
        stream.avail_in = 0
        do {
            try deflateAll(Z_FINISH)
        } catch let failure as FileWriteError {
            writeError = failure
            failureThrown = true
            throw failure
        }
        deflateEnd(&stream)
        memberOpen = false
    }

    /// `flush()`, then `fsync`: every member ended so far survives a power loss.
    public func sync() throws {
        try flush()
        guard fileDescriptor >= 0 else { return }
        if let failure = FileWriteError.fsyncFailure(fileDescriptor, path: path) {
            writeError = failure
            failureThrown = true
            throw failure
        }
    }

    /// Ends the member, `fsync`s and closes; idempotent. Throws the first failure.
    public func close() throws {
        if fileDescriptor >= 0 {
            do { try sync() } catch { assert(writeError != nil, "every failure is recorded") }
            if Glibc.close(fileDescriptor) != 0 && writeError == nil {
                writeError = FileWriteError(path: path, operation: "close", errnoCode: errno)
            }
            fileDescriptor = -1
        }
        if memberOpen { deflateEnd(&stream); memberOpen = false }
        if let writeError { failureThrown = true; throw writeError }
    }
}
