import TapeCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a `GzipStream` into lines without copying (except a line that straddles two chunks).
/// Tracks 1-based line numbers and turns container damage into rejects that name file and line:
/// a line cut by truncation or by a corrupt block is rejected, never delivered half.
public final class LineReader {
    public let stream: GzipStream
    /// Name used in messages (the path as the user gave it).
    public let fileName: String
    public private(set) var lineNumber = 0
    public private(set) var bytesRead: Int64 = 0
    /// Compressed bytes behind the lines handed out so far (per chunk: progress, not an exact offset).
    public private(set) var compressedBytesRead: Int64 = 0
    private let rejects: RejectHandler?

    private var chunk = UnsafeRawBufferPointer(start: nil, count: 0)
    private var pos = 0
    private var carry: [UInt8] = []
    private var carryActive = false
    private var chunkEndsDamaged = false
    private var atEnd = false
    private var issues: [GzipIssue] = []

    public init(stream: GzipStream, fileName: String? = nil, rejects: RejectHandler?) {
        self.stream = stream
        self.fileName = fileName ?? stream.path
        self.rejects = rejects
        carry.reserveCapacity(4096)
    }

    public convenience init(path: String, rejects: RejectHandler?, threaded: Bool = true) throws {
        self.init(stream: try GzipStream(path: path, threaded: threaded), fileName: path, rejects: rejects)
    }

    private func report(_ iss: GzipIssue, partialLine: Bool) {
        let reason: RejectReason = iss.kind == .truncated ? .truncatedGzip : .corruptGzip
        let line = lineNumber + 1
        var detail = "\(iss.detail) at compressed byte \(iss.compressedOffset)"
        if partialLine { detail += "; the partial line \(line) was dropped" }
        rejects?.reject(Reject(file: fileName, line: line, reason: reason, detail: detail))
        if partialLine { lineNumber += 1 }
    }

    /// Next line without its `\n` (and without a trailing `\r`), valid until the next call; nil at the end.
    @inline(__always)
    public func next() -> UnsafeRawBufferPointer? {
        while true {
            if pos < chunk.count {
                let base = chunk.baseAddress! + pos
                let remaining = chunk.count - pos
                if let nl = memchr(base, 0x0A, remaining) {
                    let len = base.distance(to: UnsafeRawPointer(nl))
                    pos += len + 1
                    lineNumber += 1
                    if carryActive {
                        carry.append(contentsOf: UnsafeRawBufferPointer(start: base, count: len))
                        carryActive = false
                        return finishCarry()
                    }
                    var l = len
                    if l > 0 && base.load(fromByteOffset: l - 1, as: UInt8.self) == 0x0D { l -= 1 }
                    return UnsafeRawBufferPointer(start: base, count: l)
                }
                // No newline in the rest of this chunk: carry it over.
                if !carryActive { carry.removeAll(keepingCapacity: true); carryActive = true }
                carry.append(contentsOf: UnsafeRawBufferPointer(start: base, count: remaining))
                pos = chunk.count
            }
            // Chunk exhausted.
            if chunkEndsDamaged {
                // The chunk ended at damage: a pending partial line is cut and must not be joined.
                chunkEndsDamaged = false
                let partial = carryActive && !carry.isEmpty
                carryActive = false
                for iss in issues { report(iss, partialLine: partial) }
                issues.removeAll()
            }
            if atEnd { return nil }
            issues.removeAll(keepingCapacity: true)
            guard let c = stream.nextChunk(issues: &issues) else {
                atEnd = true
                compressedBytesRead = stream.consumedCompressedBytes
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
            compressedBytesRead = stream.consumedCompressedBytes
            chunk = c
            pos = 0
            if !issues.isEmpty { chunkEndsDamaged = true }
        }
    }

    private func finishCarry() -> UnsafeRawBufferPointer {
        if carry.last == 0x0D { carry.removeLast() }
        return carry.withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count) }
    }
}
