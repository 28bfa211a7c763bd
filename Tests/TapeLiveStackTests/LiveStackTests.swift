import Foundation
import TapeTestSupport
import XCTest

/// `make live`'s stack (scripts/live.sh start|stop|status) on this checkout, with a config of the test's own:
/// free ports, its own PostgreSQL database, Redis database, Kafka topic and group, a state folder under the
/// git-ignored `.tape/`. The shared servers of `make services` are used, never stopped.
final class LiveStackTests: XCTestCase {
    let root = packageRoot().path
    var tape: String { root + "/.build/release/tape" }
    let label = "live_test_\(getpid())"
    var state: String { root + "/.tape/\(label)" }
    var configPath: String { state + ".yaml" }
    private let databases = ScratchDatabases(namePrefix: "tape_live_test")

    override func tearDown() {
        _ = shell("TAPE_LIVE_CONFIG='\(configPath)' TAPE='\(tape)' scripts/live.sh stop")
        databases.dropAll()
        try? FileManager.default.removeItem(atPath: configPath)
    }

    /// Runs a bash command in the package root: (exit code, stdout + stderr).
    @discardableResult
    func shell(_ command: String, seconds: Double = 180) -> (Int32, String) {
        let output = NSTemporaryDirectory() + "tape-live-stack-\(getpid())-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        guard let pid = spawnInBackground(["/bin/bash", "-c", "cd '\(root)' && { \(command)\n}"], stdout: output,
                                          stderr: output) else { return (-1, "") }
        var code = waitForExit(pid, seconds: seconds)
        if code == nil {
            kill(pid, SIGKILL)
            code = waitForExit(pid)
        }
        return (code ?? -1, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    func read(_ path: String) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func alive(_ pid: Int32) -> Bool { pid > 0 && kill(pid, 0) == 0 }

    func testMakeLiveServesBarsRestartsAKilledWorkerAndStopsLeavingNoProcess() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        try requireOrSkip(Loopback.isListening(port: 59092), "the Kafka broker (tansu) of `make services` at 127.0.0.1:59092")
        let chromium = "/usr/bin/chromium"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: chromium), "chromium at \(chromium)")
        let sample = shell("scripts/sample.sh")
        try requireOrSkip(sample.0 == 0, "the sample recordings (make sample): \(sample.1)")
        let postgres = try databases.fresh("stack")
        let (servePort, simPort, prometheusPort) = (Loopback.unusedPort(), Loopback.unusedPort(), Loopback.unusedPort())
        let metrics = (0..<3).map { _ in "127.0.0.1:\(Loopback.unusedPort())" }
        // config/live.yaml with the test's own names and ports (the graph files are the stack's own).
        var config = try String(contentsOfFile: root + "/config/live.yaml", encoding: .utf8)
        let replacements = [
            ("state_dir: .tape/live ", "state_dir: .tape/\(label) "), ("port: 59410", "port: \(simPort)"),
            ("topic: tape.live.ticks", "topic: tape.live.test.\(getpid())"), ("group: tape-live", "group: tape-live-test-\(getpid())"),
            ("metrics_listen: 127.0.0.1:9101", "metrics_listen: \(metrics[0])"),
            ("metrics_listen: [127.0.0.1:9102, 127.0.0.1:9103]", "metrics_listen: [\(metrics[1]), \(metrics[2])]"),
            ("listen: 127.0.0.1:8000", "listen: 127.0.0.1:\(servePort)"), ("listen: 127.0.0.1:9090", "listen: 127.0.0.1:\(prometheusPort)"),
            ("postgres: postgres://postgres@127.0.0.1:55432/tape_live", "postgres: \(postgres)"),
            ("redis: redis://127.0.0.1:56379/5", "redis: redis://127.0.0.1:56379/6"),
            ("influx: influx://127.0.0.1:58086/tape_live", "influx: \"\""),
        ]
        for (old, new) in replacements {
            XCTAssertTrue(config.contains(old), "config/live.yaml has \(old)")
            config = config.replacingOccurrences(of: old, with: new)
        }
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let environment = "TAPE_LIVE_CONFIG='\(configPath)' TAPE='\(tape)'"

        // make live: up and ready, the locations printed.
        let started = Date()
        let (code, output) = shell("\(environment) scripts/live.sh start", seconds: 150)
        let readySeconds = Date().timeIntervalSince(started)
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains("live: ready in"), output)
        for location in ["http://127.0.0.1:\(servePort)/", "http://127.0.0.1:\(servePort)/docs", "/metrics",
                         "config/grafana/tape-dashboard.json", "http://127.0.0.1:\(prometheusPort)/"] {
            XCTAssertTrue(output.contains(location), "prints \(location): \(output)")
        }
        guard code == 0 else { return }
        let base = "http://127.0.0.1:\(servePort)"
        XCTAssertEqual(shell("curl -s -o /dev/null -w '%{http_code}' \(base)/ready").1, "200")
        // `make live` waited for every process's /ready: the ingest's and both workers' on their metrics ports.
        for address in metrics {
            let ready = shell("curl -s -w ' %{http_code}' http://\(address)/ready").1
            XCTAssertTrue(ready.hasSuffix(" 200") && ready.contains("\"status\":\"ready\""), "\(address)/ready: \(ready)")
        }
        XCTAssertTrue(shell("curl -s http://\(metrics[0])/ready").1.contains("\"feed binance-spot\":{\"status\":\"up\""))
        XCTAssertTrue(shell("curl -s http://\(metrics[1])/ready").1.contains("\"postgres\":{\"status\":\"up\""))
        print("live stack: ready in \(String(format: "%.1f", readySeconds)) s")

        // Bars within 30 s, through the API and on the dashboard in headless Chromium.
        var bars = 0
        let barsDeadline = Date().addingTimeInterval(30)
        while bars == 0 && Date() < barsDeadline {
            Thread.sleep(forTimeInterval: 0.5)
            let body = shell("curl -s '\(base)/api/v1/bars/spot:BTCUSDT?timeframe=1m&limit=100'").1
            let items = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["items"] as? [Any]
            bars = items?.count ?? 0
        }
        let barsSeconds = Date().timeIntervalSince(started) - readySeconds
        XCTAssertGreaterThan(bars, 0, "bars within 30 s of ready: \(read(state + "/work-1.log"))")
        print("live stack: first 1m bar served \(String(format: "%.1f", barsSeconds)) s after ready")
        let dom = shell("\(chromium) --headless --no-sandbox --disable-gpu --virtual-time-budget=15000 --dump-dom "
                        + "'\(base)/?symbol=spot:BTCUSDT&timeframe=1m' 2> /dev/null", seconds: 90).1
        let drawn = dom.range(of: #"data-bars="[0-9]+""#, options: .regularExpression).map {
            Int(dom[$0].dropFirst(11).dropLast()) ?? 0 } ?? 0
        XCTAssertGreaterThan(drawn, 0, "the dashboard draws bars: \(dom.prefix(2_000))")

        // kill -9 a worker: its supervisor starts it again within the first backoff step (1 s).
        let killed = Int32(read(state + "/work-1.pid")) ?? 0
        XCTAssertTrue(alive(killed), "work-1 runs")
        kill(killed, SIGKILL)
        let killedAt = Date()
        var replacement: Int32 = 0
        while Date().timeIntervalSince(killedAt) < 15 {
            replacement = Int32(read(state + "/work-1.pid")) ?? 0
            if replacement != killed && alive(replacement) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let restartSeconds = Date().timeIntervalSince(killedAt)
        XCTAssertTrue(replacement != killed && alive(replacement), "work-1 restarted: \(read(state + "/work-1.log"))")
        XCTAssertEqual(read(state + "/work-1.restarts"), "1")
        print("live stack: work-1 restarted \(String(format: "%.2f", restartSeconds)) s after kill -9")
        let status = shell("\(environment) scripts/live.sh status").1
        XCTAssertTrue(status.split(separator: "\n").contains { $0.hasPrefix("work-1") && $0.contains(" up ") && $0.contains(" 1 ") },
                      status)
        XCTAssertTrue(status.contains("http://\(metrics[1])/ready: {\"status\":"), "status shows every /ready: \(status)")
        // The restarted member works: bars keep coming.
        let database = postgres.split(separator: "/").last.map(String.init) ?? ""
        func storedTicks() -> Int {
            Int(shell("psql -h 127.0.0.1 -p 55432 -U postgres -d \(database) -Atc 'SELECT count(*) FROM ticks'").1
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let before = storedTicks()
        Thread.sleep(forTimeInterval: 8)
        XCTAssertGreaterThan(storedTicks(), before, "ticks keep arriving after the restart")

        // make stop: nothing left, by the pid files and by the state folder in any command line.
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).filter { $0.hasSuffix(".pid") }
            .compactMap { Int32(read(state + "/" + $0)) }
        XCTAssertGreaterThanOrEqual(pids.count, 12, "a pid file per process and per supervisor")
        let stopped = shell("\(environment) scripts/live.sh stop", seconds: 120)
        XCTAssertEqual(stopped.0, 0, stopped.1)
        XCTAssertFalse(stopped.1.contains("SIGKILL"), "every process stopped on SIGTERM: \(stopped.1)")
        for pid in pids { XCTAssertFalse(alive(pid), "pid \(pid) is gone") }
        // `[/]`: the pattern does not match the command line of the shell that runs pgrep.
        XCTAssertEqual(shell("pgrep -f -- '\(state)[/]' || true").1, "", "no process names the state folder")
        XCTAssertTrue(read(state + "/ingest.log").contains("recording"), "the ingest closed its session")
        try? FileManager.default.removeItem(atPath: state)
    }

    /// `stack.logging` becomes `--log-format` / `--log-level` of every tape process of the plan, and
    /// READY_URLS lists every process's `/ready`; a bad value is refused naming it.
    func testLiveConfigPassesTheLoggingSectionAndEveryReadyURL() throws {
        var config = try String(contentsOfFile: root + "/config/live.yaml", encoding: .utf8)
        for (old, new) in [("state_dir: .tape/live ", "state_dir: .tape/\(label) "), ("format: text ", "format: json "),
                           ("level: info ", "level: warning ")] {
            XCTAssertTrue(config.contains(old), "config/live.yaml has \(old)")
            config = config.replacingOccurrences(of: old, with: new)
        }
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        // The vendors' feeds: no feed-sim, so no sample recordings needed for the plan.
        let (code, plan) = shell("TAPE_LIVE_FEEDS=vendors python3 scripts/live_config.py '\(configPath)' /x/tape")
        XCTAssertEqual(code, 0, plan)
        let commands = plan.split(separator: "\n").filter { $0.hasPrefix("CMD_") && $0.contains("/x/tape") }
        XCTAssertEqual(commands.count, 4, "ingest, 2 workers, serve: \(plan)")
        for command in commands {
            XCTAssertTrue(command.contains("--log-format json --log-level warning"), "\(command)")
        }
        XCTAssertTrue(plan.contains("READY_URLS='http://127.0.0.1:8000/ready http://127.0.0.1:9101/ready "
                                    + "http://127.0.0.1:9102/ready http://127.0.0.1:9103/ready'"), plan)
        try? FileManager.default.removeItem(atPath: state)
        try config.replacingOccurrences(of: "format: json ", with: "format: xml ")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let (refused, message) = shell("TAPE_LIVE_FEEDS=vendors python3 scripts/live_config.py '\(configPath)' /x/tape")
        XCTAssertNotEqual(refused, 0)
        XCTAssertTrue(message.contains("stack.logging.format: expected text or json, got 'xml'"), message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state), "a refused config makes no state folder")
    }
}
