import Foundation
import TapeCore
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
    /// Housekeeping on the engine thread (see the extension below); default nothing.
    func poll()
    /// When this sink wants `poll()` called at the latest (CLOCK_MONOTONIC ns), e.g. when a partial batch
    /// reaches its time limit; nil: no wish. A live driver that waits for input wakes by then. Default nil.
    var pollDue: Int64? { get }
}

/// An output that could not be written (a sink's failure): the run stops and `tape` exits with
/// `TapeExit.outputFailed` (5), the message naming the sink and the file.
public struct OutputFailed: Error, CustomStringConvertible {
    /// The sink's `name` (`run-folder`, `rejects`, `summary`, ...).
    public let sink: String
    public let underlying: any Error
    public init(sink: String, underlying: any Error) {
        self.sink = sink
        self.underlying = underlying
    }
    public var description: String { "output failed (\(sink)): \(underlying)" }

    /// Throws `OutputFailed` for the first sink that has failed, in the order given.
    public static func check(_ sinks: [any EngineSink]) throws {
        for sink in sinks {
            if let failure = sink.failure { throw OutputFailed(sink: sink.name, underlying: failure) }
        }
    }

    /// Closes every sink (all of them, even after one fails, so each releases its files) and throws
    /// `OutputFailed` for the first that failed.
    public static func closeAll(_ sinks: [any EngineSink]) throws {
        var first: OutputFailed? = nil
        for sink in sinks {
            do { try sink.close() } catch {
                if first == nil { first = OutputFailed(sink: sink.name, underlying: error) }
            }
        }
        if let first { throw first }
    }
}

/// An `EngineSink` that also sees every market event the engine delivers to the graph (the ticks the
/// stores keep), on the engine thread, in delivery order, just before the graph sees it. Filtered events are
/// not recorded; clock ticks go to `recordClockTick`.
///
/// Implementations batch on the engine thread and hand full batches to their own I/O thread (see
/// `TapeStore`); `record` must not block on the network and must not allocate per event once warm.
public protocol EventSink: EngineSink {
    func record(_ event: MarketEvent)
    /// A clock tick the engine applied (stream time `time`): a sink that forwards the stream (`tape
    /// ingest` to Kafka) passes it on so that downstream graphs fire their timers at the same point.
    /// Default: nothing (stores keep ticks of market data only).
    func recordClockTick(at time: Nanos)
}

extension EventSink {
    public func recordClockTick(at time: Nanos) {}
}

extension EngineSink {
    /// Called by the engine on its thread every `checkInterval` items and whenever the source is idle
    /// (live), before it reads `failure`. A batching sink hands over a partial batch that has waited
    /// longer than its time limit here. Default: nothing.
    public func poll() {}
    public var pollDue: Int64? { nil }
}

/// A sink with a section in summary.json (`stores.<name>`): the stores' counters. After summary.json is
/// written, `runFinished` gets it (PostgreSQL keeps it in `tape_runs.summary`).
public protocol ReportingSink: EngineSink {
    var report: JSONValue { get }
    func runFinished(summaryJSON: String)
}

extension ReportingSink {
    public func runFinished(summaryJSON: String) {}
}

/// What a sink built for one run knows about it (`ReplayOptions.sinkFactories`).
public struct RunContext {
    /// The run folder.
    public let directory: String
    /// Unique per run (rows in the stores carry it); summary.json `run_id`.
    public let runID: String
    /// `replay` or `live`.
    public let kind: String
    /// The engine's symbol table: read it on the engine thread only.
    public let symbols: SymbolTable
    /// sha256 of the canonical graph config.
    public let configHash: String
    /// The input paths (replay, warm-up) and feeds (live), in order.
    public let inputs: [String]
    public let printer: @Sendable (String) -> Void
    public init(directory: String, runID: String, kind: String, symbols: SymbolTable, configHash: String,
                inputs: [String], printer: @escaping @Sendable (String) -> Void) {
        self.directory = directory; self.runID = runID; self.kind = kind; self.symbols = symbols
        self.configHash = configHash; self.inputs = inputs; self.printer = printer
    }
}

extension JSONValue {
    /// Any Encodable value as a JSON value (for the summary's free-form sections).
    public init<Value: Encodable>(encoding value: Value) throws {
        let data = try JSONEncoder().encode(value)
        self = try JSONDecoder().decode(JSONValue.self, from: data)
    }
}
