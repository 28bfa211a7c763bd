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

    /// The exact sum of the buckets' volumes (docs/reports.md, "Volumes").
    var volume: ExactSum { ExactSum.of(values[0]) }

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

/// Sums of decimal quantities (volumes), exact: each value is read as a decimal with its own decimal
/// places (`Numbers.decimalPlaces`, the shortest text that reads back as it) and added as an integer
/// count (128 bits) of units of the finest place seen, so the sum is the exact decimal sum of the values
/// as printed — `710.971`, not `710.9709999999974`; a month of 1-minute volumes `119923370570.20744999989`
/// (one input volume is printed `218102.59507500002`: the file's own digits), where a Double sum gives
/// `119923370570.20705` (it cannot hold the digits). A value of 16–17 significant digits is read from its
/// shortest round-trip text. Only beyond 20 places or 128 bits (never for volumes) is the Double sum,
/// rounded to 12 places, used instead (`exact` false).
public struct ExactSum {
    public private(set) var units: Int128 = 0
    public private(set) var places = 0
    public private(set) var exact = true
    private var plain = 0.0

    public init() {}

    /// The sum of the finite values of `values` (NaN skipped; 0 when there is none).
    public static func of(_ values: [Double]) -> ExactSum {
        var sum = ExactSum()
        for value in values { sum.add(value) }
        return sum
    }

    public mutating func add(_ value: Double) {
        guard value.isFinite else { return }
        plain += value
        guard exact else { return }
        var valuePlaces = Numbers.decimalPlaces(value)
        var mantissa: Int128
        if valuePlaces < Numbers.decimalPlacesMax {
            // value = m / 10^valuePlaces exactly (what decimalPlaces checked), m below 2^53.
            let m = (value * Numbers.powerOfTen(valuePlaces)).rounded()
            guard m.magnitude < 9_007_199_254_740_992 else { exact = false; return }
            mantissa = Int128(Int64(m))
        } else {
            // 16–17 significant digits (a vendor's own float noise, `218102.59507500002`; or 1/3): the
            // shortest text that reads back as the value, read as a decimal (rare: allocates).
            guard let decimal = Self.decimal(Numbers.format(value)) else { exact = false; return }
            (mantissa, valuePlaces) = decimal
        }
        if valuePlaces > places {
            let (rescaled, overflow) = units.multipliedReportingOverflow(by: Self.power(valuePlaces - places))
            guard !overflow else { exact = false; return }
            units = rescaled
            places = valuePlaces
        }
        // Scaled to the common places in 128 bits.
        let (scaled, overflowScale) = mantissa.multipliedReportingOverflow(by: Self.power(places - valuePlaces))
        let (sum, overflowSum) = units.addingReportingOverflow(scaled)
        guard !overflowScale, !overflowSum else { exact = false; return }
        units = sum
    }

    /// The sum as a Double (the nearest to the exact sum when `exact`).
    public var value: Double {
        exact ? Double(units) / Double(Self.power(places)) : Numbers.rounded(plain, decimalPlaces: Numbers.decimalPlacesMax)
    }

    /// The sum's text: the exact decimal, no trailing zeros (else `Numbers.format(value)`).
    public var text: String { text(significantDigitsMax: Int.max) }

    /// The exact decimal with fractional digits dropped (rounded half away from zero) beyond
    /// `significantDigitsMax` significant digits; the integer part is always whole (`119923370570.207` at 15).
    public func text(significantDigitsMax: Int) -> String {
        guard exact else { return Numbers.format(value) }
        var magnitude = units.magnitude
        var fraction = places
        let digitCount = String(magnitude).count
        if digitCount > significantDigitsMax {
            let drop = min(fraction, digitCount - significantDigitsMax)
            if drop > 0 {
                let divisor = UInt128(Self.power(drop))
                magnitude = (magnitude + divisor / 2) / divisor
                fraction -= drop
            }
        }
        if magnitude == 0 { return "0" }
        var digits = String(magnitude)
        while fraction > 0 && digits.hasSuffix("0") { digits.removeLast(); fraction -= 1 }
        if fraction > 0 {
            if digits.count <= fraction { digits = String(repeating: "0", count: fraction - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -fraction))
        }
        return (units < 0 ? "-" : "") + digits
    }

    /// Most decimal places kept exactly (128-bit units: integer parts up to 10^17 at this many places).
    static let placesMax = 20

    /// `-12.5` → (-125, 1); nil for an exponent form or more than `placesMax` places.
    static func decimal(_ text: String) -> (mantissa: Int128, places: Int)? {
        var mantissa: Int128 = 0
        var places = 0
        var fraction = false
        var negative = false
        var digits = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "-") where digits == 0 && !negative: negative = true
            case UInt8(ascii: "."): if fraction { return nil } else { fraction = true }
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                mantissa = mantissa * 10 + Int128(byte - UInt8(ascii: "0"))
                digits += 1
                if fraction { places += 1 }
                if digits > 36 || places > placesMax { return nil }
            default: return nil
            }
        }
        guard digits > 0 else { return nil }
        return (negative ? -mantissa : mantissa, places)
    }

    static func power(_ exponent: Int) -> Int128 {
        precondition(exponent >= 0 && exponent <= 36)
        var result: Int128 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }
}
