import XCTest
import TapeTestSupport
import TapeCore
import TapeGraph
import TapeReplay
import Foundation
import TapeReports
import TapeScenarios

/// The report as a trader opens it, in headless Chromium: a month of real 1-minute bars and a few
/// minutes of a real tick capture. A probe script (the test's, appended to a copy of the page) checks
/// that every canvas is drawn, measures the time-axis labels' boxes as the browser laid them out
/// (none may overlap) and zooms each price chart to the whole range, a middle stretch and the last
/// 60 candles, checking that candles, indicators and labels are drawn at every level; the capture's tick
/// view (trades, bid–ask band, counts) likewise at all, a middle stretch and the last 20 buckets, and the
/// bar file's page has none. Screenshots go to `$TMPDIR/tape-report-screenshots/`.
final class ReportBrowserTests: XCTestCase {
    static let chromium = "/usr/bin/chromium"
    var root: URL {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { url = url.deletingLastPathComponent() }
        return url
    }
    var shared: URL { root.deletingLastPathComponent().appendingPathComponent("shared/data") }

    static let probe = """
    <script>
    (function(){
      const root=document.documentElement;
      function drawn(c){if(!c.width||!c.height)return false;const d=c.getContext('2d').getImageData(0,0,c.width,c.height).data;
        const seen=new Set();for(let i=0;i<d.length;i+=4*89){seen.add((d[i]<<16)|(d[i+1]<<8)|d[i+2]);if(seen.size>6)return true;}return false;}
      function overlaps(){const boxes=[...document.querySelectorAll('.xlabel')].map(e=>e.getBoundingClientRect());let n=0;
        for(let i=0;i<boxes.length;i++)for(let j=i+1;j<boxes.length;j++){const a=boxes[i],b=boxes[j];
          if(a.left<b.right&&b.left<a.right&&a.top<b.bottom&&b.top<a.bottom)n++;}return n;}
      const canvases=[...document.querySelectorAll('canvas')];
      root.setAttribute('data-probe-canvases',canvases.length+'/'+canvases.filter(drawn).length);
      let worst=0,minLabels=1e9,minIndicators=1e9,minCandles=1e9,levels=0;const fills=[];
      for(const c of window.tapeCharts||[]){for(const key of Object.keys(SERIES).filter(k=>k.split('|')[0]===c.section.getAttribute('data-sym'))){
        c.select.value=key;c.setSeries(key);const n=c.s.t.length;
        for(const [a,b] of [[0,n-1],[Math.floor(n/2)-Math.min(500,n>>2),Math.floor(n/2)+Math.min(500,n>>2)],[Math.max(0,n-60),n-1]]){
          // indicators need 20+ bars of history: checked on series of 60+ bars
          c.zoomTo(a,b);levels++;worst=Math.max(worst,overlaps());minLabels=Math.min(minLabels,c.stats.labels);
          // fills represented by the markers of the whole series, and the markers drawn (backtests)
          if(a===0&&b===n-1)fills.push(key+'='+c.stats.fills+'/'+c.stats.fillMarkers);
          if(n>=60)minIndicators=Math.min(minIndicators,c.stats.indicatorPoints);minCandles=Math.min(minCandles,c.stats.candles);}}
        c.select.value=c.select.options[0].value;c.setSeries(c.select.value);c.draw();}
      root.setAttribute('data-probe-levels',String(levels));root.setAttribute('data-probe-overlaps',String(worst));
      root.setAttribute('data-probe-min-labels',String(minLabels));root.setAttribute('data-probe-min-indicators',String(minIndicators));
      root.setAttribute('data-probe-min-candles',String(minCandles));root.setAttribute('data-probe-fills',fills.join(';'));
      // the backtest's equity and drawdown chart: all, a middle stretch, the last 60 points
      const bt=window.backtestChart;
      if(bt){const n=bt.s.t.length;let btLabels=1e9,btPoints=1e9,btMaxDrawdown=null;
        for(const [a,b] of [[0,n-1],[Math.floor(n/2)-Math.min(500,n>>2),Math.floor(n/2)+Math.min(500,n>>2)],[Math.max(0,n-60),n-1]]){
          bt.zoomTo(a,b);worst=Math.max(worst,overlaps());btLabels=Math.min(btLabels,bt.stats.labels);btPoints=Math.min(btPoints,bt.stats.points);
          if(btMaxDrawdown===null)btMaxDrawdown=bt.stats.maxDrawdown;}
        bt.zoomTo(0,n-1);
        root.setAttribute('data-probe-bt-min-labels',String(btLabels));root.setAttribute('data-probe-bt-min-points',String(btPoints));
        root.setAttribute('data-probe-bt-max-drawdown',String(btMaxDrawdown));}
      // the tick views (captures): all, a middle stretch, the last 20 buckets
      let tickLevels=0,tickLabels=1e9,tickTrades=1e9,tickBand=1e9,tickGroups=1e9;
      for(const c of window.tickCharts||[]){const n=c.s.t.length;
        for(const [a,b] of [[0,n-1],[Math.floor(n/2)-Math.min(100,n>>2),Math.floor(n/2)+Math.min(100,n>>2)],[Math.max(0,n-20),n-1]]){
          c.zoomTo(a,b);tickLevels++;worst=Math.max(worst,overlaps());tickLabels=Math.min(tickLabels,c.stats.labels);
          tickTrades=Math.min(tickTrades,c.stats.tradePoints);tickBand=Math.min(tickBand,c.stats.bandPoints);tickGroups=Math.min(tickGroups,c.stats.groups);}
        c.zoomTo(0,n-1);}
      root.setAttribute('data-probe-overlaps',String(worst));
      root.setAttribute('data-probe-tick-charts',String((window.tickCharts||[]).length));
      root.setAttribute('data-probe-tick-levels',String(tickLevels));root.setAttribute('data-probe-tick-min-labels',String(tickLabels));
      root.setAttribute('data-probe-tick-min-trades',String(tickTrades));root.setAttribute('data-probe-tick-min-band',String(tickBand));
      root.setAttribute('data-probe-tick-min-groups',String(tickGroups));
    })();
    </script>
    """

    func run(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The value of attribute `name` in the first tag after `marker`.
    func attribute(_ name: String, in dom: String, after marker: String) -> String? {
        guard let start = dom.range(of: marker) else { return nil }
        let tag = dom[start.lowerBound...].prefix { $0 != ">" }
        return attribute(name, in: String(tag))
    }

    func attribute(_ name: String, in dom: String) -> String? {
        guard let r = dom.range(of: "\(name)=\"") else { return nil }
        let rest = dom[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// Renders `html` with the probe; checks it; saves a screenshot as `<name>.png`. Returns the probed DOM.
    @discardableResult
    func check(_ html: String, name: String, minimumCharts: Int, tickCharts: Int = 0) throws -> String {
        let page = try String(contentsOfFile: html, encoding: .utf8)
        let probed = (html as NSString).deletingLastPathComponent + "/probe.html"
        try page.replacingOccurrences(of: "</body></html>", with: ReportBrowserTests.probe + "</body></html>")
            .write(toFile: probed, atomically: true, encoding: .utf8)
        let base = [Self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,2600",
                    "--virtual-time-budget=20000"]
        let dom = try run(base + ["--dump-dom", "file://" + probed])
        XCTAssertEqual(attribute("data-ok", in: dom), "1", "\(name): page did not finish")
        XCTAssertNil(attribute("data-errors", in: dom), "\(name): JS errors")
        let charts = Int(attribute("data-charts", in: dom) ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(charts, minimumCharts, "\(name): charts created")
        let canvases = (attribute("data-probe-canvases", in: dom) ?? "0/0").split(separator: "/").map { Int($0) ?? -1 }
        XCTAssertGreaterThan(canvases[0], 0, name)
        XCTAssertEqual(canvases[0], canvases[1], "\(name): \(canvases[0] - canvases[1]) canvases are blank")
        XCTAssertGreaterThanOrEqual(Int(attribute("data-probe-levels", in: dom) ?? "") ?? 0, 3, name)
        XCTAssertEqual(attribute("data-probe-overlaps", in: dom), "0", "\(name): time-axis labels overlap")
        XCTAssertGreaterThanOrEqual(Int(attribute("data-probe-min-labels", in: dom) ?? "") ?? 0, 2, "\(name): too few time labels")
        XCTAssertGreaterThan(Int(attribute("data-probe-min-indicators", in: dom) ?? "") ?? 0, 0, "\(name): indicators missing at a zoom level")
        XCTAssertGreaterThan(Int(attribute("data-probe-min-candles", in: dom) ?? "") ?? 0, 0, "\(name): no candles at a zoom level")
        // The tick view: present for captures only; trades, the bid–ask band and labels at every zoom level.
        XCTAssertEqual(Int(attribute("data-probe-tick-charts", in: dom) ?? ""), tickCharts, "\(name): tick views")
        if tickCharts > 0 {
            XCTAssertEqual(Int(attribute("data-probe-tick-levels", in: dom) ?? "") ?? 0, 3 * tickCharts, name)
            XCTAssertGreaterThanOrEqual(Int(attribute("data-probe-tick-min-labels", in: dom) ?? "") ?? 0, 2, "\(name): too few tick-view time labels")
            XCTAssertGreaterThan(Int(attribute("data-probe-tick-min-trades", in: dom) ?? "") ?? 0, 0, "\(name): no trades drawn at a zoom level")
            XCTAssertGreaterThan(Int(attribute("data-probe-tick-min-band", in: dom) ?? "") ?? 0, 0, "\(name): no bid–ask band at a zoom level")
            XCTAssertGreaterThan(Int(attribute("data-probe-tick-min-groups", in: dom) ?? "") ?? 0, 0, name)
        }
        let shots = NSTemporaryDirectory() + "tape-report-screenshots"
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        let png = shots + "/\(name).png"
        try? FileManager.default.removeItem(atPath: png)
        _ = try run(base + ["--screenshot=" + png, "file://" + html])
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 20_000, "\(name): screenshot missing or blank")
        print("report screenshot: \(png)")
        return dom
    }

    func testBarFileReportInChromium() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: Self.chromium), "chromium at \(Self.chromium)")
        let bars = shared.appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        var o = ReplayOptions(inputs: [bars])
        o.outDir = NSTemporaryDirectory() + "tape-browser-bars-\(getpid())"
        o.messagePrinter = { _ in }
        let s = try runReplay(o)
        let started = Date()
        let html = try ReportWriter.write(runDir: s.runDir)
        let seconds = Date().timeIntervalSince(started)
        print("report of \(s.ticksIn) bars: \(String(format: "%.3f", seconds)) s (replay \(String(format: "%.3f", s.wallSeconds)) s)")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        XCTAssertTrue(page.contains(s.digest))
        XCTAssertFalse(page.contains("<script src"), "no external scripts: the page opens offline")
        try check(html, name: "bars-1m-month", minimumCharts: 1)
    }

    func testCaptureReportInChromium() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: Self.chromium), "chromium at \(Self.chromium)")
        let capture = shared.appendingPathComponent("binance-feed/spot-btcusdt_20240808.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: capture), "real data at \(capture)")
        var o = ReplayOptions(inputs: [capture])
        o.outDir = NSTemporaryDirectory() + "tape-browser-capture-\(getpid())"
        o.messagePrinter = { _ in }
        o.engine.config.timeframes = [Timeframe(seconds: 1), Timeframe(seconds: 5), Timeframe(seconds: 60)]
        let s = try runReplay(o)
        let html = try ReportWriter.write(runDir: s.runDir)
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.runDir + "/tick_series.csv"))
        // One price chart and one tick view.
        try check(html, name: "capture-ticks", minimumCharts: 2, tickCharts: 1)
    }

    /// A trained run (two hours of real 1-minute bars: thin data) with predictions: the model section
    /// has its warning, the evaluation table, the per-fold RMSE, out-of-sample return and importance
    /// charts, and the price chart its prediction panel; all drawn in Chromium.
    func testTrainedRunReportInChromium() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: Self.chromium), "chromium at \(Self.chromium)")
        let bars = shared.appendingPathComponent("bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        let directory = NSTemporaryDirectory() + "tape-browser-trained-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let yaml = directory + "/trained.yaml"
        try """
        recordings: [\(bars)]
        from: 2022-01-10T00:00:00Z
        to: 2022-01-10T06:00:00Z
        model:
          train: {timeframe: 1m, horizon: 1, rounds: 10, folds: 3, predict: true}

        """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let run = try ScenarioRunner(root: root.path, workDir: directory + "/work").execute(try ScenarioFile.load(path: yaml))
        let html = try ReportWriter.write(runDir: run.runDir)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        XCTAssertTrue(page.contains("class=\"warn\">⚠ Only "), "thin-data warning")
        XCTAssertTrue(page.contains("<h3>Walk-forward evaluation</h3>") && page.contains("<h3>Feature importance (final model)</h3>"))
        XCTAssertTrue(page.contains("id=\"foldRMSE\"") && page.contains("id=\"oosReturn\"") && page.contains("id=\"importance\""))
        XCTAssertTrue(page.contains("id=\"foldEquity\""), "the model strategy's out-of-sample equity per fold")
        // Each fold's last equity is exp(its cum_return_after_cost) of evaluation.csv (computed there by TapeModel).
        let evaluation = try String(contentsOfFile: run.runDir + "/model/evaluation.csv", encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let foldColumn = try XCTUnwrap(evaluation[0].firstIndex(of: "fold"))
        let costColumn = try XCTUnwrap(evaluation[0].firstIndex(of: "cum_return_after_cost"))
        let folds = evaluation.dropFirst().filter { $0.count == evaluation[0].count && $0[foldColumn] != "overall" }
        XCTAssertGreaterThanOrEqual(folds.count, 2)
        for fold in folds {
            let shown = try XCTUnwrap(attribute("data-value", in: page, after: "class=\"foldend\" data-fold=\"\(fold[foldColumn])\""),
                                      "fold \(fold[foldColumn]) end equity")
            XCTAssertEqual(try XCTUnwrap(Double(shown)), Foundation.exp(try XCTUnwrap(Double(fold[costColumn]))), accuracy: 1e-9)
        }
        // One price chart (with its prediction panel) and four model charts.
        try check(html, name: "trained-6h", minimumCharts: 5)
    }
}
