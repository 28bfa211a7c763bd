import TapeCore
import TapeIO
import TapeFeeds

/// Where a raw capture comes from, told by its messages when neither `--venue`, its header nor its file
/// name says: two captures of one symbol from different markets (Binance spot and USDⓈ-M futures both
/// call Bitcoin `BTCUSDT`) must not be merged into one symbol because their files are called `a.gz` and
/// `b.gz`.
///
/// Read from the first `sampleLines` lines of the file (a separate pass before the run; a pipe or
/// standard input is not read twice and is never sniffed):
/// - Binance: futures messages carry fields spot messages lack — a futures trade has `"X"` (trade type),
///   a futures book ticker has `"E"`/`"T"` (event/transaction time), a futures depth diff has `"pu"`.
///   Futures symbols with an underscore (`BTCUSD_PERP`) are COIN-M (`cm`), others USDⓈ-M (`usdm`); no
///   futures field on a trade, ticker or depth message → `spot`.
/// - Other wire protocols (a capture header names them): the protocol (`polygon`, `finage`…).
public struct CaptureOrigin: Equatable, Sendable {
    /// The venue prefix the file would get if it had to be kept apart (`spot`, `usdm`, `cm`, `polygon`…);
    /// nil when the sample cannot tell.
    public var key: String?
    /// For messages: "Binance spot", "Binance USDⓈ-M futures".
    public var description: String
    /// Symbols seen in the sample, as the run would name them without a venue.
    public var symbols: Set<String>
}

public enum CaptureOrigins {
    /// Lines read from each file's start.
    public static let sampleLines = 5_000

    /// The per-input venue (nil: as the reader decides from `--venue`, header or file name) and the
    /// warnings to print. Inputs whose venue is already told (by `venue`, a capture header with a venue
    /// or a `spot-`/`usdm-`/`cm-` file name) are left alone; of the others, files that carry a common
    /// symbol but come from different origins each get their origin as venue, so the symbols stay apart.
    /// Throws `UnusableInputError` when such a file's origin cannot be told from its sample (keeping
    /// them apart or merging them would both be a guess).
    public static func separate(paths: [String], format: RecordingFormat?, venue: String?)
        throws -> (venues: [String?], warnings: [String]) {
        var venues = [String?](repeating: nil, count: paths.count)
        guard venue == nil, paths.count > 1, format == nil || format == .rawCapture else { return (venues, []) }
        var origins: [Int: CaptureOrigin] = [:]
        for (i, path) in paths.enumerated() {
            if let origin = sniff(path: path) { origins[i] = origin }
        }
        // Files sharing a symbol, grouped: union of every pair with a common symbol.
        let indices = origins.keys.sorted()
        var group = Dictionary(uniqueKeysWithValues: indices.map { ($0, $0) })
        func root(_ i: Int) -> Int { var r = i; while group[r]! != r { r = group[r]! }; return r }
        for (n, a) in indices.enumerated() {
            for b in indices[(n + 1)...] where !origins[a]!.symbols.isDisjoint(with: origins[b]!.symbols) {
                group[root(b)] = root(a)
            }
        }
        var warnings: [String] = []
        for r in Set(indices.map(root)).sorted() {
            let members = indices.filter { root($0) == r }
            let keys = Set(members.map { origins[$0]!.key })
            guard keys.count > 1 else { continue }   // one origin (or all unknown): the same symbol, merged
            var counts: [String: Int] = [:]
            for m in members { for s in origins[m]!.symbols { counts[s, default: 0] += 1 } }
            let shared = counts.filter { $0.value > 1 }.keys.sorted()
            let named = shared.prefix(3).joined(separator: ", ")
            let told = members.map { "\(paths[$0]): \(origins[$0]!.description)" }.joined(separator: "; ")
            if let unknown = members.first(where: { origins[$0]!.key == nil }) {
                throw UnusableInputError("\(paths[unknown]) carries \(named) like other inputs from a different "
                    + "market, and its first \(sampleLines) lines do not tell its market (\(told)): name the files "
                    + "by market (spot-…, usdm-…, cm-…), give each its own run, or give --venue")
            }
            for m in members { venues[m] = origins[m]!.key }
            let names = Set(members.map { "\(origins[$0]!.key!):\(shared[0])" }).sorted()
            warnings.append("inputs carry \(named) from different markets, told by their messages (\(told)): kept "
                + "apart as \(names.joined(separator: ", ")) — name the files by market (spot-…, usdm-…, cm-…) "
                + "or give --venue to choose the names")
        }
        return (venues, warnings)
    }

    /// The origin of the capture at `path`, nil when its venue is already told (header, file name) or
    /// it is not a raw capture file that can be read twice.
    public static func sniff(path: String) -> CaptureOrigin? {
        guard path != GzipStream.standardInputPath, FS.isRegularFile(path),
              let lines = try? LineReader(path: path, rejects: nil, threaded: false),
              let first = lines.peekFirstLine(),
              FormatDetector.detect(firstLine: String(decoding: first.prefix(4096), as: UTF8.self)) == .rawCapture
        else { return nil }
        let header = try? RawCapture.Header.parse(String(decoding: first.prefix(512), as: UTF8.self))
        if let header, header.venue != nil { return nil }
        let wire = header?.wireProtocol ?? .binance
        if wire == .binance, BinanceDecoder.venue(fromFileName: path) != nil { return nil }
        let table = SymbolTable()
        var sample = Sample(table: table)
        switch wire {
        case .binance: sample.read(lines, decoder: BinanceDecoder(symbols: table, venue: nil))
        case .polygon: sample.read(lines, decoder: PolygonDecoder(symbols: table, venue: nil))
        case .finage: sample.read(lines, decoder: FinageDecoder(symbols: table, venue: nil))
        case .alphavantage: sample.read(lines, decoder: AlphaVantageDecoder(symbols: table, venue: nil))
        case .fmp: sample.read(lines, decoder: FMPDecoder(symbols: table, venue: nil))
        case .clock: return nil
        }
        guard !sample.symbols.isEmpty else { return nil }
        guard wire == .binance else {
            return CaptureOrigin(key: wire.rawValue, description: wire.rawValue, symbols: sample.symbols)
        }
        let key: String?
        switch (sample.futures, sample.spot) {
        case (true, _): key = sample.symbols.contains(where: { $0.contains("_") }) ? "cm" : "usdm"
        case (false, true): key = "spot"
        case (false, false): key = nil
        }
        let description = ["spot": "Binance spot", "usdm": "Binance USDⓈ-M futures",
                           "cm": "Binance COIN-M futures"][key ?? ""] ?? "Binance, market not told by its messages"
        return CaptureOrigin(key: key, description: description, symbols: sample.symbols)
    }

    /// The first lines of a capture through its decoder, and the Binance market fields seen.
    struct Sample {
        let table: SymbolTable
        var symbols: Set<String> = []
        var futures = false
        var spot = false

        mutating func read<D: WireDecoder>(_ lines: LineReader, decoder: D) {
            var decoder = decoder
            var out: [MarketEvent] = []
            var n = 0
            while n < CaptureOrigins.sampleLines, let line = lines.next() {
                n += 1
                guard let space = line.firstIndex(of: 0x20), space + 1 < line.count else { continue }
                let message = UnsafeRawBufferPointer(rebasing: line[(space + 1)...])
                out.removeAll(keepingCapacity: true)
                if case .decoded = decoder.decode(message, receiveTime: 1, into: &out) {
                    for e in out { symbols.insert(table.name(e.symbol)) }
                }
                classify(String(decoding: message.prefix(2048), as: UTF8.self))
            }
        }

        /// Binance: a trade, book ticker or depth diff with (futures) or without (spot) futures fields.
        mutating func classify(_ m: String) {
            if m.contains("@trade\"") || m.contains("\"e\":\"trade\"") {
                if m.contains("\"X\":") { futures = true } else { spot = true }
            } else if m.contains("@bookTicker\"") {
                if m.contains("\"E\":") || m.contains("\"T\":") { futures = true } else { spot = true }
            } else if m.contains("@depth") {
                if m.contains("\"pu\":") { futures = true } else if m.contains("\"U\":") { spot = true }
            }
        }
    }
}
