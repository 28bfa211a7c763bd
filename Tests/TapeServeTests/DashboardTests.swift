import Foundation
import TapeRedis
import TapeTestSupport
import XCTest

/// The dashboard at `/` during a live session — `tape feed-sim` (a real capture, 10× real time) → `tape live
/// --store postgres://… --store redis://…` → `tape serve` — rendered in headless Chromium: the charts are
/// drawn from the API, updates arrive over `/ws`, no error is seen (the page counts `error` events and
/// rejections), and a screenshot is kept in `reports/test-artifacts/dashboard.png`.
extension ServeTests {
    static let dashboardRedis = "redis://127.0.0.1:56379/7"

    func testDashboardDrawsAndUpdatesDuringALiveSession() throws {
        try requireTape()
        let chromium = "/usr/bin/chromium"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: chromium), "chromium at \(chromium)")
        let redis: RedisConnection
        do { redis = try RedisConnection(url: Self.dashboardRedis) } catch {
            try skipOrFail(missing: "Redis of `make services` at \(Self.dashboardRedis): \(error)")
        }
        _ = try redis.command(["FLUSHDB"])
        defer { _ = try? redis.command(["FLUSHDB"]) }
        let url = try freshDatabase("dashboard")
        let folder = temporaryFolder("dashboard")
        let capture = try capture("spot-btcusdt_20240808.gz")
        guard let simulator = spawnInBackground([tape, "feed-sim", capture, "--protocol", "binance", "--speed", "10",
                                                 "--port", "0", "--port-file", folder + "/port"],
                                                stdout: folder + "/sim.log", stderr: folder + "/sim.log")
        else { return XCTFail("cannot start tape feed-sim") }
        defer { kill(simulator, SIGTERM); _ = waitForExit(simulator, seconds: 10) }
        var port = ""
        for _ in 0..<100 where port.isEmpty {
            usleep(100_000)
            port = ((try? String(contentsOfFile: folder + "/port", encoding: .utf8)) ?? "").split(separator: ":").last
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        }
        XCTAssertFalse(port.isEmpty, "feed-sim wrote its port")
        guard let live = spawnInBackground([tape, "live", "--feed", "binance-spot:btcusdt=ws://127.0.0.1:\(port)",
                                            "--duration", "40s", "--out", folder + "/live", "--quiet",
                                            "--metrics-listen", "127.0.0.1:0",
                                            "--store", url, "--store", Self.dashboardRedis],
                                           stdout: folder + "/live.log", stderr: folder + "/live.log")
        else { return XCTFail("cannot start tape live") }
        defer { kill(live, SIGINT); _ = waitForExit(live, seconds: 30) }
        // The session's Prometheus endpoint, for the dashboard's pipeline health (/api/v1/pipeline).
        var metricsURL = ""
        for _ in 0..<100 where metricsURL.isEmpty {
            let log = (try? String(contentsOfFile: folder + "/live.log", encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.hasPrefix("tape: metrics at ") }) {
                metricsURL = String(line.dropFirst("tape: metrics at ".count))
            } else { usleep(100_000) }
        }
        XCTAssertFalse(metricsURL.isEmpty, "tape live says where its metrics are")
        let (pid, base) = try startServe(["--store", url, "--redis", Self.dashboardRedis,
                                          "--pipeline-metrics", metricsURL], label: "dashboard")
        // Wait until the session has stored ticks and closed a bar (the dashboard then has a chart to draw).
        let deadline = Date().addingTimeInterval(40)
        var ready = false
        while !ready && Date() < deadline {
            usleep(250_000)
            if let reply = try? request(base + "/api/v1/latest/spot:BTCUSDT"), reply.status == 200,
               let latest = try? reply.json(), latest["bar"] is [String: Any] { ready = true }
        }
        XCTAssertTrue(ready, "a bar was stored: \((try? String(contentsOfFile: folder + "/live.log", encoding: .utf8)) ?? "")")

        // The pipeline's figures through serve: up, ticks counted, a rate (an independent read of the same
        // endpoint has the ticks too).
        var source: [String: Any] = [:]
        let sampled = Date().addingTimeInterval(20)   // the session's metrics are sampled about once a second
        repeat {
            source = try XCTUnwrap((try request(base + "/api/v1/pipeline").json()["sources"] as? [[String: Any]])?.first)
            if ((source["ticks_total"] as? NSNumber)?.doubleValue ?? 0) > 0 { break }
            usleep(250_000)
        } while Date() < sampled
        XCTAssertEqual(source["up"] as? Bool, true, "\(source)")
        XCTAssertGreaterThan((source["ticks_total"] as? NSNumber)?.doubleValue ?? 0, 0, "\(source)")
        let scraped = try request(metricsURL).text
        XCTAssertTrue(scraped.contains("tape_feed_ticks_total"), scraped)

        let dom = folder + "/dom.html", log = folder + "/chromium.log"
        let page = base + "/?symbol=spot:BTCUSDT&timeframe=1m"
        let browser = try XCTUnwrap(spawnInBackground([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                                       "--enable-logging=stderr", "--virtual-time-budget=20000",
                                                       "--dump-dom", page], stdout: dom, stderr: log))
        if waitForExit(browser, seconds: 90) == nil {
            kill(browser, SIGKILL)
            _ = waitForExit(browser)
            XCTFail("chromium did not finish within 90 s")
        }
        let rendered = (try? String(contentsOfFile: dom, encoding: .utf8)) ?? ""
        func attribute(_ name: String) -> String? {
            guard let tag = rendered.range(of: #"<div id="status"[^>]*>"#, options: .regularExpression) else { return nil }
            let text = rendered[tag]
            guard let value = text.range(of: name + #"="[^"]*""#, options: .regularExpression) else { return nil }
            return String(text[value].dropFirst(name.count + 2).dropLast())
        }
        XCTAssertEqual(attribute("data-errors"), "0", "no error on the page: \(attribute("data-last-error") ?? "")")
        XCTAssertEqual(attribute("data-ws"), "up", "the WebSocket is connected")
        XCTAssertEqual(attribute("data-pipeline"), "up", "the pipeline's health is shown")
        XCTAssertGreaterThan(Int(attribute("data-bars") ?? "") ?? 0, 0, "the price chart has bars")
        XCTAssertGreaterThan(Int(attribute("data-snapshots") ?? "") ?? 0, 0, "snapshots arrived")
        XCTAssertGreaterThan(Int(attribute("data-updates") ?? "") ?? 0, 0, "updates arrived over /ws")
        let console = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertFalse(console.contains("Uncaught"), "no uncaught error in the console:\n\(console)")

        // The screenshot, for people (reports/ is git-ignored).
        let artifacts = packageRoot().appendingPathComponent("reports/test-artifacts").path
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let shot = artifacts + "/dashboard.png"
        try? FileManager.default.removeItem(atPath: shot)
        let camera = try XCTUnwrap(spawnInBackground([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                                      "--virtual-time-budget=10000", "--window-size=1400,900",
                                                      "--screenshot=" + shot, page], stdout: "/dev/null", stderr: "/dev/null"))
        if waitForExit(camera, seconds: 90) == nil { kill(camera, SIGKILL); _ = waitForExit(camera) }
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 20_000, "a screenshot of the dashboard at \(shot)")
        stopServe(pid)
    }
}
