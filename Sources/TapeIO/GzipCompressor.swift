import CZlib

/// zlib refused to compress (out of memory, or a bad level).
public struct GzipCompressionError: Error, Sendable, CustomStringConvertible {
    public var detail: String
    public var description: String { "gzip: \(detail)" }
}

/// Compresses whole buffers in memory, each into one complete gzip member: HTTP bodies sent with
/// `Content-Encoding: gzip` (the InfluxDB writer). One `z_stream` reused across calls (`deflateReset`),
/// the caller's output array reused too, so a warm compressor allocates nothing. Not thread-safe: one
/// per thread that uses it. Files are written by `GzipWriter`, read by `GzipStream`.
///
/// ```swift
/// let gzip = try GzipCompressor(level: 6)
/// var body: [UInt8] = []
/// try gzip.compress(lines, into: &body)   // body: a gzip member holding `lines`
/// ```
public final class GzipCompressor {
    /// zlib's level, 1 (fastest) to 9 (smallest).
    public let level: Int32
    /// The largest input taken in one call (zlib counts in 32 bits).
    public static let inputBytesMax = Int(Int32.max)
    private var stream = z_stream()

    public init(level: Int32 = 6) throws(GzipCompressionError) {
        precondition((1...9).contains(level), "gzip level is 1...9")
        self.level = level
        // Window bits 15 + 16: a gzip wrapper (header and CRC-32 trailer) around the deflate stream.
        guard tape_deflateInit2(&stream, level, 15 + 16) == Z_OK else {
            throw GzipCompressionError(detail: "deflateInit failed")
        }
    }

    deinit { deflateEnd(&stream) }

    /// Replaces `output`'s contents with `input` as one gzip member (header, deflate data, trailer).
    /// Postcondition: `output` is not empty (an empty input still makes a valid member of about 20 bytes).
    public func compress(_ input: [UInt8], into output: inout [UInt8]) throws(GzipCompressionError) {
        precondition(input.count <= GzipCompressor.inputBytesMax,
                     "gzip input over \(GzipCompressor.inputBytesMax) bytes")
        guard deflateReset(&stream) == Z_OK else { throw GzipCompressionError(detail: "deflateReset failed") }
        // deflateBound counts the gzip wrapper: one Z_FINISH call always ends the member in this room.
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        output.removeAll(keepingCapacity: true)
        output.append(contentsOf: repeatElement(0, count: bound))
        let result: Int32 = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                // zlib only reads through next_in (not const in its header); nil is fine when avail_in is 0.
                stream.next_in = source.baseAddress.map {
                    UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self))
                }
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_out = uInt(target.count)
                let status = deflate(&stream, Z_FINISH)
                stream.next_in = nil
                stream.next_out = nil
                return status
            }
        }
        guard result == Z_STREAM_END else {
            output.removeAll(keepingCapacity: true)
            throw GzipCompressionError(detail: "deflate returned \(result) (expected the end of the member)")
        }
        let produced = Int(stream.total_out)
        assert(produced > 0 && produced <= bound, "a gzip member fits deflateBound")
        output.removeLast(bound - produced)
    }
}
