import TapeCore
import TapeSinks

/// The tick buckets of one symbol from the run folder's `tick_series.csv` (written by `TickSeriesSink`;
/// absent for bar-file runs), as typed columns for the report's tick view. Columns are found by name
/// in the file's header; `TickSeriesSink.header` is the schema.
struct ReportTicks {
    /// The numeric columns kept for the page, in the page's names (`t` is the bucket start).
    static let valueColumns: [(file: String, page: String)] = [
        ("volume", "v"), ("price_first", "pf"), ("price_low", "pl"), ("price_high", "ph"), ("price_last", "pc"),
        ("bid_low", "bl"), ("bid_high", "bh"), ("bid_last", "bc"), ("ask_low", "al"), ("ask_high", "ah"),
        ("ask_last", "ac"), ("spread_low", "sl"), ("spread_high", "sh"),
    ]

    let symbol: String
    var widthNanos: Int64 = 0
    var start: [Int64] = []
    var trades: [Int64] = []
    var quotes: [Int64] = []
    /// One column per `valueColumns` entry (NaN where empty).
    var values: [[Double]] = ReportTicks.valueColumns.map { _ in [] }

    var count: Int { start.count }
    var tradeCount: Int64 { trades.reduce(0, +) }
    var quoteCount: Int64 { quotes.reduce(0, +) }

    /// The sum of the buckets' volumes without float noise: rounded to the most decimal places of a
    /// bucket's volume (docs/reports.md, "Volumes").
    var volume: Double { ExactSum.of(values[0]) }

    init(symbol: String) { self.symbol = symbol }

    /// Position of `name` in the header of `tick_series.csv` (a column of `TickSeriesSink.header`).
    static func column(_ name: String, in header: [String]) -> Int? {
        precondition(TickSeriesSink.header.split(separator: ",").contains(Substring(name)),
                     "'\(name)' is not a column of \(TickSeriesSink.fileName)")
        return header.firstIndex(of: name)
    }

    /// Every symbol of `tick_series.csv` in file order (sorted by symbol); empty when the file is absent.
    static func load(runDir: String) -> [ReportTicks] {
        var all: [ReportTicks] = []
        var keys: [Int] = []
        var fixed: [Int] = []
        _ = ReportSeries.stream(runDir + "/" + TickSeriesSink.fileName) { header, row in
            if let header {
                let names = ["symbol", "start_ns", "width_ns", "trades", "quotes"]
                let found = names.compactMap { column($0, in: header) }
                let values = valueColumns.compactMap { column($0.file, in: header) }
                fixed = found.count == names.count ? found : []
                keys = values.count == valueColumns.count ? values : []
                return
            }
            guard !fixed.isEmpty, !keys.isEmpty, let start = row.int(fixed[1]), let width = row.int(fixed[2]) else { return }
            let symbol = row.bytes(fixed[0])
            if all.last.map({ !$0.symbol.utf8.elementsEqual(symbol) }) ?? true {
                all.append(ReportTicks(symbol: row.string(fixed[0])))
            }
            let last = all.count - 1
            all[last].widthNanos = width
            all[last].start.append(start)
            all[last].trades.append(row.int(fixed[3]) ?? 0)
            all[last].quotes.append(row.int(fixed[4]) ?? 0)
            for (j, c) in keys.enumerated() { all[last].values[j].append(row.double(c) ?? .nan) }
        }
        return all
    }

    /// `"SYMBOL":{"w":width_ms,"t":[…],"n":[…],"q":[…],"v":[…],…}` for the page's `TICKS`.
    func appendJS(to js: inout [UInt8]) {
        js += Array("\"\(ReportWriter.jsString(symbol))\":{\"w\":".utf8)
        ReportWriter.appendNumber(Double(widthNanos) / 1e6, to: &js)
        js += Array(",\"t\":[".utf8)
        for (i, nanos) in start.enumerated() {
            if i > 0 { js.append(UInt8(ascii: ",")) }
            Numbers.append(nanos / 1_000_000, to: &js)
        }
        js.append(UInt8(ascii: "]"))
        for (name, column) in [("n", trades), ("q", quotes)] {
            js += Array(",\"\(name)\":[".utf8)
            for (i, value) in column.enumerated() {
                if i > 0 { js.append(UInt8(ascii: ",")) }
                Numbers.append(value, to: &js)
            }
            js.append(UInt8(ascii: "]"))
        }
        for (j, column) in ReportTicks.valueColumns.enumerated() {
            ReportWriter.appendArray(column.page, values[j], digits: nil, to: &js)
        }
        js.append(UInt8(ascii: "}"))
    }
}

/// Sums of decimal quantities (volumes) without float noise: the Double sum rounded to the most
/// decimal places of any term (`Numbers.decimalPlaces`, at most 12), so that 0.1 + 0.2 is 0.3 and a
/// month of volumes sums to `710.971`, not `710.9709999999974`.
public enum ExactSum {
    /// The sum of the finite values (0 when there is none).
    public static func of(_ values: [Double]) -> Double {
        var sum = 0.0
        var places = 0
        for value in values where value.isFinite {
            sum += value
            if places < Numbers.decimalPlacesMax {
                let p = Numbers.decimalPlaces(value)
                if p > places { places = p }
            }
        }
        return Numbers.rounded(sum, decimalPlaces: places)
    }
}
