import XCTest
import TapeTestSupport
import TapeReplay
import TapeEngine
import TapeIO
import TapeSources
import Foundation
import TapeReports

final class ReportWriterTests: XCTestCase {
    func makeRun() throws -> String {
        let dir = NSTemporaryDirectory() + "tape-report-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var bars = "symbol,timeframe,start_ns,end_ns,open,high,low,close,volume,vwap,trades\n"
        bars += "BTCUSDT,1m,0,60000000000,100,105,99,101,2,101,3\n"
        bars += "BTCUSDT,1m,60000000000,120000000000,101,160,100,150,3,120,4\n"
        var ind = "symbol,timeframe,end_ns,sma,ema,rsi,macd,macd_signal,macd_hist,bb_middle,bb_upper,bb_lower,session_vwap\n"
        for i in 0..<60 {
            let c = 50 + Double(i % 7) + Double(i) * 0.5
            bars += "ETHUSDT,1m,\(i * 60_000_000_000),\((i + 1) * 60_000_000_000),\(c),\(c + 2),\(c - 2),\(c + 1),1,\(c),2\n"
            ind += "ETHUSDT,1m,\((i + 1) * 60_000_000_000),\(c),\(c + 0.5),\(40 + i % 20),\(Double(i % 5) - 2),0.1,\(Double(i % 5) - 2.1),\(c),\(c + 3),\(c - 3),\(c)\n"
        }
        bars += "BTCUSDT,5m,0,300000000000,100,160,99,150,5,110,7\n"
        try bars.write(toFile: dir + "/bars.csv", atomically: true, encoding: .utf8)
        var preds = "symbol,timeframe,end_ns,prediction\n"
        for i in 0..<60 { preds += "ETHUSDT,1m,\((i + 1) * 60_000_000_000),\(Double(i % 9 - 4) * 0.001)\n" }
        try preds.write(toFile: dir + "/predictions.csv", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/model", withIntermediateDirectories: true)
        try """
        fold,train_start_ns,train_end_ns,test_start_ns,test_end_ns,n_train,n_test,rmse,rmse_baseline,mae,mae_baseline,directional_accuracy,ic,cum_return,cum_return_after_cost
        0,0,1800000000000,1800000000000,3600000000000,30,30,0.0014,0.0013,0.0011,0.0010,0.48,-0.005,-0.012,-0.07
        overall,0,1800000000000,1800000000000,3600000000000,30,30,0.0014,0.0013,0.0011,0.0010,0.48,-0.005,-0.012,-0.07

        """.write(toFile: dir + "/model/evaluation.csv", atomically: true, encoding: .utf8)
        try ind.write(toFile: dir + "/indicators.csv", atomically: true, encoding: .utf8)
        try "symbol,time_ns,rule,value,threshold,severity\nBTCUSDT,90000000000,price_spike,0.4,0.05,warning\n"
            .write(toFile: dir + "/anomalies.csv", atomically: true, encoding: .utf8)
        try #"{"digest":"abc123","ticks_in":10,"ticks_rejected":1,"ticks_rejected_by_reason":{"bad_price":1},"skipped":{},"events_out":5,"inputs":[{"path":"x.gz","sha256":"ff00","format":"binance"}]}"#
            .write(toFile: dir + "/summary.json", atomically: true, encoding: .utf8)
        return dir
    }

    func testSummaryCSV() throws {
        let dir = try makeRun()
        try ReportWriter.write(runDir: dir)
        let text = try String(contentsOfFile: dir + "/summary.csv", encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "symbol,timeframe,bars,first_start_ns,last_end_ns,open,close,return,high,low,volume,anomalies")
        XCTAssertEqual(lines[1], "BTCUSDT,1m,2,0,120000000000,100,150,0.5,160,99,5,1")
        XCTAssertEqual(lines[2], "BTCUSDT,5m,1,0,300000000000,100,150,0.5,160,99,5,1")
        XCTAssertTrue(lines[3].hasPrefix("ETHUSDT,1m,60,0,3600000000000,50,"))
        let html = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("abc123"))
        XCTAssertTrue(html.contains("bad_price: 1"))
        XCTAssertFalse(html.contains("<script src"))
        XCTAssertTrue(html.contains("<h3>Walk-forward evaluation</h3>") && html.contains("<td>overall</td>"))
        // Human units: ISO times, no nanosecond integers in the tables.
        XCTAssertTrue(html.contains("<td>1970-01-01 00:30:00Z</td>"), "evaluation windows as ISO times")
        XCTAssertTrue(html.contains("\"pred\":[") && html.contains("\"real\":["))
        // Deterministic: a second render is byte-identical.
        try ReportWriter.write(runDir: dir)
        XCTAssertEqual(html, try String(contentsOfFile: dir + "/index.html", encoding: .utf8))
    }

    /// Columns are read by name: bars.csv and anomalies.csv with their columns in another order, an extra
    /// column and quoted fields give the summary rows of the files in the documented order.
    func testColumnsAreReadByNameNotPosition() throws {
        let dir = NSTemporaryDirectory() + "tape-report-names-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var bars = "close,extra,low,high,open,end_ns,start_ns,trades,vwap,volume,timeframe,symbol\n"
        bars += "101,\"x, y\",99,105,100,60000000000,0,3,101,2,1m,\"BTCUSDT\"\n"
        bars += "150,z,100,160,101,120000000000,60000000000,4,120,3,1m,BTCUSDT\n"
        try bars.write(toFile: dir + "/bars.csv", atomically: true, encoding: .utf8)
        try "severity,rule,time_ns,threshold,value,symbol\nwarning,price_spike,90000000000,0.05,0.4,BTCUSDT\n"
            .write(toFile: dir + "/anomalies.csv", atomically: true, encoding: .utf8)
        // By hand: 2 bars from 0 to 120 s, open 100 (first), close 150 (last), return 0.5, high 160,
        // low 99, volume 2 + 3, one anomaly.
        XCTAssertEqual(ReportWriter.summaryRows(runDir: dir), ["BTCUSDT,1m,2,0,120000000000,100,150,0.5,160,99,5,1"])
    }

    func testRendersInChromium() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: "/usr/bin/chromium"), "chromium at /usr/bin/chromium")
        let dir = try makeRun()
        let html = try ReportWriter.write(runDir: dir)
        func run(_ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: args[0])
            p.arguments = Array(args.dropFirst())
            let out = Pipe(); p.standardOutput = out; p.standardError = FileHandle.nullDevice
            try p.run()
            let d = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: d, as: UTF8.self)
        }
        let base = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
        let dom = try run(base + ["--dump-dom", "file://" + html])
        XCTAssertTrue(dom.contains("data-ok=\"1\""), "page did not finish: \(dom.prefix(300))")
        // One price chart per symbol (BTCUSDT, ETHUSDT) and the per-fold RMSE chart of the evaluation.
        XCTAssertTrue(dom.contains("data-charts=\"3\""), "charts: \(dom.prefix(300))")
        XCTAssertFalse(dom.contains("data-errors=\""), "JS errors in page")
        let png = dir + "/shot.png"
        _ = try run(base + ["--screenshot=" + png, "--window-size=1200,2000", "file://" + html])
        let script = """
        import zlib,struct,sys
        d=open(sys.argv[1],'rb').read(); i=8; w=h=0; idat=b''
        while i<len(d):
            n,=struct.unpack('>I',d[i:i+4]); t=d[i+4:i+8]; c=d[i+8:i+8+n]; i+=12+n
            if t==b'IHDR': w,h,bd,ct=struct.unpack('>IIBB',c[:10])
            if t==b'IDAT': idat+=c
        raw=zlib.decompress(idat); bpp=4 if ct==6 else 3; stride=w*bpp
        prev=bytearray(stride); cols=set(); p=0
        for y in range(h):
            f=raw[p]; line=bytearray(raw[p+1:p+1+stride]); p+=1+stride
            for x in range(stride):
                a=line[x-bpp] if x>=bpp else 0; b=prev[x]; c=prev[x-bpp] if x>=bpp else 0
                if f==1: line[x]=(line[x]+a)&255
                elif f==2: line[x]=(line[x]+b)&255
                elif f==3: line[x]=(line[x]+(a+b)//2)&255
                elif f==4:
                    pa=abs(b-c); pb=abs(a-c); pc=abs(a+b-2*c)
                    pr=a if pa<=pb and pa<=pc else (b if pb<=pc else c)
                    line[x]=(line[x]+pr)&255
            prev=line
            if y%4==0:
                for x in range(0,w,4): cols.add(bytes(line[x*bpp:x*bpp+3]))
        print(len(cols))
        """
        try script.write(toFile: dir + "/px.py", atomically: true, encoding: .utf8)
        let n = Int(try run(["/usr/bin/python3", dir + "/px.py", png]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(n, 20, "screenshot looks blank (\(n) colours)")
    }

    /// A report of a real replay (a month of real 1-minute bars: 1m/5m/15m, anomalies) renders in
    /// Chromium without errors and draws its three charts for the one symbol.
    func testRealRunReportRendersInChromium() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: "/usr/bin/chromium"), "chromium at /usr/bin/chromium")
        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { root = root.deletingLastPathComponent() }
        let bars = root.deletingLastPathComponent().appendingPathComponent("shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz").path
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        var o = ReplayOptions(inputs: [bars])
        o.outDir = NSTemporaryDirectory() + "tape-real-report-\(getpid())"
        o.messagePrinter = { _ in }
        let s = try runReplay(o)
        let html = try ReportWriter.write(runDir: s.runDir)
        let size = (try FileManager.default.attributesOfItem(atPath: html)[.size] as? Int) ?? 0
        XCTAssertLessThan(size, 10_000_000, "every 1m bar of a month is kept for zooming; the page stays under 10 MB")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/chromium")
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000", "--dump-dom", "file://" + html]
        let out = Pipe(); p.standardOutput = out; p.standardError = FileHandle.nullDevice
        try p.run()
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertTrue(dom.contains("data-ok=\"1\""), "page did not finish")
        XCTAssertTrue(dom.contains("data-charts=\"1\""), "one price chart (candles, volume, RSI, MACD panels)")
        XCTAssertFalse(dom.contains("data-errors=\""), "JS errors in page")
        XCTAssertTrue(dom.contains(s.digest))
    }
}
