import Foundation
import TapeCore
import TapeGraph
import TapeIO
import TapeRecordings

/// The bars of one symbol × timeframe with the indicators and predictions at their closes, as typed
/// columns (NaN where a value is missing). Built by `ReportSeries.load`, streaming the run folder's CSVs
/// with the project's reader (`LineReader` + `CSVRow`) and every column found by name, without making
/// a String per field: the report of a month of 1-minute bars is built in a fraction of the replay's time.
struct ReportSeries {
    static let indicatorNames = ["sma", "ema", "rsi", "macd", "macd_signal", "macd_hist", "bb_middle", "bb_upper", "bb_lower"]

    let symbol: String
    let timeframe: String
    var start: [Int64] = []
    var end: [Int64] = []
    var open: [Double] = []
    var high: [Double] = []
    var low: [Double] = []
    var close: [Double] = []
    var volume: [Double] = []
    /// One column per `indicatorNames` entry, aligned with the bars (matched by `end_ns`).
    var indicators: [[Double]] = ReportSeries.indicatorNames.map { _ in [] }
    /// The model's prediction at each bar close (NaN: none), from `predictions.csv`.
    var prediction: [Double] = []

    var count: Int { end.count }
    var key: String { symbol + "|" + timeframe }

    init(symbol: String, timeframe: String) {
        self.symbol = symbol
        self.timeframe = timeframe
    }

    /// Calls `body` with the header and then every row of a CSV file (plain or gzip); false when the
    /// file cannot be opened. Rows whose field count differs from the header's are skipped.
    static func stream(_ path: String, _ body: (_ header: [String]?, _ row: CSVRow) -> Void) -> Bool {
        guard let reader = try? LineReader(path: path, rejects: nil, threaded: false) else { return false }
        var row = CSVRow()
        var width = -1
        while let line = reader.next() {
            guard line.count > 0, row.split(line) else { continue }
            if width < 0 {
                width = row.count
                body((0..<row.count).map { row.string($0) }, row)
            } else if row.count == width {
                body(nil, row)
            }
        }
        return true
    }

    /// Position of `name` in a header of the graph's file `kind` (`GraphOutput.csvHeaders` is the schema).
    static func column(_ name: String, in header: [String], of kind: String) -> Int? {
        precondition((GraphOutput.csvHeaders[kind] ?? "").split(separator: ",").contains(Substring(name)),
                     "'\(name)' is not a column of \(kind).csv")
        return header.firstIndex(of: name)
    }

    /// The series of a row by the raw bytes of its symbol and timeframe fields: a run has few series, so
    /// a scan comparing bytes beats making two Strings per row.
    struct SeriesIndex {
        var keys: [([UInt8], [UInt8])] = []

        func position(_ row: CSVRow, symbol: Int, timeframe: Int) -> Int? {
            let s = row.bytes(symbol), t = row.bytes(timeframe)
            for (position, key) in keys.enumerated() where key.0.count == s.count && key.1.count == t.count {
                if key.0.elementsEqual(s) && key.1.elementsEqual(t) { return position }
            }
            return nil
        }

        mutating func add(_ row: CSVRow, symbol: Int, timeframe: Int) -> Int {
            keys.append((Array(row.bytes(symbol)), Array(row.bytes(timeframe))))
            return keys.count - 1
        }
    }

    /// Every series of the run folder, sorted by symbol then timeframe length. `bars.csv` first (every
    /// bar: the summary and the merged candles need them all), then `indicators.csv` matched by series
    /// and `end_ns`, its values parsed only for the bars the page keeps: with `displayLimit` candles per
    /// series, a series of n bars keeps the last bar of each group of k = ceil(n / displayLimit) (see
    /// `downsampled`), so a month of 1-minute bars parses a third of its indicator values.
    static func load(runDir: String, withIndicators: Bool = true, displayLimit: Int = Int.max) -> [ReportSeries] {
        precondition(displayLimit >= 1)
        var series: [ReportSeries] = []
        var index = SeriesIndex()
        var barColumns: [Int]? = nil
        /// One bar as read; per series, rows are collected in one array (one append per row) and then
        /// split into the series' columns.
        struct BarRow { var start, end: Int64; var open, high, low, close, volume: Double }
        var rows: [[BarRow]] = []
        _ = stream(runDir + "/bars.csv") { header, row in
            if let header = header {
                let names = ["symbol", "timeframe", "start_ns", "end_ns", "open", "high", "low", "close", "volume"]
                let found = names.compactMap { column($0, in: header, of: "bars") }
                barColumns = found.count == names.count ? found : nil
                return
            }
            guard let c = barColumns, let start = row.int(c[2]), let end = row.int(c[3]) else { return }
            let position: Int
            if let known = index.position(row, symbol: c[0], timeframe: c[1]) { position = known } else {
                position = index.add(row, symbol: c[0], timeframe: c[1])
                series.append(ReportSeries(symbol: row.string(c[0]), timeframe: row.string(c[1])))
                rows.append([])
            }
            rows[position].append(BarRow(start: start, end: end, open: row.double(c[4]) ?? .nan,
                                         high: row.double(c[5]) ?? .nan, low: row.double(c[6]) ?? .nan,
                                         close: row.double(c[7]) ?? .nan, volume: row.double(c[8]) ?? .nan))
        }
        for position in series.indices {
            let bars = rows[position]
            rows[position] = []
            series[position].start = bars.map(\.start)
            series[position].end = bars.map(\.end)
            series[position].open = bars.map(\.open)
            series[position].high = bars.map(\.high)
            series[position].low = bars.map(\.low)
            series[position].close = bars.map(\.close)
            series[position].volume = bars.map(\.volume)
        }
        if !withIndicators { return sorted(series) }
        let ends = series.map(\.end)
        // A bar's row by end time, per series. The files list each series in time order, so a cursor per
        // series moves forward (amortised O(1)); a row out of order falls back to a binary search.
        var cursors = [Int](repeating: 0, count: series.count)
        func rowIndex(_ position: Int, _ end: Int64) -> Int? {
            let times = ends[position]
            var at = cursors[position]
            if at >= times.count || times[at] > end {
                var low = 0, high = times.count
                while low < high {
                    let middle = (low + high) / 2
                    if times[middle] < end { low = middle + 1 } else { high = middle }
                }
                at = low
            }
            while at < times.count && times[at] < end { at += 1 }
            cursors[position] = at
            return at < times.count && times[at] == end ? at : nil
        }
        // Bars per display candle, per series (the page keeps each group's last bar's indicators).
        let groupSizes = series.map { max(1, ($0.count + displayLimit - 1) / displayLimit) }
        // [series][indicator × bars + bar]: one flat array per series.
        var indicatorValues = series.map { [Double](repeating: .nan, count: $0.count * indicatorNames.count) }
        var indicatorColumns: [Int?] = []
        var keyColumns: [Int]? = nil
        _ = stream(runDir + "/indicators.csv") { header, row in
            if let header = header {
                let keys = ["symbol", "timeframe", "end_ns"].compactMap { column($0, in: header, of: "indicators") }
                keyColumns = keys.count == 3 ? keys : nil
                indicatorColumns = indicatorNames.map { column($0, in: header, of: "indicators") }
                return
            }
            guard let k = keyColumns, let position = index.position(row, symbol: k[0], timeframe: k[1]),
                  let end = row.int(k[2]), let at = rowIndex(position, end) else { return }
            let group = groupSizes[position]
            guard (at + 1) % group == 0 || at == ends[position].count - 1 else { return }  // not shown
            let barCount = ends[position].count
            for (j, c) in indicatorColumns.enumerated() {
                // Display only (rounded to 7 digits in the page): the fast reader.
                if let c, let value = DisplayNumbers.parse(row, c) { indicatorValues[position][j * barCount + at] = value }
            }
        }
        for position in series.indices {
            let barCount = series[position].count
            series[position].indicators = indicatorNames.indices.map { j in
                Array(indicatorValues[position][(j * barCount)..<((j + 1) * barCount)])
            }
            series[position].prediction = [Double](repeating: .nan, count: series[position].count)
        }
        indicatorValues = []
        cursors = [Int](repeating: 0, count: series.count)
        var predictionColumns: [Int]? = nil
        _ = stream(runDir + "/predictions.csv") { header, row in
            if let header = header {
                let found = ["symbol", "timeframe", "end_ns", "prediction"].compactMap { column($0, in: header, of: "predictions") }
                predictionColumns = found.count == 4 ? found : nil
                return
            }
            guard let c = predictionColumns, let position = index.position(row, symbol: c[0], timeframe: c[1]),
                  let end = row.int(c[2]), let at = rowIndex(position, end), let value = row.double(c[3]) else { return }
            series[position].prediction[at] = value
        }
        return sorted(series)
    }

    static func sorted(_ series: [ReportSeries]) -> [ReportSeries] {
        series.sorted { a, b in
            a.symbol != b.symbol ? a.symbol < b.symbol
                : ReportWriter.tfSeconds(a.timeframe) < ReportWriter.tfSeconds(b.timeframe)
        }
    }

    /// At most `limit` display candles: consecutive groups of k = ceil(n / limit) bars merged into one
    /// (first open, highest high, lowest low, last close, summed volume; indicators and prediction of
    /// the group's last bar). k = 1 keeps every bar. The CSVs keep everything.
    func downsampled(limit: Int) -> (series: ReportSeries, barsPerCandle: Int) {
        precondition(limit >= 1)
        let k = max(1, (count + limit - 1) / limit)
        if k == 1 { return (self, 1) }
        var out = ReportSeries(symbol: symbol, timeframe: timeframe)
        out.indicators = ReportSeries.indicatorNames.map { _ in [] }
        var first = 0
        while first < count {
            let last = min(first + k, count) - 1
            out.start.append(start[first]); out.end.append(end[last])
            out.open.append(open[first]); out.close.append(close[last])
            var high = -Double.infinity, low = Double.infinity, volume = 0.0, anyVolume = false
            for i in first...last {
                if self.high[i] > high { high = self.high[i] }
                if self.low[i] < low { low = self.low[i] }
                if self.volume[i].isFinite { volume += self.volume[i]; anyVolume = true }
            }
            out.high.append(high.isFinite ? high : .nan); out.low.append(low.isFinite ? low : .nan)
            out.volume.append(anyVolume ? volume : .nan)
            for j in indicators.indices { out.indicators[j].append(indicators[j][last]) }
            out.prediction.append(prediction[last])
            first = last + 1
        }
        return (out, k)
    }
}

/// Human units for the report: ISO times, numbers rounded to what a reader can use.
enum HumanUnits {
    /// `x` rounded to `digits` significant digits (NaN and infinities unchanged).
    static func significant(_ x: Double, _ digits: Int) -> Double {
        guard x.isFinite, x != 0 else { return x }
        let exponent = Int(floor(log10(abs(x))))
        let power = digits - 1 - exponent
        if power >= 0 {
            let scale = pow(10.0, Double(power))
            return (x * scale).rounded() / scale
        }
        let scale = pow(10.0, Double(-power))
        return (x / scale).rounded() * scale
    }

    /// Text of `x` rounded to `digits` significant digits, without float noise (`710.971`).
    static func text(_ x: Double, digits: Int = 6) -> String {
        guard x.isFinite else { return x.isNaN ? "—" : (x > 0 ? "∞" : "−∞") }
        return Numbers.format(significant(x, digits))
    }

    /// `2022-01-01 12:34:56Z` (milliseconds shown only when not zero) of Unix-epoch nanoseconds.
    static func time(_ ns: Int64) -> String {
        let seconds = Int64((Double(ns) / 1e9).rounded(.down))
        let milliseconds = (ns - seconds * 1_000_000_000) / 1_000_000
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var text = String(format: "%04d-%02d-%02d %02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                          Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        if milliseconds != 0 { text += String(format: ".%03d", Int(milliseconds)) }
        return text + "Z"
    }
}

/// Numbers for the page's data, where only a few significant digits are shown: written and read without
/// the exact (round-trip) paths, which are the report's largest cost on a month of 1-minute bars.
public enum DisplayNumbers {
    static let powersOfTen: [Double] = (0...22).map { pow(10.0, Double($0)) }

    /// Appends `x` rounded to `digits` (1…15) significant digits as a JavaScript number literal (`null`
    /// for NaN and infinities): the digits of the rounded integer mantissa with the decimal point placed,
    /// trailing zeros dropped (`61837.63`, `0.0001234567`, `-12`), the exponent form beyond 1e±15. No
    /// String, no round-trip search; the text reads back as the value rounded to `digits` digits.
    public static func appendSignificant(_ x: Double, digits: Int, to out: inout [UInt8]) {
        var exponentGuess = Int.min
        appendSignificant(x, digits: digits, exponentGuess: &exponentGuess, to: &out)
    }

    /// As above; `exponentGuess` is the decimal exponent of the previous value of a column (Int.min: none),
    /// tried before computing a logarithm (a column's values are mostly of one magnitude), and updated.
    public static func appendSignificant(_ x: Double, digits: Int, exponentGuess: inout Int, to out: inout [UInt8]) {
        precondition(digits >= 1 && digits <= 15)
        guard x.isFinite else { out.append(contentsOf: [110, 117, 108, 108]); return }  // null
        if x == 0 { out.append(UInt8(ascii: "0")); return }
        let magnitude = x.magnitude
        var exponent: Int
        if exponentGuess >= 0 && exponentGuess < 22 && magnitude >= powersOfTen[exponentGuess]
            && magnitude < powersOfTen[exponentGuess + 1] {
            exponent = exponentGuess
        } else {
            exponent = Int(log10(magnitude).rounded(.down))
        }
        let limit = UInt64(powersOfTen[digits])
        var mantissa: UInt64 = 0
        // One or two tries: log10 may be off by one at exact powers of ten.
        for _ in 0..<3 {
            let shift = digits - 1 - exponent
            let scaled: Double
            if shift >= 0 {
                scaled = shift <= 22 ? magnitude * powersOfTen[shift] : magnitude * pow(10.0, Double(shift))
            } else {
                scaled = -shift <= 22 ? magnitude / powersOfTen[-shift] : magnitude / pow(10.0, Double(-shift))
            }
            let rounded = scaled.rounded()
            if rounded >= Double(limit) { exponent += 1; continue }
            if rounded < Double(limit / 10) { exponent -= 1; continue }
            mantissa = UInt64(rounded)
            break
        }
        if mantissa == 0 { Numbers.append(x, to: &out); return }  // not reached for finite non-zero x
        exponentGuess = exponent
        // value = mantissa × 10^power
        var power = exponent - (digits - 1)
        while mantissa % 10 == 0 { mantissa /= 10; power += 1 }
        if x < 0 { out.append(UInt8(ascii: "-")) }
        var scratch: (UInt64, UInt64) = (0, 0)  // 16 bytes: at most 15 digits
        withUnsafeMutableBytes(of: &scratch) { digitsBuffer in
            var count = 0
            var rest = mantissa
            while rest > 0 { digitsBuffer[count] = UInt8(48 + rest % 10); rest /= 10; count += 1 }
            if exponent > 15 || exponent < -15 {
                // d.ddde±x
                out.append(digitsBuffer[count - 1])
                if count > 1 {
                    out.append(UInt8(ascii: "."))
                    var index = count - 1
                    while index > 0 { index -= 1; out.append(digitsBuffer[index]) }
                }
                out.append(UInt8(ascii: "e"))
                Numbers.append(Int64(exponent), to: &out)
            } else if power >= 0 {
                var index = count
                while index > 0 { index -= 1; out.append(digitsBuffer[index]) }
                for _ in 0..<power { out.append(UInt8(ascii: "0")) }
            } else {
                let fraction = -power
                if count > fraction {
                    var index = count
                    while index > fraction { index -= 1; out.append(digitsBuffer[index]) }
                    out.append(UInt8(ascii: "."))
                    while index > 0 { index -= 1; out.append(digitsBuffer[index]) }
                } else {
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "."))
                    for _ in 0..<(fraction - count) { out.append(UInt8(ascii: "0")) }
                    var index = count
                    while index > 0 { index -= 1; out.append(digitsBuffer[index]) }
                }
            }
        }
    }

    /// A decimal field read for display: the first 19 significant digits and the exponent, scaled by a
    /// power of ten in one operation (within a few ulps of the exact value: far below the 7 digits the
    /// page keeps). Falls back to the exact parser for anything unusual. nil for an empty field.
    @inline(__always)
    static func parse(_ row: CSVRow, _ index: Int) -> Double? {
        let bytes = row.bytes(index)
        let count = bytes.count
        if count == 0 { return nil }
        var position = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") { negative = true; position = 1 }
        var mantissa: UInt64 = 0
        var significant = 0
        var exponent = 0
        var sawDigit = false
        var sawPoint = false
        while position < count {
            let byte = bytes[position]
            if byte == UInt8(ascii: ".") {
                if sawPoint { return row.double(index) }
                sawPoint = true
            } else {
                let digit = byte &- 48
                if digit > 9 { return row.double(index) }  // exponents, nan, …: the exact parser
                sawDigit = true
                if significant < 19 {
                    if mantissa != 0 || digit != 0 { significant += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(digit)
                    if sawPoint { exponent -= 1 }
                } else if !sawPoint {
                    exponent += 1
                }
            }
            position += 1
        }
        if !sawDigit { return row.double(index) }
        if exponent < -22 || exponent > 22 { return row.double(index) }
        var value = Double(mantissa)
        if exponent < 0 { value /= powersOfTen[-exponent] } else if exponent > 0 { value *= powersOfTen[exponent] }
        return negative ? -value : value
    }
}
