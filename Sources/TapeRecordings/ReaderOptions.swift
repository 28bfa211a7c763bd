import TapeCore
import TapeIO
import TapeSources

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
    /// OHLC(V) bar files: `timestamp,open,high,low,close[,volume]` and the layouts of vendors and
    /// platforms (`BarLayoutDetector`).
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
    /// How far receive time may jump forward within one file before the jump must be confirmed (`time_jump`).
    public var forwardJumpLimit: Nanos = EventValidator.defaultForwardJumpLimit
    /// Sanity bounds of prices and sizes (`out_of_range` above them).
    public var valueBounds = ValueBounds()
    /// The longest line read (`--max-line-bytes`); a longer one is a `line_too_long` reject.
    public var maxLineBytes: Int
    /// Bar files: `--bar-time`, `--bar-length`, `--columns` (what is not given is detected per input).
    public var bars = BarOptions()
    public init(symbols: SymbolTable, rejects: RejectHandler, sourceIndex: UInt32 = 0, symbol: String? = nil,
                venue: String? = nil, backwardsTolerance: Nanos = 1_000_000_000,
                maxLineBytes: Int = LineReader.defaultMaxLineBytes) {
        self.symbols = symbols; self.rejects = rejects; self.sourceIndex = sourceIndex
        self.symbol = symbol; self.venue = venue; self.backwardsTolerance = backwardsTolerance
        self.maxLineBytes = maxLineBytes
    }
}

extension EventValidator {
    public convenience init(file: String, options: ReaderOptions, checkDuplicates: Bool = true) {
        self.init(file: file, rejects: options.rejects, backwardsTolerance: options.backwardsTolerance,
                  forwardJumpLimit: options.forwardJumpLimit, bounds: options.valueBounds,
                  checkDuplicates: checkDuplicates)
    }
}

extension LineReader {
    /// A reader's counters with the byte counts this line reader has consumed so far (progress while
    /// reading: the compressed count reaches the file's size at the end). A failed `read(2)` makes the
    /// input unusable (exit 4): what came before it was delivered, the rest is lost.
    func progress(of counters: SourceStats) -> SourceStats {
        var current = counters
        current.compressedBytes = compressedBytesRead
        current.decompressedBytes = bytesRead
        if current.unusable == nil, let readFailure { current.unusable = "\(fileName): \(readFailure)" }
        return current
    }
}
