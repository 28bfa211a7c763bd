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
    /// Max points per chart series; longer series are downsampled deterministically (every k-th bar, last kept).
    public static let maxPoints = 1500

    public static let summaryHeader = "symbol,timeframe,bars,first_start_ns,last_end_ns,open,close,return,high,low,volume,anomalies"

    /// Rows of `summary.csv` (one per symbol×timeframe, sorted by symbol then timeframe length).
    public static func summaryRows(runDir: String) -> [String] {
        guard let bars = CSVTable.load(runDir + "/bars.csv"), let b = BarColumns(bars) else { return [] }
        var anomCount: [String: Int] = [:]
        if let anoms = CSVTable.load(runDir + "/anomalies.csv"), let symbol = anoms.column("symbol", of: "anomalies") {
            for r in anoms.rows { anomCount[r[symbol], default: 0] += 1 }
        }
        struct Acc {
            var n = 0; var first = ""; var last = ""; var open = 0.0; var close = 0.0
            var hi = -Double.infinity; var lo = Double.infinity; var vol = 0.0
        }
        var acc: [String: Acc] = [:]
        var keys: [(String, String)] = []
        for r in bars.rows {
            let k = r[b.symbol] + "|" + r[b.timeframe]
            if acc[k] == nil { keys.append((r[b.symbol], r[b.timeframe])); acc[k] = Acc() }
            var a = acc[k]!
            let o = Double(r[b.open]) ?? .nan, h = Double(r[b.high]) ?? .nan
            let l = Double(r[b.low]) ?? .nan, c = Double(r[b.close]) ?? .nan
            if a.n == 0 { a.first = r[b.start]; a.open = o }
            a.n += 1; a.last = r[b.end]; a.close = c
            a.hi = max(a.hi, h); a.lo = min(a.lo, l)
            if let v = Double(r[b.volume]) { a.vol += v }
            acc[k] = a
        }
        keys.sort { $0.0 != $1.0 ? $0.0 < $1.0 : (tfSeconds($0.1) < tfSeconds($1.1)) }
        let f = Numbers.format
        return keys.map { (s, tf) in
            let a = acc[s + "|" + tf]!
            let ret = a.open != 0 ? a.close / a.open - 1 : Double.nan
            return "\(s),\(tf),\(a.n),\(a.first),\(a.last),\(f(a.open)),\(f(a.close)),\(f(ret)),\(f(a.hi)),\(f(a.lo)),\(f(a.vol)),\(anomCount[s] ?? 0)"
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
        let rows = summaryRows(runDir: runDir)
        try ([summaryHeader] + rows).map { $0 + "\n" }.joined().write(toFile: runDir + "/summary.csv", atomically: true, encoding: .utf8)

        var summary: [String: Any] = [:]
        if let d = fm.contents(atPath: runDir + "/summary.json"),
           let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { summary = j }

        let bars = CSVTable.load(runDir + "/bars.csv") ?? CSVTable(text: "")
        let ind = CSVTable.load(runDir + "/indicators.csv") ?? CSVTable(text: "")
        let anoms = CSVTable.load(runDir + "/anomalies.csv") ?? CSVTable(text: "")
        let preds = CSVTable.load(runDir + "/predictions.csv")
        let evalT = CSVTable.load(runDir + "/model/evaluation.csv") ?? CSVTable.load(runDir + "/evaluation.csv")
        // Every column is found by name in its file's header (GraphOutput.csvHeaders is the schema).
        var predByKey: [String: [String: String]] = [:]
        if let p = preds, let key = BarKeyColumns(p, kind: "predictions"),
           let prediction = p.column("prediction", of: "predictions") {
            for r in p.rows { predByKey[key.series(r), default: [:]][r[key.end]] = r[prediction] }
        }
        // The model's horizon, as training writes it in the meta (docs/model.md): `target.horizon_bars`.
        var horizon = 1
        if let d = fm.contents(atPath: runDir + "/model/model.meta.json"),
           let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
           let target = j["target"] as? [String: Any], let h = target["horizon_bars"] as? Int, h >= 1 {
            horizon = h
        }
        let names = ["sma", "ema", "rsi", "macd", "macd_signal", "macd_hist", "bb_middle", "bb_upper", "bb_lower"]
        var indByKey: [String: [String: [String]]] = [:]
        var indColumns: [Int?] = names.map { _ in nil }
        if let key = BarKeyColumns(ind, kind: "indicators") {
            indColumns = names.map { ind.column($0, of: "indicators") }
            for r in ind.rows { indByKey[key.series(r), default: [:]][r[key.end]] = r }
        }
        let barColumns = BarColumns(bars)
        var grouped: [String: [[String]]] = [:]
        var order: [String] = []
        if let b = barColumns {
            for r in bars.rows {
                let k = r[b.symbol] + "|" + r[b.timeframe]
                if grouped[k] == nil { order.append(k) }
                grouped[k, default: []].append(r)
            }
        }
        order.sort { a, b in
            let pa = a.split(separator: "|").map(String.init), pb = b.split(separator: "|").map(String.init)
            return pa[0] != pb[0] ? pa[0] < pb[0] : tfSeconds(pa[1]) < tfSeconds(pb[1])
        }
        func num(_ s: String) -> String { (s.isEmpty || Double(s) == nil || !Double(s)!.isFinite) ? "null" : s }
        var js = "const SERIES={"
        var parts: [String] = []
        for k in order {
            let b = barColumns!   // series exist only when bars.csv has its columns
            let rs = grouped[k]!
            let step = max(1, (rs.count + maxPoints - 1) / maxPoints)
            var cols: [String: [String]] = [:]
            let ik = indByKey[k] ?? [:]
            for (n, r) in rs.enumerated() where n % step == 0 || n == rs.count - 1 {
                cols["t", default: []].append(r[b.end])
                cols["hl", default: []].append("[\(num(r[b.low])),\(num(r[b.high]))]")
                cols["close", default: []].append(num(r[b.close]))
                let i = ik[r[b.end]]
                for (j, nm) in names.enumerated() {
                    let value = i.flatMap { row in indColumns[j].map { num(row[$0]) } }
                    cols[nm, default: []].append(value ?? "null")
                }
            }
            if let pk = predByKey[k] {
                // Prediction at bar t vs realised log(close[t+h] / close[t]) (h = model horizon), on all
                // bars, then downsampled.
                var pc: [String] = [], rc: [String] = [], pt: [String] = []
                for (n, r) in rs.enumerated() {
                    guard let p = pk[r[b.end]] else { continue }
                    let c0 = Double(r[b.close]) ?? .nan
                    let c1 = n + horizon < rs.count ? (Double(rs[n + horizon][b.close]) ?? .nan) : .nan
                    let real = log(c1 / c0)
                    pt.append(r[b.end]); pc.append(num(p)); rc.append(real.isFinite ? Numbers.format(real) : "null")
                }
                let pstep = max(1, (pt.count + maxPoints - 1) / maxPoints)
                let keep = pt.indices.filter { $0 % pstep == 0 || $0 == pt.count - 1 }
                cols["pt"] = keep.map { pt[$0] }; cols["pred"] = keep.map { pc[$0] }; cols["real"] = keep.map { rc[$0] }
            }
            parts.append("\"\(k)\":{" + cols.keys.sorted().map { "\"\($0)\":[\(cols[$0]!.joined(separator: ","))]" }.joined(separator: ",") + "}")
        }
        js += parts.joined(separator: ",\n") + "};\nconst ANOMS=["
        if let symbol = anoms.column("symbol", of: "anomalies"), let time = anoms.column("time_ns", of: "anomalies"),
           let rule = anoms.column("rule", of: "anomalies") {
            js += anoms.rows.map { "[\"\(esc($0[symbol]))\",\($0[time]),\"\(esc($0[rule]))\"]" }.joined(separator: ",")
        }
        js += "];\n"

        var h = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Tape report</title>\n"
        h += "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}.c{position:relative;height:320px;width:1100px}.s{position:relative;height:160px;width:1100px}</style>\n"
        h += "<script>window.__errors=[];window.onerror=function(m){window.__errors.push(String(m));document.documentElement.setAttribute('data-errors',window.__errors.join(' | '));};</script>\n"
        h += "<script>\n\(chartJS)\n</script>\n</head><body>\n<h1>Tape run report</h1>\n"
        var symOrder: [String] = []
        for k in order { let sy = String(k.split(separator: "|")[0]); if symOrder.last != sy { symOrder.append(sy) } }
        for (si, sy) in symOrder.enumerated() {
            let tfs = order.filter { $0.hasPrefix(sy + "|") }
            h += "<section class=\"sym\" data-sym=\"\(esc(sy))\"><h2>\(esc(sy))</h2>\n"
            h += "<label>Timeframe: <select id=\"sel\(si)\" data-idx=\"\(si)\">" + tfs.map { "<option value=\"\(esc($0))\">\(esc(String($0.split(separator: "|")[1])))</option>" }.joined() + "</select></label>\n"
            h += "<div class=\"c\"><canvas id=\"price\(si)\"></canvas></div><div class=\"s\"><canvas id=\"rsi\(si)\"></canvas></div><div class=\"s\"><canvas id=\"macd\(si)\"></canvas></div>"
            h += "<div class=\"s\"><canvas id=\"pred\(si)\"></canvas></div>\n</section>\n"
        }
        h += "<h2>Summary</h2>\n<table>\n"
        for key in ["digest", "ticks_in", "ticks_rejected", "events_out", "speed", "wall_seconds", "ticks_per_second", "from_ns", "to_ns", "config_hash", "exit_code"] {
            if let v = summary[key] { h += "<tr><th>\(key)</th><td>\(esc(jsonText(v)))</td></tr>\n" }
        }
        for key in ["ticks_rejected_by_reason", "skipped", "events_out_by_kind"] {
            if let d = summary[key] as? [String: Any] {
                h += "<tr><th>\(key)</th><td>" + d.keys.sorted().map { "\(esc($0)): \(esc(jsonText(d[$0]!)))" }.joined(separator: "<br>") + "</td></tr>\n"
            }
        }
        h += "</table>\n"
        if let inputs = summary["inputs"] as? [[String: Any]] {
            h += "<h2>Inputs</h2><table><tr><th>path</th><th>format</th><th>sha256</th></tr>\n"
            for i in inputs { h += "<tr><td>\(esc(jsonText(i["path"] ?? "")))</td><td>\(esc(jsonText(i["format"] ?? "")))</td><td>\(esc(jsonText(i["sha256"] ?? "")))</td></tr>\n" }
            h += "</table>\n"
        }
        h += "<h2>Per symbol and timeframe</h2><table><tr>" + summaryHeader.split(separator: ",").map { "<th>\($0)</th>" }.joined() + "</tr>\n"
        for r in rows { h += "<tr>" + r.split(separator: ",", omittingEmptySubsequences: false).map { "<td>\(esc(String($0)))</td>" }.joined() + "</tr>\n" }
        h += "</table>\n"
        h += "<h2>Anomalies (\(anoms.rows.count))</h2><table><tr>" + anoms.header.map { "<th>\(esc($0))</th>" }.joined() + "</tr>\n"
        for r in anoms.rows.prefix(500) { h += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n" }
        h += "</table>\n"
        if let p = preds { h += "<h2>Predictions</h2><p>\(p.rows.count) predictions (predictions.csv); charted per symbol against the realised log return over \(horizon) bar(s).</p>\n" }
        if let e = evalT {
            h += "<h2>Evaluation</h2><table><tr>" + e.header.map { "<th>\(esc($0))</th>" }.joined() + "</tr>\n"
            for r in e.rows { h += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n" }
            h += "</table>\n"
        }
        h += "<script>\n" + js + chartCode + "\n</script>\n</body></html>\n"
        try h.write(toFile: runDir + "/index.html", atomically: true, encoding: .utf8)
        return runDir + "/index.html"
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

    static let chartCode = #"""
const charts={};
let created=0;
function fmt(ns){return new Date(Number(ns)/1e6).toISOString().slice(0,16).replace('T',' ');}
function draw(idx,key){
  (charts[idx]||[]).forEach(c=>c.destroy()); charts[idx]=[];
  const s=SERIES[key]; if(!s) return;
  const sym=key.split('|')[0];
  const labels=s.t.map(fmt);
  const an=s.close.map(()=>null);
  ANOMS.filter(a=>a[0]===sym).forEach(a=>{let best=s.t.length-1;for(let i=0;i<s.t.length;i++){if(Number(s.t[i])>=a[1]){best=i;break;}} if(best>=0) an[best]=s.close[best];});
  const common={animation:false,responsive:true,maintainAspectRatio:false,plugins:{legend:{display:true}},scales:{x:{ticks:{maxRotation:0,autoSkip:true,maxTicksLimit:12}},y:{beginAtZero:false}}};
  const add=(id,cfg)=>{charts[idx].push(new Chart(document.getElementById(id+idx),cfg)); created++;};
  add('price',{data:{labels,datasets:[
    {type:'bar',label:'low-high',data:s.hl,backgroundColor:'rgba(100,100,200,0.6)'},
    {type:'line',label:'close',data:s.close,borderColor:'#000',pointRadius:0,borderWidth:1},
    {type:'line',label:'SMA',data:s.sma,borderColor:'#e67e22',pointRadius:0,borderWidth:1},
    {type:'line',label:'EMA',data:s.ema,borderColor:'#27ae60',pointRadius:0,borderWidth:1},
    {type:'line',label:'BB upper',data:s.bb_upper,borderColor:'#95a5a6',pointRadius:0,borderWidth:1},
    {type:'line',label:'BB middle',data:s.bb_middle,borderColor:'#bdc3c7',pointRadius:0,borderWidth:1,borderDash:[4,4]},
    {type:'line',label:'BB lower',data:s.bb_lower,borderColor:'#95a5a6',pointRadius:0,borderWidth:1},
    {type:'line',label:'anomaly',data:an,showLine:false,pointRadius:3,pointBackgroundColor:'red',borderColor:'red'}]},options:common});
  add('rsi',{type:'line',data:{labels,datasets:[{label:'RSI',data:s.rsi,borderColor:'#8e44ad',pointRadius:0,borderWidth:1}]},options:Object.assign({},common,{scales:{x:common.scales.x,y:{min:0,max:100}}})});
  add('macd',{data:{labels,datasets:[
    {type:'bar',label:'hist',data:s.macd_hist,backgroundColor:'#bbb'},
    {type:'line',label:'MACD',data:s.macd,borderColor:'#2980b9',pointRadius:0,borderWidth:1},
    {type:'line',label:'signal',data:s.macd_signal,borderColor:'#c0392b',pointRadius:0,borderWidth:1}]},options:common});
  const pc=document.getElementById('pred'+idx).parentNode;
  if(s.pt){
    pc.style.display='';
    add('pred',{type:'line',data:{labels:s.pt.map(fmt),datasets:[
      {label:'realised log return',data:s.real,borderColor:'#7f8c8d',pointRadius:0,borderWidth:1},
      {label:'prediction',data:s.pred,borderColor:'#d35400',pointRadius:0,borderWidth:1}]},options:common});
  } else { pc.style.display='none'; }
}
document.querySelectorAll('select[data-idx]').forEach(sel=>{
  const idx=sel.getAttribute('data-idx');
  if(sel.value) draw(idx,sel.value);
  sel.addEventListener('change',()=>draw(idx,sel.value));
});
document.documentElement.setAttribute('data-charts',String(created));
document.documentElement.setAttribute('data-ok','1');
"""#
}
