import TapeCore
import TapeIO
import TapeSources
#if canImport(Glibc)
import Glibc
#endif

/// Writes events as Tape tick CSV (header `TickRowDecoder.header`), numbers in shortest round-trip
/// form, so that reading the file back gives the same events (trades and quotes; bars are not ticks
/// and are refused).
public enum TickCSV {
    public static func row(_ e: MarketEvent, symbols: SymbolTable) -> String? {
        let f = Numbers.format
        let exch = e.exchange == 0 ? "" : CSV.field(symbols.name(e.exchange))
        let cond = e.conditions == 0 ? "" : CSV.field(symbols.name(e.conditions))
        switch e.kind {
        case .trade:
            return "\(e.eventTime),\(e.receiveTime),\(CSV.field(symbols.name(e.symbol))),trade,\(f(e.price)),\(f(e.size)),,,,,\(exch),\(cond),\(e.sequence)"
        case .quote:
            return "\(e.eventTime),\(e.receiveTime),\(CSV.field(symbols.name(e.symbol))),quote,,,\(f(e.bid)),\(f(e.bidSize)),\(f(e.ask)),\(f(e.askSize)),\(exch),\(cond),\(e.sequence)"
        case .clockTick:
            return "\(e.eventTime),\(e.receiveTime),,tick,,,,,,,,,\(e.sequence)"
        case .bar: return nil
        }
    }
}

/// Records events into rotating Tape tick CSV files (`<prefix>-YYYYMMDD-HH[-N].csv.gz`): a new file
/// when the current one reaches `maxBytes` (compressed) and, with `rotateHourly`, when the UTC hour of
/// the receive time changes. Every `flushEvery` events the current gzip member is closed and the file
/// `fsync`ed, so a `kill -9` or a power loss loses at most the events since the last flush; every
/// earlier row stays readable. A write error (full disk) is thrown by `write`, `flush` or `close`.
/// The same writer serves `tape record --from-replay` now and live recording later.
public final class RecordingWriter {
    public let directory: String
    public let prefix: String
    public let maxBytes: Int64
    public let rotateHourly: Bool
    public let flushEvery: Int
    private let symbols: SymbolTable
    private var current: GzipWriter?
    private var currentHour: Int64 = .min
    private var sinceFlush = 0
    public private(set) var files: [String] = []
    public private(set) var eventsWritten = 0
    public private(set) var barsRefused = 0

    public init(directory: String, prefix: String, symbols: SymbolTable, maxBytes: Int64 = 256 << 20,
                rotateHourly: Bool = true, flushEvery: Int = 10_000) {
        self.directory = directory; self.prefix = prefix; self.symbols = symbols
        self.maxBytes = maxBytes; self.rotateHourly = rotateHourly; self.flushEvery = max(1, flushEvery)
    }

    private func fileName(hour: Int64) -> String {
        let secs = hour * 3600
        let (y, m, d) = TimeUtil.civilFromDays(Int(secs / 86400))
        let h = Int(secs % 86400 / 3600)
        func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let base = "\(directory)/\(prefix)-\(y)\(p2(m))\(p2(d))-\(p2(h))"
        var name = base + ".csv.gz"
        var n = 1
        while files.contains(name) || access(name, F_OK) == 0 { name = "\(base)-\(n).csv.gz"; n += 1 }
        return name
    }

    private func open(hour: Int64) throws {
        try current?.close()
        let name = fileName(hour: hour)
        let w = try GzipWriter(path: name)
        w.writeLine(TickRowDecoder.header)
        current = w
        currentHour = hour
        files.append(name)
    }

    public func write(_ e: MarketEvent) throws {
        guard let row = TickCSV.row(e, symbols: symbols) else { barsRefused += 1; return }
        let hour = e.receiveTime >= 0 ? e.receiveTime / 3_600_000_000_000 : (e.receiveTime + 1) / 3_600_000_000_000 - 1
        if current == nil || (rotateHourly && hour != currentHour) || current!.bytesWritten >= maxBytes {
            try open(hour: rotateHourly || current == nil ? hour : currentHour)
            if !rotateHourly { currentHour = hour }
        }
        current!.writeLine(row)
        eventsWritten += 1
        sinceFlush += 1
        if sinceFlush >= flushEvery { try current!.sync(); sinceFlush = 0 }
    }

    /// Ends the current gzip member and `fsync`s it now (live recording calls this on a timer).
    public func flush() throws { try current?.sync(); sinceFlush = 0 }

    public func close() throws { try current?.close(); current = nil }
}
