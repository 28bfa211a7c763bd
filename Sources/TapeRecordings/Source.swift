import TapeCore

/// The formats Tape reads. Detected from content (`FormatDetector`); `--format` overrides.
public enum RecordingFormat: String, Sendable, CaseIterable {
    /// `<receive ns> <raw wire message>` per line, as a live collector writes it (Binance today).
    case rawCapture = "raw"
    /// Tape's own tick CSV (see README).
    case tickCSV = "tick-csv"
    /// Polygon/Massive flat files: stocks trades, stocks quotes, minute aggregates.
    case polygonTrades = "polygon-trades"
    case polygonQuotes = "polygon-quotes"
    case polygonMinuteAggs = "polygon-minute-aggs"
    /// tardis.dev `trades` CSV (µs timestamps).
    case tardisTrades = "tardis-trades"
    /// 1-minute OHLC(V) bars: `timestamp,open,high,low,close[,volume]`.
    case bars = "bars"
}

/// What a reader needs besides the file.
public struct ReaderOptions {
    /// Interning table for symbols, exchanges and conditions (one per run).
    public var symbols: SymbolTable
    /// Where rejects and skips go.
    public var rejects: RejectHandler
    /// Index of this input in command-line order: the merge tie-break after receive time.
    public var sourceIndex: UInt32
    /// Instrument name for files that do not carry one (bar files, Polygon minute aggs of one ticker...).
    public var symbol: String?
    /// Venue prefix for symbols (`spot:BTCUSDT`). nil: inferred where the file name tells (Binance
    /// captures `spot-…`, `usdm-…`, `cm-…`), otherwise none.
    public var venue: String?
    /// How far receive time may go back within one file before a record is rejected (`time_backwards`).
    public var backwardsTolerance: Nanos
    public init(symbols: SymbolTable, rejects: RejectHandler, sourceIndex: UInt32 = 0, symbol: String? = nil,
                venue: String? = nil, backwardsTolerance: Nanos = 1_000_000_000) {
        self.symbols = symbols; self.rejects = rejects; self.sourceIndex = sourceIndex
        self.symbol = symbol; self.venue = venue; self.backwardsTolerance = backwardsTolerance
    }
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
    public init() {}
}

/// A stream of events from one input, in file (line) order. Pull-based: the merge asks each source
/// for its next event. Readers are final classes; implementations validate every record before
/// handing it out (rejects go to `ReaderOptions.rejects` with file and line).
public protocol EventSource: AnyObject {
    /// The input's name as the user gave it (used in messages).
    var name: String { get }
    var format: RecordingFormat { get }
    /// Fills `event` with the next valid event; false at the end of the input.
    func next(_ event: inout MarketEvent) -> Bool
    var stats: SourceStats { get }
}
