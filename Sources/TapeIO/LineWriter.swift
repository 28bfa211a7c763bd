import TapeCore

/// A line-oriented output (plain file, gzip file). Writes cannot fail on the spot: the first failure is
/// kept (`failure`) and thrown by `flush()` and `close()`.
public protocol LineWriter: AnyObject {
    func writeLine(_ s: String)
    /// The first write failure, if any.
    var failure: (any Error)? { get }
    func flush() throws
    /// Flushes, makes durable and closes; idempotent. Throws the first failure.
    func close() throws
}

extension BufferedFile: LineWriter {
    public var failure: (any Error)? { writeError }
}

/// A `LineWriter` over a gzip file (the reject log's `rejects.csv.gz`).
public final class GzipLineWriter: LineWriter {
    private let writer: GzipWriter
    public init(path: String) throws { writer = try GzipWriter(path: path) }
    public func writeLine(_ s: String) { writer.writeLine(s) }
    public var failure: (any Error)? { writer.writeError }
    /// Ends the gzip member (readable after `kill -9`).
    public func flush() throws { try writer.flush() }
    public func close() throws { try writer.close() }
}
