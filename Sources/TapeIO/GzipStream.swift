import CZlib
import TapeCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem with the gzip container itself (not with a line inside it).
public struct GzipIssue: Sendable, Equatable {
    /// `readError`: `read(2)` failed (EIO, EISDIR…); the input ends there and the rest is not read.
    public enum Kind: Sendable, Equatable { case truncated, corrupt, readError }
    public var kind: Kind
    /// Offset in the compressed file where it happened.
    public var compressedOffset: Int64
    public var detail: String
}

/// Streams the decompressed bytes of a gzip file (multi-member files accepted; a plain, uncompressed
/// file is passed through unchanged). Decompression runs on its own thread, one chunk ahead of the
/// consumer, so parsing overlaps inflating on a multi-core machine; memory is a few fixed buffers.
///
/// A damaged deflate block ends the current member: the stream scans forward for the next gzip member
/// header and resumes there (our recorder writes one member per flush, so little is lost); a file
/// that ends inside a member is reported as truncated after everything before the cut was delivered.
public final class GzipStream: @unchecked Sendable {
    public let path: String
    public static let chunkSize = 1 << 18

    private let fd: Int32
    private var z = z_stream()
    private var inBuf: UnsafeMutablePointer<UInt8>
    private var inLen = 0          // valid bytes in inBuf
    private var inPos = 0          // consumed bytes in inBuf
    private var compressedBase: Int64 = 0  // file offset of inBuf[0]
    private var eof = false
    private var plain = false
    private var memberOpen = false
    private var finished = false
    private(set) public var issues: [GzipIssue] = []
    /// Whether the input is not gzip (passed through as it is).
    public private(set) var isPlain = false
    /// The input's first bytes as read from the file (for messages about an input that is not text).
    public private(set) var firstBytes: [UInt8] = []
    /// Zero bytes skipped after a gzip member (padding, e.g. from a block device or a preallocated
    /// file): reported by `LineReader` as the skip `trailing_zero_bytes`. Final once the stream ended.
    public private(set) var zeroPaddingBytes: Int64 = 0
    /// Bytes read from the file so far (the inflate thread reads ahead of the consumer).
    public private(set) var compressedBytes: Int64 = 0
    /// The failed `read(2)` that ended the input early, if any: `read failed at byte N: <errno text>`.
    /// Also delivered once as a `.readError` issue at the end of the data read before it.
    public private(set) var readFailure: String?
    private var readFailureReported = false
    /// Compressed bytes behind the chunks handed out by `nextChunk` so far: the consumer's position
    /// in the file (progress and ETA), updated once per chunk; the file's size after the last chunk.
    public private(set) var consumedCompressedBytes: Int64 = 0

    // Double buffering between the inflate thread and the consumer.
    private let slots: [UnsafeMutablePointer<UInt8>]
    private var slotLen: [Int]
    private var slotIssues: [[GzipIssue]]
    private var slotCompressedEnd: [Int64]   // file offset reached when the slot was filled
    private var filled: [Bool]
    private var done = false
    private var cond = pthread_cond_t()
    private var mutex = pthread_mutex_t()
    private var thread: pthread_t? = nil
    private var readIndex = 0
    private var threaded: Bool

    public enum OpenError: Error, CustomStringConvertible {
        case cannotOpen(String, Int32)
        case directory(String)
        public var description: String {
            switch self {
            case .cannotOpen(let p, let e): return "\(p): cannot open: \(String(cString: strerror(e)))"
            case .directory(let p):
                return "\(p): is a directory, not a recording (give the files in it, e.g. \(p)/*.gz)"
            }
        }
    }

    /// The path that means standard input.
    public static let standardInputPath = "-"
    /// How long opening a FIFO waits for a writer before saying so on stderr (it then waits on).
    public static let fifoWriterNoticeMs: Int32 = 2_000

    /// - Parameter threaded: inflate on a background thread (default). Tests may turn it off.
    /// `path` may be `-` (standard input), a FIFO or a process substitution (`<(zcat …)`): the input is
    /// read once, front to back, and never reopened.
    public convenience init(path: String, threaded: Bool = true) throws {
        self.init(fileDescriptor: try GzipStream.openInput(path), path: path, threaded: threaded)
    }

    /// Reads an already open `fileDescriptor` (owned from now on: closed when the stream goes). `path`
    /// is the name used in messages.
    public init(fileDescriptor: Int32, path: String, threaded: Bool = true) {
        precondition(fileDescriptor >= 0, "an open file descriptor")
        self.path = path
        fd = fileDescriptor
        inBuf = .allocate(capacity: GzipStream.chunkSize)
        slots = (0..<3).map { _ in UnsafeMutablePointer<UInt8>.allocate(capacity: GzipStream.chunkSize) }
        slotLen = [0, 0, 0]
        slotIssues = [[], [], []]
        slotCompressedEnd = [0, 0, 0]
        filled = [false, false, false]
        self.threaded = threaded
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        fillInput()
        // Plain (not gzip) input is passed through: lets users replay an uncompressed file too.
        plain = !(inLen >= 2 && inBuf[0] == 0x1f && inBuf[1] == 0x8b)
        isPlain = plain
        firstBytes = Array(UnsafeBufferPointer(start: inBuf, count: min(inLen, 16)))
        if !plain { startMember() }
        if threaded { startThread() }
    }

    deinit {
        if threaded, let t = thread {
            pthread_mutex_lock(&mutex); done = true; pthread_cond_broadcast(&cond); pthread_mutex_unlock(&mutex)
            pthread_join(t, nil)
        }
        if memberOpen { inflateEnd(&z) }
        close(fd)
        inBuf.deallocate()
        for s in slots { s.deallocate() }
        pthread_cond_destroy(&cond); pthread_mutex_destroy(&mutex)
    }

    /// Opens `path` for reading: `-` is standard input; a directory is refused by name; a FIFO is opened
    /// without blocking, and if no writer comes within `fifoWriterNoticeMs` a line on stderr says what
    /// the run waits for (then it waits on, as `cat` would).
    private static func openInput(_ path: String) throws -> Int32 {
        if path == standardInputPath {
            let fd = dup(0)
            if fd < 0 { throw OpenError.cannotOpen("standard input", errno) }
            return fd
        }
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { throw OpenError.directory(path) }
        let isFIFO = stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO
        let fd = open(path, isFIFO ? O_RDONLY | O_NONBLOCK : O_RDONLY)
        if fd < 0 { throw OpenError.cannotOpen(path, errno) }
        guard isFIFO else { return fd }
        // A FIFO opened without blocking: poll sees data or a writer that came and went (POLLHUP).
        var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var ready = poll(&waiting, 1, fifoWriterNoticeMs)
        if ready == 0 {
            let notice = Array("tape: waiting for a writer on \(MessageText.escaped(path))\n".utf8)
            _ = notice.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            repeat { ready = poll(&waiting, 1, -1) } while ready < 0 && errno == EINTR
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        return fd
    }

    private func fillInput() {
        if inPos < inLen {
            memmove(inBuf, inBuf + inPos, inLen - inPos)
            compressedBase += Int64(inPos); inLen -= inPos; inPos = 0
        } else { compressedBase += Int64(inLen); inLen = 0; inPos = 0 }
        while inLen < GzipStream.chunkSize && !eof {
            let r = read(fd, inBuf + inLen, GzipStream.chunkSize - inLen)
            if r < 0 {
                let code = errno
                if code == EINTR { continue }
                // Not the end of the input: said once (`readError` issue), never taken for a clean EOF.
                readFailure = "read failed at byte \(compressedBytes): \(String(cString: strerror(code)))"
                eof = true
                break
            }
            if r == 0 { eof = true; break }
            inLen += r
            compressedBytes += Int64(r)
        }
    }

    private func startMember() {
        z = z_stream()
        _ = tape_inflateInit2(&z, 15 + 16)
        memberOpen = true
    }

    /// Fills `out` with up to `cap` decompressed bytes; returns 0 at the end. Appends container issues.
    private func produce(_ out: UnsafeMutablePointer<UInt8>, _ cap: Int, _ newIssues: inout [GzipIssue]) -> Int {
        if finished { return 0 }
        if plain {
            if inPos >= inLen { fillInput() }
            let n = min(cap, inLen - inPos)
            if n == 0 { finished = true; appendReadFailure(&newIssues); return 0 }
            memcpy(out, inBuf + inPos, n); inPos += n
            return n
        }
        var produced = 0
        while produced < cap {
            if inPos >= inLen {
                if eof {
                    if readFailure != nil {
                        appendReadFailure(&newIssues)
                    } else if memberOpen && z.total_in > 0 {
                        newIssues.append(GzipIssue(kind: .truncated, compressedOffset: compressedBase + Int64(inPos),
                                                   detail: "file ends inside a gzip member (truncated)"))
                    }
                    if memberOpen { inflateEnd(&z); memberOpen = false }
                    finished = true
                    return produced
                }
                fillInput()
                continue
            }
            if !memberOpen {
                // Between members: skip zero padding; anything else must be a new member header.
                while inPos < inLen && inBuf[inPos] == 0 { inPos += 1; zeroPaddingBytes += 1 }
                if inPos >= inLen { continue }
                if inLen - inPos < 2 && !eof { fillInput(); continue }
                if inBuf[inPos] == 0x1f && inPos + 1 < inLen && inBuf[inPos + 1] == 0x8b { startMember() }
                else {
                    newIssues.append(GzipIssue(kind: .corrupt, compressedOffset: compressedBase + Int64(inPos),
                                               detail: "bytes after the last gzip member are not gzip data"))
                    if !resync() { finished = true; appendReadFailure(&newIssues); return produced }
                    continue
                }
            }
            z.next_in = inBuf + inPos
            z.avail_in = UInt32(inLen - inPos)
            z.next_out = out + produced
            z.avail_out = UInt32(cap - produced)
            let ret = inflate(&z, Z_NO_FLUSH)
            let usedIn = (inLen - inPos) - Int(z.avail_in)
            inPos += usedIn
            produced = cap - Int(z.avail_out)
            if ret == Z_STREAM_END {
                inflateEnd(&z); memberOpen = false
            } else if ret == Z_OK || ret == Z_BUF_ERROR {
                if ret == Z_BUF_ERROR && usedIn == 0 && produced < cap { fillInputOrTruncate() }
            } else {
                let msg = z.msg.map { String(cString: $0) } ?? "zlib error \(ret)"
                newIssues.append(GzipIssue(kind: .corrupt, compressedOffset: compressedBase + Int64(inPos),
                                           detail: "corrupt gzip data (\(msg))"))
                inflateEnd(&z); memberOpen = false
                if !resync() { finished = true; appendReadFailure(&newIssues); return produced }
                // Resume in the next member: the partial line before the damage is ended by the reader.
                return produced
            }
        }
        return produced
    }

    /// The read failure as an issue, once (the end of the data that could be read).
    private func appendReadFailure(_ newIssues: inout [GzipIssue]) {
        guard let readFailure, !readFailureReported else { return }
        readFailureReported = true
        newIssues.append(GzipIssue(kind: .readError, compressedOffset: compressedBytes,
                                   detail: readFailure + "; the rest of the input was not read"))
    }

    private func fillInputOrTruncate() {
        if !eof { fillInput() } else { inPos = inLen }
    }

    /// Scans forward for the next gzip member header (1f 8b 08). Returns false at end of file.
    private func resync() -> Bool {
        inPos += 1
        while true {
            while inPos + 2 < inLen {
                if inBuf[inPos] == 0x1f && inBuf[inPos + 1] == 0x8b && inBuf[inPos + 2] == 8 { return true }
                inPos += 1
            }
            if eof { inPos = inLen; return false }
            fillInput()
        }
    }

    private func startThread() {
        // Unretained: deinit sets `done` and joins the thread before anything is freed.
        let box = Unmanaged.passUnretained(self)
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            Unmanaged<GzipStream>.fromOpaque(arg!)._withUnsafeGuaranteedRef { $0.inflateLoop() }
            return nil
        }, box.toOpaque())
        if rc != 0 { threaded = false; return }
        thread = t
    }

    // Producer loop: fills slots in turn until all data was produced or `done` is set (by deinit or
    // by the consumer reaching the end).
    private func inflateLoop() {
        var w = 0
        while true {
            pthread_mutex_lock(&mutex)
            while filled[w] && !done { pthread_cond_wait(&cond, &mutex) }
            if done { pthread_mutex_unlock(&mutex); return }
            pthread_mutex_unlock(&mutex)
            var iss: [GzipIssue] = []
            let n = produce(slots[w], GzipStream.chunkSize, &iss)
            let compressedEnd = compressedBase + Int64(inPos)
            pthread_mutex_lock(&mutex)
            slotLen[w] = n; slotIssues[w] = iss; slotCompressedEnd[w] = compressedEnd; filled[w] = true
            pthread_cond_broadcast(&cond)
            pthread_mutex_unlock(&mutex)
            if n == 0 && iss.isEmpty { return }  // end of data (the consumer sees n == 0 without issues)
            w = (w + 1) % slots.count
        }
    }

    private var consumerHolds = -1

    /// Returns the next chunk of decompressed bytes (valid until the next call), or nil at the end.
    /// `issuesOut` receives any container problems found while producing it.
    public func nextChunk(issues issuesOut: inout [GzipIssue]) -> UnsafeRawBufferPointer? {
        if !threaded {
            var iss: [GzipIssue] = []
            let n = produce(slots[0], GzipStream.chunkSize, &iss)
            advanceConsumed(to: compressedBase + Int64(inPos))
            issuesOut.append(contentsOf: iss); issues.append(contentsOf: iss)
            return n == 0 && iss.isEmpty ? nil : UnsafeRawBufferPointer(start: slots[0], count: n)
        }
        pthread_mutex_lock(&mutex)
        if consumerHolds >= 0 { filled[consumerHolds] = false; consumerHolds = -1; pthread_cond_broadcast(&cond) }
        while !filled[readIndex] { pthread_cond_wait(&cond, &mutex) }
        let n = slotLen[readIndex]
        let iss = slotIssues[readIndex]
        let compressedEnd = slotCompressedEnd[readIndex]
        let idx = readIndex
        pthread_mutex_unlock(&mutex)
        advanceConsumed(to: compressedEnd)
        if !iss.isEmpty { issuesOut.append(contentsOf: iss); issues.append(contentsOf: iss) }
        // An empty chunk that carries issues (damage right at a chunk start) is not the end.
        if n == 0 && iss.isEmpty {
            pthread_mutex_lock(&mutex); filled[idx] = false; done = true; pthread_cond_broadcast(&cond); pthread_mutex_unlock(&mutex)
            return nil
        }
        consumerHolds = idx
        readIndex = (readIndex + 1) % slots.count
        return UnsafeRawBufferPointer(start: slots[idx], count: n)
    }

    private func advanceConsumed(to offset: Int64) {
        precondition(offset >= consumedCompressedBytes, "the compressed position never goes back")
        consumedCompressedBytes = offset
    }
}
