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

    /// Every series of the run folder, sorted by symbol then timeframe length.
    static func load(runDir: String, withIndicators: Bool = true) -> [ReportSeries] {
        var series: [ReportSeries] = []
        var index: [String: Int] = [:]
        // bars.csv: the series and their bars.
        var barColumns: [Int]? = nil
        _ = stream(runDir + "/bars.csv") { header, row in
            if let header = header {
                let names = ["symbol", "timeframe", "start_ns", "end_ns", "open", "high", "low", "close", "volume"]
                let found = names.compactMap { column($0, in: header, of: "bars") }
                barColumns = found.count == names.count ? found : nil
                return
            }
            guard let c = barColumns, let start = row.int(c[2]), let end = row.int(c[3]) else { return }
            let key = row.string(c[0]) + "|" + row.string(c[1])
            let position: Int
            if let known = index[key] { position = known } else {
                position = series.count
                index[key] = position
                series.append(ReportSeries(symbol: row.string(c[0]), timeframe: row.string(c[1])))
            }
            series[position].start.append(start)
            series[position].end.append(end)
            series[position].open.append(row.double(c[4]) ?? .nan)
            series[position].high.append(row.double(c[5]) ?? .nan)
            series[position].low.append(row.double(c[6]) ?? .nan)
            series[position].close.append(row.double(c[7]) ?? .nan)
            series[position].volume.append(row.double(c[8]) ?? .nan)
        }
        // A bar's row by end time, per series (bars arrive in time order per series: a binary search).
        func rowIndex(_ position: Int, _ end: Int64) -> Int? {
            let ends = series[position].end
            var low = 0, high = ends.count
            while low < high {
                let middle = (low + high) / 2
                if ends[middle] < end { low = middle + 1 } else { high = middle }
            }
            return low < ends.count && ends[low] == end ? low : nil
        }
        if !withIndicators { return sorted(series) }
        for position in series.indices {
            series[position].indicators = indicatorNames.map { _ in [Double](repeating: .nan, count: series[position].count) }
        }
        var indicatorColumns: [Int?] = []
        var keyColumns: [Int]? = nil
        _ = stream(runDir + "/indicators.csv") { header, row in
            if let header = header {
                let keys = ["symbol", "timeframe", "end_ns"].compactMap { column($0, in: header, of: "indicators") }
                keyColumns = keys.count == 3 ? keys : nil
                indicatorColumns = indicatorNames.map { column($0, in: header, of: "indicators") }
                return
            }
            guard let k = keyColumns, let position = index[row.string(k[0]) + "|" + row.string(k[1])],
                  let end = row.int(k[2]), let at = rowIndex(position, end) else { return }
            for (j, c) in indicatorColumns.enumerated() {
                if let c = c, let value = row.double(c) { series[position].indicators[j][at] = value }
            }
        }
        for position in series.indices {
            series[position].prediction = [Double](repeating: .nan, count: series[position].count)
        }
        var predictionColumns: [Int]? = nil
        _ = stream(runDir + "/predictions.csv") { header, row in
            if let header = header {
                let found = ["symbol", "timeframe", "end_ns", "prediction"].compactMap { column($0, in: header, of: "predictions") }
                predictionColumns = found.count == 4 ? found : nil
                return
            }
            guard let c = predictionColumns, let position = index[row.string(c[0]) + "|" + row.string(c[1])],
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
