import TapeGraph

/// A sink the engine owns: sees every output, may do I/O, and reports failure instead of hiding it.
public protocol EngineSink: GraphSink {
    /// Short name for messages and the summary (`run-folder`, `digest`, `postgres`, ...).
    var name: String { get }
    /// The first error since the start, if any. The engine checks it every few thousand events and
    /// at the end, stops the run and reports it (never a silent short file).
    var failure: (any Error)? { get }
    /// Writes everything buffered; returns when it is durable as documented (acknowledged). Throws the failure.
    func flush() throws
    /// Flushes and releases; idempotent. Throws the failure.
    func close() throws
}
