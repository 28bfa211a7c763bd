import TapeCore

/// What one pull from an `EventSource` gave.
public enum SourceStep: UInt8, Sendable {
    /// `event` holds the next item: a market event or a clock tick (`EventKind.clockTick`).
    case event
    /// Nothing yet: a live source or a consumer with no message ready. Ask again later; the stream is
    /// not over. File sources never return this.
    case idle
    /// The stream is over; every later call returns `.end` too.
    case end
}

/// Counters every source keeps.
public struct SourceStats: Sendable {
    public var lines = 0
    public var events = 0
    public var rejected = 0
    public var skipped = 0
    /// Input consumed so far, decompressed and compressed: updated per chunk while the source reads
    /// (the progress line's percent and ETA); at the end, the compressed count is the file's size.
    public var decompressedBytes: Int64 = 0
    public var compressedBytes: Int64 = 0
    /// Why nothing can be read from this input (its format does not fit, e.g. a CSV header refused):
    /// the run reports it and ends with exit 4 (`TapeExit.unusableInput`). nil for a usable input.
    public var unusable: String? = nil
    public init() {}
}

/// A stream of stamped events from one input, in its own order (file line order, or arrival order for
/// a live feed). Pull-based: the engine (or the merge) asks for the next item.
///
/// Contract: implementations validate every record before handing it out (rejects go to the run's
/// `RejectHandler` naming file and line, or the peer); receive times are already stamped; clock ticks
/// travel in the same stream as `EventKind.clockTick` items, so that timers fire at the same stream
/// position live and in the replay of a recording.
///
///     var event = MarketEvent()
///     while source.next(&event) == .event { engine.process(event) }
public protocol EventSource: AnyObject {
    /// The input's name as the user gave it (used in messages).
    var name: String { get }
    /// What kind of input this is (`raw`, `tick-csv`, `live:binance`, ...), for the summary.
    var formatName: String { get }
    /// Fills `event` with the next item (`.event`), or says that nothing is ready yet (`.idle`) or that
    /// the stream is over (`.end`). `event` is left unspecified unless `.event` is returned.
    func next(_ event: inout MarketEvent) -> SourceStep
    var stats: SourceStats { get }
    /// What the reader decided about the input's layout where the format leaves choices (bar files:
    /// columns, separator, time format, bar time and length); nil for fixed formats.
    var layout: InputLayout? { get }
}

extension EventSource {
    public var layout: InputLayout? { nil }
}

/// A reader's decisions about its input's layout, stated once per input: in summary.json
/// (`inputs[].layout`) and on stderr (`text`).
public struct InputLayout: Sendable, Equatable {
    /// The decisions as a JSON object (summary.json).
    public var summary: JSONValue
    /// The same in one line (stderr).
    public var text: String
    /// Bar files: the length of one input bar (ns), for the driver to compare with the graph's timeframes.
    public var barLengthNanos: Nanos?
    public init(summary: JSONValue, text: String, barLengthNanos: Nanos? = nil) {
        self.summary = summary
        self.text = text
        self.barLengthNanos = barLengthNanos
    }
}
