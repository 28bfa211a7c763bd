import TapeCore
import TapeGraph
import TapeIO

/// The ticks of a run, bounded for display: per symbol, time buckets of the delivered trades and
/// quotes (trade count, volume, first/low/high/last price; quote count, bid and ask extremes and last,
/// spread extremes), written as `tick_series.csv` into the run folder when the run ends. The report
/// draws its tick view from it (docs/reports.md); docs/formats.md has the columns.
///
/// Bounded memory: a symbol holds at most `bucketsPerSymbolMax` buckets, all of one width
/// (`widthStartNanos` × 2^k). A tick that would open one bucket too many first doubles the width and
/// merges the buckets that fall into one slot of the doubled width (repeated until there is room). The
/// width therefore depends only on the stream (the ticks' receive times), never on wall time or batch
/// sizes: the file is the same, bit for bit, for the same input. At most `symbolsMax` symbols are kept
/// (in order of their first tick); the ticks of any further symbol are counted in `symbolsDropped`.
///
/// Buckets are keyed by receive time — the order the engine delivers in (for files without a receive
/// time it is the event time) — so they only grow at the end; a tick stamped before the last bucket
/// (possible only across merged inputs that tolerate going backwards) is added to the last bucket.
///
/// A display aid, not an output of the graph: it is not in the digest, and a run continued from a
/// checkpoint has the ticks of its own part only.
///
/// Hot path: `record` allocates nothing once a symbol's bucket array has grown to its bound (it grows
/// by doubling up to `bucketsPerSymbolMax`, `reserveCapacity` at a symbol's first tick). Not thread-safe:
/// the engine thread records and closes.
public final class TickSeriesSink: EventSink {
    public static let fileName = "tick_series.csv"
    /// The file's columns (the one schema: the report finds each by name).
    public static let header = "symbol,start_ns,width_ns,trades,volume,price_first,price_low,price_high,price_last,"
        + "quotes,bid_low,bid_high,bid_last,ask_low,ask_high,ask_last,spread_low,spread_high"
    public static let bucketsPerSymbolMax = 1024
    public static let symbolsMax = 256
    /// Width of the first buckets: 1 ms (a 5-minute capture ends at 512 ms buckets).
    public static let widthStartNanos: Int64 = 1_000_000

    /// One bucket: [start, start + width) of receive time. NaN where the bucket had no trade / quote.
    struct Bucket {
        var start: Int64
        var trades = 0
        var volume = 0.0
        var priceFirst = Double.nan, priceLow = Double.infinity, priceHigh = -Double.infinity, priceLast = Double.nan
        var quotes = 0
        var bidLow = Double.infinity, bidHigh = -Double.infinity, bidLast = Double.nan
        var askLow = Double.infinity, askHigh = -Double.infinity, askLast = Double.nan
        var spreadLow = Double.infinity, spreadHigh = -Double.infinity

        init(start: Int64) { self.start = start }

        mutating func addTrade(price: Double, size: Double) {
            if trades == 0 { priceFirst = price }
            trades += 1
            if size.isFinite { volume += size }
            if price < priceLow { priceLow = price }
            if price > priceHigh { priceHigh = price }
            priceLast = price
        }

        mutating func addQuote(bid: Double, ask: Double) {
            quotes += 1
            if bid.isFinite {
                if bid < bidLow { bidLow = bid }
                if bid > bidHigh { bidHigh = bid }
                bidLast = bid
            }
            if ask.isFinite {
                if ask < askLow { askLow = ask }
                if ask > askHigh { askHigh = ask }
                askLast = ask
            }
            if bid.isFinite && ask.isFinite {
                let spread = ask - bid
                if spread < spreadLow { spreadLow = spread }
                if spread > spreadHigh { spreadHigh = spread }
            }
        }

        /// Folds `later` (the next bucket in time) into this one.
        mutating func merge(_ later: Bucket) {
            if later.trades > 0 {
                if trades == 0 { priceFirst = later.priceFirst }
                trades += later.trades
                volume += later.volume
                priceLow = min(priceLow, later.priceLow)
                priceHigh = max(priceHigh, later.priceHigh)
                priceLast = later.priceLast
            }
            if later.quotes > 0 {
                quotes += later.quotes
                bidLow = min(bidLow, later.bidLow)
                bidHigh = max(bidHigh, later.bidHigh)
                if !later.bidLast.isNaN { bidLast = later.bidLast }
                askLow = min(askLow, later.askLow)
                askHigh = max(askHigh, later.askHigh)
                if !later.askLast.isNaN { askLast = later.askLast }
                spreadLow = min(spreadLow, later.spreadLow)
                spreadHigh = max(spreadHigh, later.spreadHigh)
            }
        }
    }

    /// The buckets of one symbol, in time order, all `width` wide and aligned to multiples of it.
    struct Series {
        var width: Int64 = TickSeriesSink.widthStartNanos
        var buckets: [Bucket] = []
        /// End of the last bucket (`Int64.min`: none): a tick before it goes into the last bucket without
        /// a division.
        var lastEnd = Int64.min
        /// Whether the symbol is collected (its slot is in use).
        var collected = false
        /// Most decimal places of a trade size: the volume column is rounded to it (no float noise).
        var volumeDecimals = 0

        /// Doubles the width and merges the buckets that share a slot, until there is room for one more.
        mutating func makeRoom() {
            while buckets.count >= TickSeriesSink.bucketsPerSymbolMax {
                width *= 2
                var kept = 0
                for index in buckets.indices {
                    let start = TickSeriesSink.floorTo(buckets[index].start, width)
                    if kept > 0 && buckets[kept - 1].start == start {
                        buckets[kept - 1].merge(buckets[index])
                    } else {
                        buckets[kept] = buckets[index]
                        buckets[kept].start = start
                        kept += 1
                    }
                }
                buckets.removeLast(buckets.count - kept)  // keeps the capacity
                lastEnd = buckets[kept - 1].start + width
            }
            assert(buckets.count < TickSeriesSink.bucketsPerSymbolMax)
        }
    }

    public let directory: String
    private let symbols: SymbolTable
    /// Indexed by symbol id (an unused slot holds an empty `Series`, which allocates nothing). Memory of
    /// its own, grown by doubling: `record` mutates a slot in place without an exclusivity check per tick.
    private var series = UnsafeMutableBufferPointer<Series>(start: nil, count: 0)
    private var seriesCount = 0
    /// Ticks of symbols beyond `symbolsMax` (not collected).
    public private(set) var symbolsDropped = 0
    private var writeFailure: (any Error)? = nil
    private var closed = false

    public init(directory: String, symbols: SymbolTable) {
        self.directory = directory
        self.symbols = symbols
    }

    deinit {
        if let base = series.baseAddress {
            base.deinitialize(count: series.count)
            base.deallocate()
        }
    }

    /// Room for symbol ids up to `id` (rare: once per new highest symbol id, doubling).
    private func grow(toHold id: Int) {
        let capacity = max(id + 1, series.count * 2, 16)
        let grown = UnsafeMutableBufferPointer<Series>.allocate(capacity: capacity)
        if let base = series.baseAddress {
            _ = grown.moveInitialize(fromContentsOf: series)
            base.deallocate()
        }
        (grown.baseAddress! + series.count).initialize(repeating: Series(), count: capacity - series.count)
        series = grown
    }

    public var name: String { "tick-series" }
    public var failure: (any Error)? { writeFailure }

    public func emit(_ output: GraphOutput) {}

    public func record(_ event: MarketEvent) {
        guard event.kind == .trade || event.kind == .quote else { return }
        let id = Int(event.symbol)
        if id >= series.count { grow(toHold: id) }
        let slot = series.baseAddress! + id
        if !slot.pointee.collected {
            guard seriesCount < Self.symbolsMax else {
                symbolsDropped += 1
                return
            }
            slot.pointee.buckets.reserveCapacity(64)
            slot.pointee.collected = true
            seriesCount += 1
        }
        slot.pointee.add(event)  // in place: no copy of the bucket array
    }

    public func flush() throws { if let writeFailure { throw writeFailure } }

    /// Writes `tick_series.csv` (only when some symbol had ticks: a bar-file run has none); idempotent.
    public func close() throws {
        if closed {
            if let writeFailure { throw writeFailure }
            return
        }
        closed = true
        guard seriesCount > 0 else { return }
        do {
            let file = try BufferedFile(path: directory + "/" + Self.fileName)
            file.writeLine(Self.header)
            var line: [UInt8] = []
            line.reserveCapacity(256)
            for id in orderedSymbolIDs() {
                let one = series[id]
                let name = Array(symbols.name(SymbolID(id)).utf8)
                let priceDecimals = one.quotePriceDecimals()
                for bucket in one.buckets {
                    line.removeAll(keepingCapacity: true)
                    Self.appendRow(bucket, symbol: name, width: one.width, volumeDecimals: one.volumeDecimals,
                                   priceDecimals: priceDecimals, to: &line)
                    line.withUnsafeBytes { file.write(bytes: $0) }
                }
            }
            try file.close()
        } catch {
            writeFailure = error
            throw error
        }
    }

    /// The collected symbol ids, ordered by symbol name (the file's order).
    private func orderedSymbolIDs() -> [Int] {
        series.indices.filter { series[$0].collected }.sorted { symbols.name(SymbolID($0)) < symbols.name(SymbolID($1)) }
    }

    /// One row of the file. Volume and spreads are printed without float noise: the volume rounded to the
    /// trade sizes' decimal places, the spreads (ask − bid) to the quote prices'.
    static func appendRow(_ bucket: Bucket, symbol: [UInt8], width: Int64, volumeDecimals: Int, priceDecimals: Int,
                          to line: inout [UInt8]) {
        let comma = UInt8(ascii: ",")
        func number(_ value: Double) {
            line.append(comma)
            if value.isFinite { Numbers.append(value, to: &line) }
        }
        line += symbol
        line.append(comma)
        Numbers.append(bucket.start, to: &line)
        line.append(comma)
        Numbers.append(width, to: &line)
        line.append(comma)
        Numbers.append(Int64(bucket.trades), to: &line)
        number(bucket.trades > 0 ? Numbers.rounded(bucket.volume, decimalPlaces: volumeDecimals) : .nan)
        number(bucket.priceFirst)
        number(bucket.priceLow)
        number(bucket.priceHigh)
        number(bucket.priceLast)
        line.append(comma)
        Numbers.append(Int64(bucket.quotes), to: &line)
        for value in [bucket.bidLow, bucket.bidHigh, bucket.bidLast, bucket.askLow, bucket.askHigh, bucket.askLast] {
            number(value)
        }
        number(Numbers.rounded(bucket.spreadLow, decimalPlaces: priceDecimals))
        number(Numbers.rounded(bucket.spreadHigh, decimalPlaces: priceDecimals))
        line.append(UInt8(ascii: "\n"))
    }
}

extension TickSeriesSink.Series {
    /// Most decimal places of a bid or ask kept in the buckets (the extremes and the last ones: every
    /// spread is the difference of two such prices, up to the ones between them).
    func quotePriceDecimals() -> Int {
        var places = 0
        for bucket in buckets where bucket.quotes > 0 {
            for value in [bucket.bidLow, bucket.bidHigh, bucket.bidLast, bucket.askLow, bucket.askHigh, bucket.askLast]
            where value.isFinite {
                places = max(places, Numbers.decimalPlaces(value))
            }
        }
        return places
    }

    @inline(__always)
    mutating func add(_ event: MarketEvent) {
        // The same bucket as the last tick (or stamped before it: into the last bucket), else a new one.
        if event.receiveTime >= lastEnd {
            if buckets.count >= TickSeriesSink.bucketsPerSymbolMax { makeRoom() }  // doubles the width
            if event.receiveTime >= lastEnd {
                let start = TickSeriesSink.floorTo(event.receiveTime, width)
                assert(buckets.last.map { start > $0.start } ?? true, "a later bucket")
                buckets.append(TickSeriesSink.Bucket(start: start))
                lastEnd = start + width
            }
        }
        let index = buckets.count - 1
        if event.kind == .trade {
            buckets[index].addTrade(price: event.price, size: event.size)
            if event.size.isFinite {
                let places = Numbers.decimalPlaces(event.size)
                if places > volumeDecimals { volumeDecimals = places }
            }
        } else {
            buckets[index].addQuote(bid: event.bid, ask: event.ask)
        }
    }
}

extension TickSeriesSink {
    /// `time` rounded down to a multiple of `step` (also for negative times).
    @inline(__always)
    static func floorTo(_ time: Int64, _ step: Int64) -> Int64 {
        let remainder = time % step
        return remainder < 0 ? time - remainder - step : time - remainder
    }
}
