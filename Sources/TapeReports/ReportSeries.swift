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

    /// The rows of `indicators.csv` grouped by series (file order), before they are matched to bars.
    struct IndicatorRows {
        var index = SeriesIndex()
        var ends: [[Int64]] = []
        /// [series][indicator][row]
        var values: [[[Double]]] = []

        static func load(_ path: String) -> IndicatorRows {
            var table = IndicatorRows()
            var indicatorColumns: [Int?] = []
            var keyColumns: [Int]? = nil
            _ = stream(path) { header, row in
                if let header = header {
                    let keys = ["symbol", "timeframe", "end_ns"].compactMap { column($0, in: header, of: "indicators") }
                    keyColumns = keys.count == 3 ? keys : nil
                    indicatorColumns = indicatorNames.map { column($0, in: header, of: "indicators") }
                    return
                }
                guard let k = keyColumns, let end = row.int(k[2]) else { return }
                let position: Int
                if let known = table.index.position(row, symbol: k[0], timeframe: k[1]) { position = known } else {
                    position = table.index.add(row, symbol: k[0], timeframe: k[1])
                    table.ends.append([])
                    table.values.append(indicatorNames.map { _ in [] })
                }
                table.ends[position].append(end)
                for (j, c) in indicatorColumns.enumerated() {
                    table.values[position][j].append(c.flatMap { row.double($0) } ?? .nan)
                }
            }
            return table
        }
    }

    /// Every series of the run folder, sorted by symbol then timeframe length. `bars.csv` and
    /// `indicators.csv` are read concurrently, then matched by series and `end_ns`.
    static func load(runDir: String, withIndicators: Bool = true) -> [ReportSeries] {
        var series: [ReportSeries] = []
        var index = SeriesIndex()
        // Written by the reading task only, read here only after `group.wait()` (which orders the two).
        final class Handoff: @unchecked Sendable { var rows = IndicatorRows() }
        let handoff = Handoff()
        let group = DispatchGroup()
        if withIndicators {
            DispatchQueue.global().async(group: group) { handoff.rows = IndicatorRows.load(runDir + "/indicators.csv") }
        }
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
            let position: Int
            if let known = index.position(row, symbol: c[0], timeframe: c[1]) { position = known } else {
                position = index.add(row, symbol: c[0], timeframe: c[1])
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
        group.wait()
        if !withIndicators { return sorted(series) }
        var indicatorRows = handoff.rows
        handoff.rows = IndicatorRows()
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
        var indicatorValues = series.map { s in indicatorNames.map { _ in [Double](repeating: .nan, count: s.count) } }
        for (from, key) in indicatorRows.index.keys.enumerated() {
            guard let position = index.keys.firstIndex(where: { $0.0 == key.0 && $0.1 == key.1 }) else { continue }
            for (row, end) in indicatorRows.ends[from].enumerated() {
                guard let at = rowIndex(position, end) else { continue }
                for j in indicatorNames.indices { indicatorValues[position][j][at] = indicatorRows.values[from][j][row] }
            }
        }
        indicatorRows = IndicatorRows()
        for position in series.indices {
            series[position].indicators = indicatorValues[position]
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
