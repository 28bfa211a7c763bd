import TapeCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a `GzipStream` into lines without copying (except a line that straddles two chunks).
/// Tracks 1-based line numbers and turns container damage into rejects that name file and line:
/// a line cut by truncation or by a corrupt block is rejected, never delivered half.
///
/// A line is at most `maxLineBytes` long: a longer one is rejected (`line_too_long`, with its length)
/// and skipped up to its newline without being buffered, so memory stays flat whatever the input.
/// `peekFirstLine()` lets a format detector look at the first non-empty line and leave it (and the
/// empty lines before it) to the reader: the input is opened and read once, so a pipe works.
public final class LineReader {
    /// The default bound on one line (`--max-line-bytes`): far above any real record.
    public static let defaultMaxLineBytes = 4 << 20
    /// Lines longer than this are rejected and skipped.
    public let maxLineBytes: Int
    public let stream: GzipStream
    /// Name used in messages (the path as the user gave it).
    public let fileName: String
    public private(set) var lineNumber = 0
    public private(set) var bytesRead: Int64 = 0
    /// Compressed bytes behind the lines handed out so far, for progress and ETA: the compressed span of
    /// the current chunk (what zlib consumed to make it, not what was read ahead from the file) taken in
    /// proportion to the chunk's bytes handed out — exact at chunk ends, interpolated inside one.
    public var compressedBytesRead: Int64 {
        guard chunk.count > 0, chunkCompressedEnd > chunkCompressedStart else { return chunkCompressedEnd }
        return chunkCompressedStart + (chunkCompressedEnd - chunkCompressedStart) * Int64(pos) / Int64(chunk.count)
    }
    private var chunkCompressedStart: Int64 = 0
    private var chunkCompressedEnd: Int64 = 0
    /// Set when a `read(2)` failed (`read failed at byte N: <errno text>; the rest of the input was not
    /// read`): reported once as a `read_error` reject, and the input counts as unusable.
    public private(set) var readFailure: String?
    private let rejects: RejectHandler?

    private var chunk = UnsafeRawBufferPointer(start: nil, count: 0)
    private var pos = 0
    private var carry: [UInt8] = []
    private var carryActive = false
    private var chunkEndsDamaged = false
    private var atEnd = false
    private var issues: [GzipIssue] = []
    /// Bytes of an over-long line seen so far while skipping to its newline; -1 when not skipping.
    private var longLineBytes: Int64 = -1
    /// A peeked line handed out again: the line numbers still to replay (empty lines, then the line).
    private var replayUntilLine = 0
    private var peeked = UnsafeRawBufferPointer(start: nil, count: 0)
    private var peekAttempted = false

    public init(stream: GzipStream, fileName: String? = nil, rejects: RejectHandler?,
                maxLineBytes: Int = LineReader.defaultMaxLineBytes) {
        precondition(maxLineBytes > 0, "a line bound is positive")
        self.stream = stream
        self.fileName = fileName ?? stream.path
        self.rejects = rejects
        self.maxLineBytes = maxLineBytes
        carry.reserveCapacity(4096)
    }

    public convenience init(path: String, rejects: RejectHandler?, threaded: Bool = true,
                            maxLineBytes: Int = LineReader.defaultMaxLineBytes) throws {
        self.init(stream: try GzipStream(path: path, threaded: threaded), fileName: path, rejects: rejects,
                  maxLineBytes: maxLineBytes)
    }

    /// The first non-empty line (a leading UTF-8 byte order mark removed), left unread: the next calls
    /// of `next()` return the empty lines before it, then it, with their line numbers. Call it before
    /// the first `next()` only (again before it: the same line); nil when the input has no non-empty line.
    public func peekFirstLine() -> UnsafeRawBufferPointer? {
        // Asked again before reading (format detection, then the reader): the same answer — the line, or
        // nil when the first look found no usable line (which may have consumed rejected lines).
        if peekAttempted { return lineNumber == 0 && replayUntilLine > 0 ? peeked : nil }
        precondition(lineNumber == 0 && replayUntilLine == 0, "peek before reading")
        peekAttempted = true
        while let line = next() {
            if line.count == 0 { continue }
            var first = line
            if first.count >= 3 && first[0] == 0xEF && first[1] == 0xBB && first[2] == 0xBF {
                first = UnsafeRawBufferPointer(rebasing: first[3...])
            }
            peeked = first
            replayUntilLine = lineNumber
            lineNumber = 0
            return first
        }
        return nil
    }

    private func report(_ iss: GzipIssue, partialLine: Bool) {
        let reason: RejectReason
        switch iss.kind {
        case .truncated: reason = .truncatedGzip
        case .corrupt: reason = .corruptGzip
        case .readError: reason = .readError
        }
        let line = lineNumber + 1
        if iss.kind == .readError { readFailure = iss.detail }
        var detail = iss.kind == .readError ? iss.detail : "\(iss.detail) at compressed byte \(iss.compressedOffset)"
        if partialLine { detail += "; the partial line \(line) was dropped" }
        rejects?.reject(Reject(file: fileName, line: line, reason: reason, detail: detail))
        if partialLine { lineNumber += 1 }
    }

    /// Next line without its `\n` (and without a trailing `\r`), valid until the next call; nil at the end.
    @inline(__always)
    public func next() -> UnsafeRawBufferPointer? {
        if _slowPath(replayUntilLine > 0) { return replayPeeked() }
        while true {
            if pos < chunk.count {
                let base = chunk.baseAddress! + pos
                let remaining = chunk.count - pos
                if let nl = memchr(base, 0x0A, remaining) {
                    let len = base.distance(to: UnsafeRawPointer(nl))
                    pos += len + 1
                    lineNumber += 1
                    if _slowPath(longLineBytes >= 0) {
                        rejectLongLine(length: longLineBytes + Int64(len))
                        continue
                    }
                    if carryActive {
                        carryActive = false
                        if _slowPath(carry.count + len > maxLineBytes) {
                            rejectLongLine(length: Int64(carry.count + len))
                            continue
                        }
                        carry.append(contentsOf: UnsafeRawBufferPointer(start: base, count: len))
                        return finishCarry()
                    }
                    if _slowPath(len > maxLineBytes) { rejectLongLine(length: Int64(len)); continue }
                    var l = len
                    if l > 0 && base.load(fromByteOffset: l - 1, as: UInt8.self) == 0x0D { l -= 1 }
                    return UnsafeRawBufferPointer(start: base, count: l)
                }
                // No newline in the rest of this chunk: carry it over (or count it, past the bound).
                if longLineBytes >= 0 {
                    longLineBytes += Int64(remaining)
                } else {
                    if !carryActive { carry.removeAll(keepingCapacity: true); carryActive = true }
                    if carry.count + remaining > maxLineBytes {
                        longLineBytes = Int64(carry.count + remaining)
                        carry.removeAll(keepingCapacity: false)
                        carry.reserveCapacity(4096)
                        carryActive = false
                    } else {
                        carry.append(contentsOf: UnsafeRawBufferPointer(start: base, count: remaining))
                    }
                }
                pos = chunk.count
            }
            // Chunk exhausted.
            if chunkEndsDamaged {
                // The chunk ended at damage: a pending partial line is cut and must not be joined.
                chunkEndsDamaged = false
                let partial = (carryActive && !carry.isEmpty) || longLineBytes >= 0
                carryActive = false
                longLineBytes = -1
                for iss in issues { report(iss, partialLine: partial) }
                issues.removeAll()
            }
            if atEnd { return nil }
            issues.removeAll(keepingCapacity: true)
            guard let c = stream.nextChunk(issues: &issues) else {
                atEnd = true
                chunk = UnsafeRawBufferPointer(start: nil, count: 0)
                chunkCompressedStart = stream.consumedCompressedBytes
                chunkCompressedEnd = stream.consumedCompressedBytes
                if stream.zeroPaddingBytes > 0 {
                    rejects?.skipped("trailing_zero_bytes", count: Int(stream.zeroPaddingBytes))
                }
                if longLineBytes >= 0 {  // the input ends inside an over-long line
                    lineNumber += 1
                    rejectLongLine(length: longLineBytes)
                }
                let partial = carryActive && !carry.isEmpty
                if !issues.isEmpty {
                    for iss in issues { report(iss, partialLine: partial) }
                    issues.removeAll()
                    carryActive = false
                    return nil
                }
                if partial {  // last line without a final newline: a complete line
                    carryActive = false
                    lineNumber += 1
                    return finishCarry()
                }
                return nil
            }
            bytesRead += Int64(c.count)
            chunkCompressedStart = chunkCompressedEnd
            chunkCompressedEnd = stream.consumedCompressedBytes
            chunk = c
            pos = 0
            if !issues.isEmpty { chunkEndsDamaged = true }
        }
    }

    /// Rejects the line just ended (`lineNumber`) for its length; the reader goes on with the next line.
    @inline(never)
    private func rejectLongLine(length: Int64) {
        longLineBytes = -1
        rejects?.reject(Reject(file: fileName, line: lineNumber, reason: .lineTooLong,
                               detail: "line of \(length) bytes is longer than the limit of \(maxLineBytes) "
                                   + "(--max-line-bytes); skipped"))
    }

    @inline(never)
    private func replayPeeked() -> UnsafeRawBufferPointer {
        lineNumber += 1
        if lineNumber < replayUntilLine { return UnsafeRawBufferPointer(start: peeked.baseAddress, count: 0) }
        replayUntilLine = 0
        return peeked
    }

    private func finishCarry() -> UnsafeRawBufferPointer {
        if carry.last == 0x0D { carry.removeLast() }
        return carry.withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count) }
    }
}
