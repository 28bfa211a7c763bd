import Foundation
import TapeCore

public struct ReportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Where the report's columns of `bars.csv` are, found by name (nil when one is missing).
struct BarColumns {
    let symbol, timeframe, start, end, open, high, low, close, volume: Int

    init?(_ table: CSVTable) {
        guard let symbol = table.column("symbol", of: "bars"), let timeframe = table.column("timeframe", of: "bars"),
              let start = table.column("start_ns", of: "bars"), let end = table.column("end_ns", of: "bars"),
              let open = table.column("open", of: "bars"), let high = table.column("high", of: "bars"),
              let low = table.column("low", of: "bars"), let close = table.column("close", of: "bars"),
              let volume = table.column("volume", of: "bars") else { return nil }
        self.symbol = symbol; self.timeframe = timeframe; self.start = start; self.end = end
        self.open = open; self.high = high; self.low = low; self.close = close; self.volume = volume
    }
}

/// The key columns shared by the per-bar files (`indicators.csv`, `predictions.csv`), found by name.
struct BarKeyColumns {
    let symbol, timeframe, end: Int

    init?(_ table: CSVTable, kind: String) {
        guard let symbol = table.column("symbol", of: kind), let timeframe = table.column("timeframe", of: kind),
              let end = table.column("end_ns", of: kind) else { return nil }
        self.symbol = symbol; self.timeframe = timeframe; self.end = end
    }

    /// `symbol|timeframe` of a row: the report's series key.
    func series(_ row: [String]) -> String { row[symbol] + "|" + row[timeframe] }
}

/// Writes `index.html` (self-contained, Chart.js inlined) and `summary.csv` into a run folder.
public enum ReportWriter {
    public static let chartJSPath = "/usr/share/javascript/chart.js/chart.min.js"

    public static let summaryHeader = "symbol,timeframe,bars,first_start_ns,last_end_ns,open,close,return,high,low,volume,anomalies"

    /// Rows of `summary.csv` (one per symbol×timeframe, sorted by symbol then timeframe length).
    public static func summaryRows(runDir: String) -> [String] {
        summaryRows(series: ReportSeries.load(runDir: runDir, withIndicators: false), runDir: runDir)
    }

    static func summaryRows(series: [ReportSeries], runDir: String) -> [String] {
        var anomalies: [String: Int] = [:]
        var symbolColumn: Int? = nil
        _ = ReportSeries.stream(runDir + "/anomalies.csv") { header, row in
            if let header = header { symbolColumn = ReportSeries.column("symbol", in: header, of: "anomalies"); return }
            if let c = symbolColumn { anomalies[row.string(c), default: 0] += 1 }
        }
        let f = Numbers.format
        return series.map { s in
            var high = -Double.infinity, low = Double.infinity
            for i in 0..<s.count {
                if s.high[i] > high { high = s.high[i] }
                if s.low[i] < low { low = s.low[i] }
            }
            let volume = ExactSum.of(s.volume).text  // 710.971, not 710.9709999999974
            let open = s.open.first ?? .nan, close = s.close.last ?? .nan
            let ret = open != 0 ? close / open - 1 : Double.nan
            let first = s.start.first.map(String.init) ?? "", last = s.end.last.map(String.init) ?? ""
            return "\(s.symbol),\(s.timeframe),\(s.count),\(first),\(last),\(f(open)),\(f(close)),\(f(ret)),"
                + "\(f(high.isFinite ? high : .nan)),\(f(low.isFinite ? low : .nan)),\(volume),\(anomalies[s.symbol] ?? 0)"
        }
    }

    static func tfSeconds(_ s: String) -> Int {
        guard let u = s.last, let n = Int(s.dropLast()) else { return Int.max }
        switch u { case "s": return n; case "m": return n * 60; case "h": return n * 3600; case "d": return n * 86400; default: return Int.max }
    }

    /// Writes `index.html` and `summary.csv`; returns the HTML path.
    @discardableResult
    public static func write(runDir: String) throws -> String {
        guard let chartJS = try? String(contentsOfFile: chartJSPath, encoding: .utf8) else {
            throw ReportError("\(chartJSPath) not found: install the Debian package libjs-chart.js (apt-get install libjs-chart.js)")
        }
        let fm = FileManager.default
        guard fm.fileExists(atPath: runDir + "/bars.csv") || fm.fileExists(atPath: runDir + "/summary.json") else {
            throw ReportError("\(runDir): not a run folder (no summary.json or bars.csv)")
        }
        let series = ReportSeries.load(runDir: runDir, displayLimit: maxCandles)
        let rows = summaryRows(series: series, runDir: runDir)
        try ([summaryHeader] + rows).map { $0 + "\n" }.joined().write(toFile: runDir + "/summary.csv", atomically: true, encoding: .utf8)

        var summary: [String: Any] = [:]
        if let d = fm.contents(atPath: runDir + "/summary.json"),
           let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { summary = j }
        var meta: [String: Any] = [:]
        if let d = fm.contents(atPath: runDir + "/model/model.meta.json"),
           let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { meta = j }
        // The model's horizon, as training writes it in the meta (docs/model.md): `target.horizon_bars`.
        var horizon = 1
        if let target = meta["target"] as? [String: Any], let h = target["horizon_bars"] as? Int, h >= 1 { horizon = h }

        // The backtest section (runs with trading: equity.csv has total rows).
        let backtest = ReportBacktest.load(runDir: runDir, summary: summary)

        var predictionCount = 0
        var js: [UInt8] = []
        // About 150 bytes per kept bar (time, OHLCV, nine indicators): one allocation for the whole page data.
        js.reserveCapacity(series.reduce(1 << 16) { $0 + min($1.count, maxCandles) * 160 })
        js += Array("const SERIES={".utf8)
        for (n, full) in series.enumerated() {
            if n > 0 { js += Array(",\n".utf8) }
            let (shown, barsPerCandle) = full.downsampled(limit: maxCandles)
            let spanMs = Double(tfSeconds(full.timeframe) == Int.max ? 0 : tfSeconds(full.timeframe) * 1000 * barsPerCandle)
            js += Array("\"\(jsString(full.key))\":{\"tf\":\"\(jsString(full.timeframe))\",\"k\":\(barsPerCandle),\"span\":".utf8)
            appendNumber(spanMs, to: &js)
            // The columns are independent: rendered concurrently (the page of a month of 1-minute bars
            // is mostly these numbers), then appended in their fixed order.
            var columns: [(String, [Double], Int?)] = [
                ("t", shown.start.map { Double($0 / 1_000_000) }, nil), ("o", shown.open, nil), ("h", shown.high, nil),
                ("l", shown.low, nil), ("c", shown.close, nil), ("v", shown.volume, 8),
            ]
            for (j, name) in ReportSeries.indicatorNames.enumerated() { columns.append((name, shown.indicators[j], 7)) }
            let rendered = renderConcurrently(columns.count) { i in
                var out: [UInt8] = []
                out.reserveCapacity(columns[i].1.count * 10 + 16)
                appendArray(columns[i].0, columns[i].1, digits: columns[i].2, to: &out)
                return out
            }
            for part in rendered { js += part }
            // Prediction at bar t against the realised log(close[t+h] / close[t]) (h = model horizon), on
            // every bar (before any merging), then thinned to at most maxCandles points.
            let predicted = full.prediction.indices.filter { full.prediction[$0].isFinite }
            if !predicted.isEmpty {
                predictionCount += predicted.count
                let step = max(1, (predicted.count + maxCandles - 1) / maxCandles)
                let kept = predicted.indices.filter { $0 % step == 0 || $0 == predicted.count - 1 }.map { predicted[$0] }
                var realised: [Double] = []
                for i in kept {
                    let later = i + horizon < full.count ? full.close[i + horizon] : Double.nan
                    realised.append(Foundation.log(later / full.close[i]))
                }
                js += Array(",\"pt\":[".utf8)
                js += Array(kept.map { String(full.end[$0]) }.joined(separator: ",").utf8)
                js += Array("]".utf8)
                appendArray("pred", kept.map { full.prediction[$0] }, digits: nil, to: &js)
                appendArray("real", realised, digits: nil, to: &js)
            }
            // The symbol's fills per kept candle (buy ▲ / sell ▼ markers on the chart).
            backtest?.appendFillMarkers(symbol: full.symbol, starts: shown.start, to: &js)
            js += Array("}".utf8)
        }
        js += Array("};\nconst ANOMS=[".utf8)
        var anomalyCount = 0
        var anomalyColumns: [Int]? = nil
        _ = ReportSeries.stream(runDir + "/anomalies.csv") { header, row in
            if let header = header {
                let names = ["symbol", "time_ns", "rule", "value", "threshold", "severity"]
                let found = names.compactMap { ReportSeries.column($0, in: header, of: "anomalies") }
                anomalyColumns = found.count == names.count ? found : nil
                return
            }
            guard let c = anomalyColumns, let time = row.int(c[1]) else { return }
            if anomalyCount > 0 { js.append(UInt8(ascii: ",")) }
            anomalyCount += 1
            js += Array("[\"\(jsString(row.string(c[0])))\",".utf8)
            appendNumber(Double(time / 1_000_000), to: &js)
            js += Array(",\"\(jsString(row.string(c[2])))\",".utf8)
            appendNumber(HumanUnits.significant(row.double(c[3]) ?? .nan, 6), to: &js)
            js.append(UInt8(ascii: ","))
            appendNumber(HumanUnits.significant(row.double(c[4]) ?? .nan, 6), to: &js)
            js += Array(",\"\(jsString(row.string(c[5])))\"]".utf8)
        }
        js += Array("];\nconst TICKS={".utf8)
        // The tick view's buckets (captures only: a bar-file run has no tick_series.csv, and no view).
        let ticks = ReportTicks.load(runDir: runDir)
        for (n, one) in ticks.enumerated() {
            if n > 0 { js += Array(",\n".utf8) }
            one.appendJS(to: &js)
        }
        js += Array("};\n".utf8)
        if let backtest { backtest.appendChartData(to: &js) } else { js += Array("const BACKTEST=null;\n".utf8) }

        var h = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Tape report</title>\n<style>\(style)</style>\n"
        h += "<script>window.__errors=[];window.onerror=function(m){window.__errors.push(String(m));document.documentElement.setAttribute('data-errors',window.__errors.join(' | '));};</script>\n"
        h += "<script>\n\(chartJS)\n</script>\n</head><body>\n<h1>Tape run report</h1>\n"
        if let digest = summary["digest"] as? String { h += "<p class=\"digest\">digest <code>\(esc(digest))</code></p>\n" }
        if let backtest { h += backtest.html() }
        var symbols: [String] = []
        for s in series where symbols.last != s.symbol { symbols.append(s.symbol) }
        let tickSymbols = Set(ticks.map(\.symbol))
        for (index, symbol) in symbols.enumerated() {
            let options = series.filter { $0.symbol == symbol }
                .map { "<option value=\"\(esc($0.key))\">\(esc($0.timeframe)) (\(grouped($0.count)) bars)</option>" }.joined()
            h += """
            <section class="sym" data-idx="\(index)" data-sym="\(esc(symbol))"><h2>\(esc(symbol))</h2>
            <div class="toolbar"><label>Timeframe <select>\(options)</select></label>
            <button class="zin" title="zoom in">+</button><button class="zout" title="zoom out">−</button><button class="zall">All</button>
            <span class="range"></span></div>
            <div class="hint">Wheel: zoom at the cursor · drag: pan · double-click: all. Times are UTC. <span class="agg"></span></div>
            <canvas class="tape"></canvas><div class="xaxis"></div><div class="info">&nbsp;</div>
            <h3>Anomalies</h3><label><input type="checkbox" class="inrange" checked> only in the shown range</label>
            <table class="anoms"><thead><tr><th>time (UTC)</th><th>rule</th><th>value</th><th>threshold</th><th>severity</th></tr></thead><tbody></tbody></table>
            <div class="pager"><button class="prev">‹ previous</button> <span class="pageinfo"></span> <button class="next">next ›</button></div>
            \(tickSymbols.contains(symbol) ? tickView(symbol) : "")</section>

            """
        }
        // Symbols with ticks but no bars (quotes only): the tick view alone.
        for one in ticks where !symbols.contains(one.symbol) {
            h += "<section class=\"symticks\" data-sym=\"\(esc(one.symbol))\"><h2>\(esc(one.symbol))</h2>\(tickView(one.symbol))</section>\n"
        }
        h += runSummaryHTML(summary)
        h += "<h2>Per symbol and timeframe</h2><table class=\"num\"><tr><th>symbol</th><th>timeframe</th><th>bars</th>"
            + "<th>first bar start (UTC)</th><th>last bar end (UTC)</th><th>open</th><th>close</th><th>return</th><th>high</th>"
            + "<th>low</th><th>volume</th><th>anomalies</th></tr>\n"
        // Rows are in the order of `series`; the volume shown to at most 15 significant digits (its
        // integer part whole), summary.csv having every digit.
        for (r, volumeText) in zip(rows, series.map { ExactSum.of($0.volume).text(significantDigitsMax: 15) }) {
            let c = r.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard c.count == 12 else { continue }
            let ret = Double(c[7]).map { HumanUnits.text($0 * 100, digits: 3) + " %" } ?? "—"
            let cells = [esc(c[0]), esc(c[1]), grouped(Int(c[2]) ?? 0), timeCell(c[3]), timeCell(c[4]), numberCell(c[5], 8),
                         numberCell(c[6], 8), ret, numberCell(c[8], 8), numberCell(c[9], 8), groupedDecimal(volumeText), esc(c[11])]
            h += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        h += "</table>\n<p class=\"note\">summary.csv has these rows with every digit.</p>\n"
        h += ticksTableHTML(ticks)
        if predictionCount > 0 {
            h += "<h2>Predictions</h2><p>\(grouped(predictionCount)) predictions (predictions.csv); charted per symbol "
                + "against the realised log return over \(horizon) bar(s).</p>\n"
        }
        let training = TrainingReport.load(runDir: runDir, meta: meta)
        var trainingScript = ""
        if let t = training {
            h += t.html
            trainingScript = t.script
        }
        h += "<script>\n"
        let head = Array(h.utf8)
        var tail = "\(ReportScript.chart)\n\(ReportScript.ticks)\n\(ReportScript.backtest)\n\(trainingScript)\n"
        tail += "document.documentElement.setAttribute('data-charts',String(created));\n"
        tail += "document.documentElement.setAttribute('data-ok','1');\n</script>\n</body></html>\n"
        try writeFile(runDir + "/index.html", parts: [head, js, Array(tail.utf8)])
        return runDir + "/index.html"
    }

    /// `count` byte buffers made by `make` on up to all cores, in index order.
    static func renderConcurrently(_ count: Int, _ make: (Int) -> [UInt8]) -> [[UInt8]] {
        let results = UnsafeMutableBufferPointer<[UInt8]>.allocate(capacity: count)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        // Each iteration writes only its own slot.
        DispatchQueue.concurrentPerform(iterations: count) { i in results[i] = make(i) }
        return Array(results)
    }

    /// Writes `parts` one after another into a new file at `path` (no joined copy of a large page);
    /// a failed write throws.
    static func writeFile(_ path: String, parts: [[UInt8]]) throws {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else { throw ReportError("cannot create \(temporary)") }
        do {
            for part in parts { try handle.write(contentsOf: part) }
            try handle.close()
        } catch {
            try? handle.close()
            throw ReportError("cannot write \(temporary): \(error)")
        }
        // rename(2) replaces a file atomically and refuses to replace a directory (never removed here).
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw ReportError("cannot write \(path): \(reason)")
        }
    }

    /// Most candles kept per series in the page (merged beyond: see `ReportSeries.downsampled`): a month
    /// of 1-minute bars (45k) is shown as 3-minute candles at the deepest zoom of its 1m series (its 5m and
    /// 15m series keep every bar), so the page stays light and quick to build. bars.csv keeps everything.
    public static let maxCandles = 20_000

    static let style = """
    body{font-family:system-ui,sans-serif;margin:1em;color:#263238;max-width:1400px}table{border-collapse:collapse;font-size:12px;margin:.4em 0}
    td,th{border:1px solid #cfd8dc;padding:2px 8px}th{background:#eceff1;text-align:left}table.num td{text-align:right;font-variant-numeric:tabular-nums}
    section.sym{position:relative;margin-bottom:2em}canvas.tape{display:block;cursor:crosshair;border:0}
    .xaxis{position:relative;height:20px;font:11px sans-serif;color:#37474f}.xlabel{position:absolute;top:5px;white-space:nowrap}
    .xtick{position:absolute;top:0;width:1px;height:4px;background:#90a4ae}.info{font:12px monospace;color:#455a64;min-height:1.3em}
    .toolbar{display:flex;gap:.5em;align-items:center}.toolbar button{min-width:2.2em}.range,.hint,.note{font-size:12px;color:#607d8b}
    table.anoms th{cursor:pointer}table.anoms th[data-sort=asc]::after{content:' ▲'}table.anoms th[data-sort=desc]::after{content:' ▼'}
    section.backtest{margin-bottom:2em}.btchart{position:relative;margin-top:.6em}canvas.equity{display:block;cursor:crosshair}
    table.monthly td.pos{background:#e8f5e9;color:#1b5e20}table.monthly td.neg{background:#ffebee;color:#b71c1c}
    div.scroll{max-height:420px;overflow-y:auto;display:inline-block}table.trades tr.buy td:nth-child(3){color:#1565c0}table.trades tr.sell td:nth-child(3){color:#e65100}
    .warn{background:#fff3e0;border:1px solid #ffb74d;padding:.5em 1em}canvas.ticks{display:block;cursor:crosshair}.chartbox{position:relative;height:260px;max-width:1100px}
    """

    /// The tick view of one symbol (drawn by `ReportScript.ticks` from `TICKS`).
    static func tickView(_ symbol: String) -> String {
        """
        <div class="tickview" data-sym="\(esc(symbol))"><h3>Ticks</h3>
        <div class="toolbar"><button class="zin" title="zoom in">+</button><button class="zout" title="zoom out">−</button><button class="zall">All</button>
        <span class="range"></span></div>
        <div class="hint">Trades and the bid–ask band over time (receive time, UTC), from tick_series.csv. Wheel: zoom · drag: pan · double-click: all.</div>
        <canvas class="ticks"></canvas><div class="xaxis"></div><div class="info">&nbsp;</div></div>

        """
    }

    /// Trades, volume and quotes per symbol from `tick_series.csv` (nothing for a bar-file run).
    static func ticksTableHTML(_ ticks: [ReportTicks]) -> String {
        guard !ticks.isEmpty else { return "" }
        var h = "<h2>Ticks per symbol</h2><table class=\"num\"><tr><th>symbol</th><th>trades</th><th>volume</th><th>quotes</th>"
            + "<th>first bucket (UTC)</th><th>last bucket end (UTC)</th><th>bucket width</th></tr>\n"
        for one in ticks {
            let first = one.start.first.map { esc(HumanUnits.time($0)) } ?? "—"
            let last = one.start.last.map { esc(HumanUnits.time($0 + one.widthNanos)) } ?? "—"
            let cells = [esc(one.symbol), grouped(Int(one.tradeCount)), groupedDecimal(one.volume.text(significantDigitsMax: 15)), grouped(Int(one.quoteCount)),
                         first, last, HumanUnits.text(Double(one.widthNanos) / 1e6, digits: 6) + " ms"]
            h += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        return h + "</table>\n"
    }

    /// The run summary as a table of human units.
    static func runSummaryHTML(_ summary: [String: Any]) -> String {
        var h = "<h2>Run summary</h2>\n<table>\n"
        func row(_ name: String, _ value: String) { h += "<tr><th>\(esc(name))</th><td>\(value)</td></tr>\n" }
        for key in ["digest", "config_hash"] { if let v = summary[key] as? String { row(key, "<code>\(esc(v))</code>") } }
        for key in ["ticks_in", "ticks_rejected", "events_out"] { if let v = summary[key] as? NSNumber { row(key, grouped(v.intValue)) } }
        for key in ["from_ns", "to_ns", "first_event_ns", "last_event_ns"] {
            if let v = summary[key] as? NSNumber { row(key.replacingOccurrences(of: "_ns", with: "") + " (UTC)", esc(HumanUnits.time(v.int64Value))) }
        }
        if let v = summary["wall_seconds"] as? NSNumber { row("wall time", HumanUnits.text(v.doubleValue, digits: 3) + " s") }
        if let v = summary["ticks_per_second"] as? NSNumber { row("throughput", grouped(Int(v.doubleValue.rounded())) + " ticks/s") }
        if let v = summary["speed"] { row("speed", esc(jsonText(v))) }
        if let v = summary["exit_code"] { row("exit code", esc(jsonText(v))) }
        for key in ["ticks_rejected_by_reason", "skipped", "events_out_by_kind"] {
            if let d = summary[key] as? [String: Any] {
                row(key, d.keys.sorted().map { k in
                    let value = (d[k] as? NSNumber).map { grouped($0.intValue) } ?? esc(jsonText(d[k]!))
                    return "\(esc(k)): \(value)"
                }.joined(separator: "<br>"))
            }
        }
        h += "</table>\n"
        if let inputs = summary["inputs"] as? [[String: Any]] {
            h += "<h2>Inputs</h2><table><tr><th>path</th><th>format</th><th>events</th><th>sha256</th></tr>\n"
            for i in inputs {
                let events = (i["events"] as? NSNumber).map { grouped($0.intValue) } ?? ""
                h += "<tr><td>\(esc(jsonText(i["path"] ?? "")))</td><td>\(esc(jsonText(i["format"] ?? "")))</td><td>\(events)</td>"
                    + "<td><code>\(esc(jsonText(i["sha256"] ?? "")))</code></td></tr>\n"
            }
            h += "</table>\n"
        }
        return h
    }

    /// `12,345,678`.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// A decimal's text with thousands separators in its integer part (`119,923,370,570.207`): volumes,
    /// shown with every digit of their exact sum.
    static func groupedDecimal(_ text: String) -> String {
        guard !text.isEmpty, text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) else { return esc(text) }
        let negative = text.hasPrefix("-")
        let body = negative ? String(text.dropFirst()) : text
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        var integer = ""
        for (i, ch) in parts[0].enumerated() {
            if i > 0 && (parts[0].count - i) % 3 == 0 { integer.append(",") }
            integer.append(ch)
        }
        return (negative ? "-" : "") + integer + (parts.count > 1 ? "." + parts[1] : "")
    }

    static func timeCell(_ ns: String) -> String { Int64(ns).map { esc(HumanUnits.time($0)) } ?? esc(ns) }
    static func numberCell(_ text: String, _ digits: Int) -> String { Double(text).map { HumanUnits.text($0, digits: digits) } ?? esc(text) }

    /// A JavaScript string literal's contents (inside double quotes).
    static func jsString(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "<": out += "\\u003c"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// A number for the page's data (`null` for NaN and infinities).
    static func appendNumber(_ value: Double, to out: inout [UInt8]) {
        if value.isFinite { Numbers.append(value, to: &out) } else { out += Array("null".utf8) }
    }

    /// `,"name":[v,…]`, each value rounded to `digits` significant digits (nil: as it is).
    static func appendArray(_ name: String, _ values: [Double], digits: Int?, to out: inout [UInt8]) {
        out += Array(",\"\(name)\":[".utf8)
        var exponentGuess = Int.min
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            if let digits {
                DisplayNumbers.appendSignificant(value, digits: digits, exponentGuess: &exponentGuess, to: &out)
            } else {
                appendNumber(value, to: &out)
            }
        }
        out.append(UInt8(ascii: "]"))
    }

    static func jsonText(_ v: Any) -> String {
        if let s = v as? String { return s }
        if let n = v as? NSNumber { return n.stringValue }
        if v is NSNull { return "—" }
        // data(withJSONObject:) traps (not throws) on a top-level fragment: check first.
        if JSONSerialization.isValidJSONObject(v),
           let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]), let s = String(data: d, encoding: .utf8) { return s }
        return "\(v)"
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
