import Foundation
import TapeTestSupport
import XCTest

/// `tape live` against `tape feed-sim` serving the real captures, over loopback: what was served is
/// what was received, and the replay of the session's own recording gives the same outputs, bit for bit
/// (`tape diff` exit 0, equal digests) — across forced disconnects, garbled messages, and a bad key.
final class LiveSessionTests: XCTestCase {
    struct Run {
        var status: Int32
        var standardError: String
        var summary: [String: Any]
    }

    private func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FeedSimPaths.tape())
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var summary: [String: Any] = [:]
        if let out = arguments.firstIndex(of: "--out").map({ arguments[$0 + 1] }),
           let data = FileManager.default.contents(atPath: out + "/summary.json") {
            summary = (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        }
        return Run(status: process.terminationStatus, standardError: text, summary: summary)
    }

    private func feed(_ summary: [String: Any]) -> [String: Any] {
        let live = summary["live"] as? [String: Any] ?? [:]
        return (live["feeds"] as? [[String: Any]])?.first ?? [:]
    }

    /// Lines of a gzip file that are wire messages (not the header), read with Python's gzip.
    private func recordedMessages(_ directory: String, prefix: String) throws -> Int {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(prefix) }
        XCTAssertEqual(files.count, 1, "one recording file for \(prefix)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import gzip,sys; print(sum(1 for l in gzip.open(sys.argv[1]) "
                             + "if not l.startswith(b'#')))", directory + "/" + files[0]]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try requireOrSkip(process.terminationStatus == 0, "python3")
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Replays the session's recording and compares the two run folders with `tape diff`.
    private func assertReplayEqualsLive(_ liveDirectory: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let recording = liveDirectory + "/recording"
        let inputs = try FileManager.default.contentsOfDirectory(atPath: recording).sorted().map { recording + "/" + $0 }
        let replayDirectory = FeedSimPaths.temporary("replay")
        let replay = try run(["replay"] + inputs + ["--out", replayDirectory, "--quiet", "--no-report"])
        XCTAssertTrue([0, 3].contains(replay.status), "replay: \(replay.standardError)", file: file, line: line)
        let live = try run(["diff", liveDirectory, replayDirectory])
        XCTAssertEqual(live.status, 0, "tape diff: live and the replay of its recording differ", file: file, line: line)
        let liveSummary = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: liveDirectory + "/summary.json"))) as? [String: Any]
        XCTAssertEqual(liveSummary?["digest"] as? String, replay.summary["digest"] as? String,
                       "global digest, live vs replay", file: file, line: line)
        XCTAssertEqual(liveSummary?["clock_ticks"] as? Int, replay.summary["clock_ticks"] as? Int, file: file, line: line)
    }

    func testBinanceLiveEqualsReplayOfItsRecordingAcrossFiveDisconnects() throws {
        let capture = try FeedSimPaths.data("binance-feed/usdm-btcusdt_20240808.gz")
        // 93,954 lines; the trade and bookTicker messages are served, the 5th drop after 85,000.
        let simulator = try FeedSimProcess([capture, "--protocol", "binance", "--speed", "max",
                                            "--drop-after-messages", "17000"])
        let out = FeedSimPaths.temporary("live-binance")
        let session = try run(["live", "--feed", "binance-usdm:btcusdt=ws://\(simulator.base)", "--duration", "8s",
                               "--out", out, "--quiet"])
        let (stats, _) = simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let totals = stats["totals"] as? [String: Any] ?? [:]
        let served = totals["messages_served"] as? Int ?? -1
        XCTAssertEqual(totals["drops"] as? Int, 5)
        let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
        let connection = feed(session.summary)["connection"] as? [String: Any] ?? [:]
        XCTAssertGreaterThan(served, 87_000)
        XCTAssertEqual(counters["messages"] as? Int, served, "every message served was received")
        XCTAssertEqual(counters["events"] as? Int, served, "one event per trade/bookTicker message")
        XCTAssertEqual(connection["reconnects"] as? Int, 5)
        XCTAssertEqual(counters["gaps"] as? Int, 0, "the simulator resumes where it was at --speed max")
        XCTAssertEqual(try recordedMessages(out + "/recording", prefix: "binance-usdm-"), served)
        XCTAssertFalse(session.standardError.contains("fatal"))
        try assertReplayEqualsLive(out)
    }

    func testPolygonLiveEqualsReplayAndTheKeyIsNeverWritten() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-ethusdt_20240808.gz")
        let key = "test-key-\(UUID().uuidString.prefix(8))"
        let simulator = try FeedSimProcess([capture, "--protocol", "polygon", "--speed", "max", "--api-key", key])
        let out = FeedSimPaths.temporary("live-polygon")
        let session = try run(["live", "--feed", "polygon:ETHUSDT=ws://\(simulator.base)", "--duration", "6s",
                               "--out", out, "--quiet"], environment: ["POLYGON_API_KEY": key])
        let (stats, _) = simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let totals = stats["totals"] as? [String: Any] ?? [:]
        let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
        XCTAssertEqual(counters["events"] as? Int, totals["events_served"] as? Int)
        XCTAssertGreaterThan(counters["events"] as? Int ?? 0, 30_000)
        XCTAssertFalse(session.standardError.contains(key))
        for file in try FileManager.default.contentsOfDirectory(atPath: out + "/recording") {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "zcat '\(out)/recording/\(file)' | grep -c '\(key)'"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let count = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(count.trimmingCharacters(in: .whitespacesAndNewlines), "0", "key in \(file)")
        }
        try assertReplayEqualsLive(out)
    }

    func testBadKeyStopsTheSessionWithExitSevenNamingThePeer() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-ethusdt_20240808.gz")
        let simulator = try FeedSimProcess([capture, "--protocol", "polygon", "--speed", "max",
                                            "--api-key", "the-right-one"])
        let out = FeedSimPaths.temporary("live-badkey")
        let session = try run(["live", "--feed", "polygon:ETHUSDT=ws://\(simulator.base)", "--duration", "20s",
                               "--out", out, "--quiet"], environment: ["POLYGON_API_KEY": "a-wrong-key"])
        simulator.stop()
        XCTAssertEqual(session.status, 7, session.standardError)
        XCTAssertTrue(session.standardError.contains("ws://\(simulator.base)"), session.standardError)
        XCTAssertTrue(session.standardError.contains("authentication refused"), session.standardError)
        XCTAssertFalse(session.standardError.contains("a-wrong-key"))
    }

    func testGarbledMessagesAreRejectedNamingTheFeedAndTheSessionGoesOn() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-btcusdt_20240808.gz")
        let simulator = try FeedSimProcess([capture, "--protocol", "binance", "--speed", "max",
                                            "--garble-every", "1000"])
        let out = FeedSimPaths.temporary("live-garbled")
        let session = try run(["live", "--feed", "binance-spot:btcusdt=ws://\(simulator.base)", "--duration", "6s",
                               "--out", out])
        let (stats, _) = simulator.stop()
        let garbled = (stats["totals"] as? [String: Any])?["garbled"] as? Int ?? -1
        XCTAssertGreaterThan(garbled, 10)
        XCTAssertEqual(session.status, 3, "rejects: exit 3 — \(session.standardError.suffix(500))")
        XCTAssertEqual(session.summary["ticks_rejected"] as? Int, garbled)
        XCTAssertTrue(session.standardError.contains("binance-spot"), "a reject names the feed's recording")
        let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
        XCTAssertEqual(counters["messages"] as? Int, (stats["totals"] as? [String: Any])?["messages_served"] as? Int)
        try assertReplayEqualsLive(out)
    }

    /// Runs `warmup_files.py` (Python reads and writes the capture, independently of Tape's readers).
    private func python(_ arguments: [String]) throws -> String {
        let script = FeedSimPaths.packageRoot.appendingPathComponent("Tests/TapeFeedSimTests/warmup_files.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try requireOrSkip(process.terminationStatus == 0, "python3 for warmup_files.py")
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The rows of a run-folder CSV (header dropped), sorted: emission order differs between a run whose
    /// windows closed by timers and one whose windows closed at the end; the rows must not.
    private func sortedRows(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map(String.init).sorted()
    }

    /// kdb+'s r.q handoff: the first half of a capture replayed as history, then live on the rest, with an
    /// overlap the warm-up already covered — the same bars and indicators as replaying the whole capture,
    /// and the overlap dropped and counted, by trade id and book update id.
    func testWarmupOnTheFirstHalfThenLiveEqualsTheWholeCapture() throws {
        let capture = try FeedSimPaths.data("binance-feed/usdm-btcusdt_20240808.gz")
        let directory = FeedSimPaths.temporary("warmup")
        let total = 93_954, split = 47_000, overlap = 1_000
        // Live serves from 1,000 lines before the split: those are in the warm-up too.
        _ = try python(["slice", capture, "\(split - overlap)", "\(total)", directory + "/usdm-rest.gz"])
        let simulator = try FeedSimProcess([directory + "/usdm-rest.gz", "--protocol", "binance", "--speed", "max",
                                            "--shift", "now"])
        // The shift the simulator applied (its stats are written within a second of starting).
        var shift: Int64? = nil
        for _ in 0..<50 where shift == nil {
            Thread.sleep(forTimeInterval: 0.1)
            let data = FileManager.default.contents(atPath: simulator.statsPath) ?? Data()
            let stats = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            shift = (stats?["shift_ns"] as? NSNumber)?.int64Value
        }
        guard let shift else { simulator.stop(); return XCTFail("feed-sim wrote no shift_ns") }
        _ = try python(["shifted", capture, "0", "\(split)", "\(shift)", directory + "/usdm-warmup.gz"])
        _ = try python(["shifted", capture, "0", "\(total)", "\(shift)", directory + "/usdm-whole.gz"])
        let expectedOverlap = Int(try python(["count", capture, "\(split - overlap)", "\(split)"])) ?? -1

        // The simulated handoff starts seconds after the simulator took its shift (files written, warm-up
        // replayed, connection made), so live receive stamps run some seconds ahead of the shifted event
        // times; a real handoff has them together. A lateness above that start-up delay keeps the seam
        // honest: no live event is late because of the test's own start-up. Same config for the reference.
        let config = directory + "/pipeline.yaml"
        try "timeframes: [1m, 5m, 15m]\nallowed_lateness: 60s\n".write(toFile: config, atomically: true, encoding: .utf8)
        let live = directory + "/live"
        let session = try run(["live", "--warmup", directory + "/usdm-warmup.gz", "--config", config,
                               "--feed", "binance-usdm:btcusdt=ws://\(simulator.base)", "--duration", "8s",
                               "--out", live, "--quiet"])
        simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let whole = directory + "/whole"
        let replay = try run(["replay", directory + "/usdm-whole.gz", "--config", config, "--out", whole, "--quiet",
                              "--no-report"])
        XCTAssertEqual(replay.status, 0, replay.standardError)
        XCTAssertEqual((replay.summary["graph"] as? [String: Any])?["late_ticks"] as? Int, 0,
                       "the reference run has no late tick (else live, whose clock lags, could differ)")

        let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
        XCTAssertEqual(counters["warmup_overlap"] as? Int, expectedOverlap, "the overlap dropped and counted")
        XCTAssertGreaterThan(expectedOverlap, 800, "most of the 1,000 overlap lines are trades and quotes")
        XCTAssertEqual(session.summary["ticks_delivered"] as? Int, replay.summary["ticks_delivered"] as? Int,
                       "nothing dropped at the seam, nothing counted twice")
        for kind in ["bars", "indicators"] {
            let liveRows = try sortedRows("\(live)/\(kind).csv")
            let wholeRows = try sortedRows("\(whole)/\(kind).csv")
            XCTAssertGreaterThan(wholeRows.count, 5)
            XCTAssertEqual(liveRows, wholeRows, "\(kind): warm-up + live vs the whole capture")
        }
    }

    /// Bars close by clock ticks while the market is quiet: 3 s of a capture served in real time, then
    /// silence; the session ends in a checkpoint (`--snapshot-out`: nothing is closed by end of input), so
    /// the bar of the last trade can only have been closed by a tick's timer. The replay of the recording,
    /// also ending in a checkpoint, gives the same outputs.
    func testBarsCloseOnClockTicksAfterTheFeedGoesQuiet() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-btcusdt_20240808.gz")
        let directory = FeedSimPaths.temporary("quiet")
        _ = try python(["head-seconds", capture, "3", directory + "/spot-head.gz"])
        let config = directory + "/pipeline.yaml"
        try """
            timeframes: [5s]
            allowed_lateness: 500ms
            anomalies:
              price_spike: {enabled: true, timeframe: 5s, window: 20, z: 4}
              volume_spike: {enabled: true, timeframe: 5s, window: 20, k: 5}

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let simulator = try FeedSimProcess([directory + "/spot-head.gz", "--protocol", "binance", "--speed", "1"])
        let live = directory + "/live"
        let session = try run(["live", "--feed", "binance-spot:btcusdt=ws://\(simulator.base)", "--duration", "12s",
                               "--config", config, "--snapshot-out", directory + "/live.snapshot",
                               "--out", live, "--quiet"])
        simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let recording = live + "/recording"
        let feedFile = try FileManager.default.contentsOfDirectory(atPath: recording)
            .first { $0.hasPrefix("binance-spot-") } ?? ""
        guard let lastTradeMs = Int64(try python(["last-trade", recording + "/" + feedFile])) else {
            return XCTFail("no trade was received")
        }
        let windowStart = lastTradeMs * 1_000_000 / 5_000_000_000 * 5_000_000_000
        let bars = try String(contentsOfFile: live + "/bars.csv", encoding: .utf8)
        XCTAssertTrue(bars.contains(",5s,\(windowStart),"),
                      "the bar of the last trade (start \(windowStart)) was closed by a clock tick:\n\(bars.suffix(400))")
        XCTAssertGreaterThan(session.summary["clock_ticks"] as? Int ?? 0, 50)

        let inputs = try FileManager.default.contentsOfDirectory(atPath: recording).sorted().map { recording + "/" + $0 }
        let replayDirectory = directory + "/replay"
        let replay = try run(["replay"] + inputs + ["--config", config, "--snapshot-out", directory + "/replay.snapshot",
                                                      "--out", replayDirectory, "--quiet", "--no-report"])
        XCTAssertEqual(replay.status, 0, replay.standardError)
        let liveSummary = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: live + "/summary.json"))) as? [String: Any]
        XCTAssertEqual(liveSummary?["digest"] as? String, replay.summary["digest"] as? String)
    }

    /// The live settings file gives the feeds and the tick; an unknown key is exit 4 naming its path.
    func testLiveConfigFileGivesFeedsAndTickAndRefusesUnknownKeys() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-ethusdt_20240808.gz")
        let directory = FeedSimPaths.temporary("live-config")
        let simulator = try FeedSimProcess([capture, "--protocol", "binance", "--speed", "max"])
        let config = directory + "/live.yaml"
        try """
            tick_ms: 50
            feeds:
              - {feed: binance-spot, symbols: [ethusdt], url: "ws://\(simulator.base)"}

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let session = try run(["live", "--live-config", config, "--duration", "4s", "--out", directory + "/run",
                               "--quiet"])
        let (stats, _) = simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let live = session.summary["live"] as? [String: Any] ?? [:]
        XCTAssertEqual(live["tick_ns"] as? Int, 50_000_000)
        let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
        XCTAssertEqual(counters["messages"] as? Int, (stats["totals"] as? [String: Any])?["messages_served"] as? Int)

        try "feeds:\n  - {feed: binance-spot, symbols: [ethusdt], colour: blue}\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let refused = try run(["live", "--live-config", config, "--duration", "1s", "--out", directory + "/bad"])
        XCTAssertEqual(refused.status, 4)
        XCTAssertTrue(refused.standardError.contains("feeds[0].colour"), refused.standardError)
    }

    /// A model from `tape train` runs in the live graph (predictions.csv), and the replay of the recording
    /// with the same model gives the same outputs.
    func testLiveWithATrainedModelPredictsAsTheReplayDoes() throws {
        let bars = try FeedSimPaths.data("bars/btc-perp-20211231-20220201_1m.csv.gz")
        let capture = try FeedSimPaths.data("binance-feed/usdm-btcusdt_20240808.gz")
        let directory = FeedSimPaths.temporary("live-model")
        let train = try run(["train", bars, "--from", "2022-01-03T00:00:00Z", "--to", "2022-01-05T00:00:00Z",
                             "--timeframe", "1m", "--rounds", "20", "--folds", "2", "--out", directory + "/train",
                             "--quiet", "--no-report"])
        XCTAssertEqual(train.status, 0, train.standardError)
        let model = directory + "/train/model"
        try requireOrSkip(FileManager.default.fileExists(atPath: model), "tape train wrote \(model)")
        let simulator = try FeedSimProcess([capture, "--protocol", "binance", "--speed", "max"])
        let live = directory + "/live"
        let session = try run(["live", "--feed", "binance-usdm:btcusdt=ws://\(simulator.base)", "--duration", "6s",
                               "--model", model, "--out", live, "--quiet"])
        simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let predictions = try String(contentsOfFile: live + "/predictions.csv", encoding: .utf8)
        XCTAssertGreaterThan(predictions.split(separator: "\n").count, 2, "predictions written live")
        let recording = live + "/recording"
        let inputs = try FileManager.default.contentsOfDirectory(atPath: recording).sorted().map { recording + "/" + $0 }
        let replay = try run(["replay"] + inputs + ["--model", model, "--out", directory + "/replay", "--quiet",
                                                      "--no-report"])
        XCTAssertEqual(replay.status, 0, replay.standardError)
        let liveSummary = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: live + "/summary.json"))) as? [String: Any]
        XCTAssertEqual(liveSummary?["digest"] as? String, replay.summary["digest"] as? String)
        XCTAssertEqual(try String(contentsOfFile: directory + "/replay/predictions.csv", encoding: .utf8), predictions)
    }

    /// Paper trading (issue 15): the same trading config in `tape live` (quotes and trades from the
    /// simulated Binance feed, 20 ms latency, a built-in and an external Python strategy on 5-second bars)
    /// and in the replay of the session's recording gives identical orders and fills — `tape diff` finds
    /// nothing, the digests are equal — and the fills are tick-level (against quotes).
    func testPaperTradingLiveEqualsTheBacktestOfItsRecording() throws {
        let capture = try FeedSimPaths.data("binance-feed/usdm-btcusdt_20240808.gz")
        let directory = FeedSimPaths.temporary("paper")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let pipeline = directory + "/pipeline.yaml", trading = directory + "/trading.yaml"
        try "timeframes: [5s, 1m]\n".write(toFile: pipeline, atomically: true, encoding: .utf8)
        try """
            trading:
              mark_timeframe: 5s
              execution: {latency: 20ms, fee_bps: 1}
              strategies:
                - {type: macd_cross, timeframe: 5s, quantity: 0.01}
                - {type: external, name: py_rsi, command: "python3 \(root.path)/examples/strategies/rsi_reversion.py", timeframe: 5s, quantity: 0.02, lower: 40, upper: 60}

            """.write(toFile: trading, atomically: true, encoding: .utf8)
        let simulator = try FeedSimProcess([capture, "--protocol", "binance", "--speed", "max"])
        let live = directory + "/live"
        let session = try run(["live", "--feed", "binance-usdm:btcusdt=ws://\(simulator.base)", "--duration", "8s",
                               "--config", pipeline, "--trading", trading, "--out", live, "--quiet"])
        simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let fills = try String(contentsOfFile: live + "/fills.csv", encoding: .utf8)
        let rows = fills.split(separator: "\n").dropFirst()
        XCTAssertGreaterThan(rows.count, 5, "the session traded")
        XCTAssertTrue(rows.contains { $0.hasSuffix(",macd_cross") } && rows.contains { $0.hasSuffix(",py_rsi") }, "both strategies traded")
        XCTAssertTrue(rows.allSatisfy { $0.contains(",quote,") || $0.contains(",trade,") }, "tick-level fills")
        let recording = live + "/recording"
        let inputs = try FileManager.default.contentsOfDirectory(atPath: recording).sorted().map { recording + "/" + $0 }
        let replay = try run(["replay"] + inputs + ["--config", pipeline, "--trading", trading, "--out", directory + "/replay",
                                                      "--quiet", "--no-report"])
        XCTAssertEqual(replay.status, 0, replay.standardError)
        let diff = try run(["diff", live, directory + "/replay"])
        XCTAssertEqual(diff.status, 0, "tape diff: paper trading and the backtest of its recording differ")
        for kind in ["orders", "fills", "positions", "equity"] {
            XCTAssertEqual(try String(contentsOfFile: directory + "/replay/\(kind).csv", encoding: .utf8),
                           try String(contentsOfFile: live + "/\(kind).csv", encoding: .utf8), kind)
        }
        let liveSummary = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: live + "/summary.json"))) as? [String: Any]
        XCTAssertEqual(liveSummary?["digest"] as? String, replay.summary["digest"] as? String)
    }

    func testFinageLiveEqualsReplayOfItsRecording() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-ethusdt_20240808.gz")
        let key = "finage-\(UUID().uuidString.prefix(8))"
        let simulator = try FeedSimProcess([capture, "--protocol", "finage", "--speed", "max", "--api-key", key])
        let out = FeedSimPaths.temporary("live-finage")
        let session = try run(["live", "--feed", "finage:ETHUSDT=ws://\(simulator.base)", "--duration", "5s",
                               "--out", out, "--quiet"], environment: ["FINAGE_API_KEY": key])
        let (stats, _) = simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
        XCTAssertEqual(counters["events"] as? Int, (stats["totals"] as? [String: Any])?["events_served"] as? Int)
        XCTAssertGreaterThan(counters["events"] as? Int ?? 0, 25_000)
        XCTAssertFalse(session.standardError.contains(key))
        try assertReplayEqualsLive(out)
    }

    /// REST polling through `tape live`: Alpha Vantage and FMP against the simulator serving the real
    /// 1-minute bars in real time. The bar delivered equals the bar file's first row (read with Python's
    /// csv, moved by the simulator's shift); repeated polls deliver it once (`repeated` skips); Alpha
    /// Vantage's 5 calls per minute hold (the simulator counts the requests).
    func testRESTFeedsDeliverTheBarFileRowsOnceAndObeyTheLimit() throws {
        let bars = try FeedSimPaths.data("bars/btc-perp-20211231-20220201_1m.csv.gz")
        let first = try python(["first-bar", bars]).split(separator: ",").map(String.init)
        XCTAssertEqual(first.count, 6)
        for (vendor, variable) in [("alphavantage", "ALPHAVANTAGE_API_KEY"), ("fmp", "FMP_API_KEY")] {
            let directory = FeedSimPaths.temporary("live-\(vendor)")
            let simulator = try FeedSimProcess([bars, "--protocol", vendor, "--symbol", "BTC-PERP", "--speed", "1",
                                                "--api-key", "k-\(vendor)"])
            // Polled bars arrive after their end (the poll period, the vendor's delay): a lateness above it.
            let config = directory + "/pipeline.yaml"
            try "allowed_lateness: 3h\n".write(toFile: config, atomically: true, encoding: .utf8)
            let out = directory + "/run"
            let session = try run(["live", "--feed", "\(vendor):BTC-PERP=http://\(simulator.base)",
                                   "--poll-seconds", "1", "--config", config, "--duration", "6s", "--out", out,
                                   "--quiet"], environment: [variable: "k-\(vendor)"])
            let (stats, _) = simulator.stop()
            XCTAssertEqual(session.status, 0, "\(vendor): \(session.standardError)")
            let requests = (stats["totals"] as? [String: Any])?["http_requests"] as? Int ?? -1
            let shift = (stats["shift_ns"] as? NSNumber)?.int64Value ?? 0
            if vendor == "alphavantage" { XCTAssertEqual(requests, 5, "5 calls per minute") }
            else { XCTAssertGreaterThanOrEqual(requests, 4) }
            let counters = feed(session.summary)["counters"] as? [String: Any] ?? [:]
            XCTAssertEqual(counters["events"] as? Int, 1, "\(vendor): one bar, delivered once")
            // Every answered poll after the first repeats the bar; the session may end (--duration) while one
            // last request is in flight: the simulator counted it, the session never read its answer.
            let repeated = (session.summary["skipped"] as? [String: Any])?["repeated"] as? Int ?? -1
            XCTAssertTrue((requests - 2)...(requests - 1) ~= repeated, "\(vendor): \(repeated) repeated of \(requests) requests")
            let rows = try String(contentsOfFile: out + "/bars.csv", encoding: .utf8).split(separator: "\n")
                .filter { $0.contains(",1m,") }
            XCTAssertEqual(rows.count, 1, "\(vendor): \(rows)")
            let fields = rows.first.map { $0.split(separator: ",").map(String.init) } ?? []
            guard fields.count >= 9 else { continue }
            XCTAssertEqual(Int64(fields[2]), (Int64(first[0]) ?? 0) + shift, "\(vendor): bar start = row time + shift")
            for (index, name) in ["open", "high", "low", "close", "volume"].enumerated() {
                XCTAssertEqual(Double(fields[4 + index]), Double(first[1 + index]), "\(vendor): \(name)")
            }
        }
    }

    /// A recording that rotates (`--record-max-mb 1`) still replays to the live session's outputs: the live
    /// side restarts the feed's decoder and validator at each new file, as the replay of that file does.
    func testRotatedRecordingReplaysToTheSameOutputs() throws {
        let capture = try FeedSimPaths.data("binance-feed/spot-ethusdt_20240808.gz")
        let simulator = try FeedSimProcess([capture, "--protocol", "binance", "--speed", "max"])
        let out = FeedSimPaths.temporary("live-rotated")
        let session = try run(["live", "--feed", "binance-spot:ethusdt=ws://\(simulator.base)", "--duration", "4s",
                               "--record-max-mb", "1", "--out", out, "--quiet"])
        simulator.stop()
        XCTAssertEqual(session.status, 0, session.standardError)
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/recording")
            .filter { $0.hasPrefix("binance-spot-") }
        XCTAssertGreaterThanOrEqual(files.count, 3, "rotated at 1 MB: \(files)")
        try assertReplayEqualsLive(out)
    }
}
