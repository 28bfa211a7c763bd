import Foundation
import XCTest
import TapeTestSupport

/// Backtests through the `tape` binary (docs/backtesting.md): the trading outputs are part of the run,
/// deterministic across processes and snapshot splits, and a strategy written against the external line
/// protocol (Python, examples/strategies) gives exactly the fills of the same rule built in.
final class BacktestRunTests: XCTestCase {
    var tape: String { Paths.packageRoot.appendingPathComponent(".build/release/tape").path }
    let tradingKinds = ["orders", "fills", "positions", "equity"]

    func run(_ args: [String]) throws -> (Int32, String, String) {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        return try sh(([tape] + args).map { "'\($0)'" }.joined(separator: " "))
    }

    func file(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func rows(_ runDir: String, _ kind: String) throws -> [String] {
        try file(runDir + "/" + kind + ".csv").split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    func summary(_ runDir: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: runDir + "/summary.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func writeTrading(_ directory: String, _ name: String, _ yaml: String) throws -> String {
        let path = directory + "/" + name + ".yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func python() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3")
    }

    func btcBars() throws -> String { try XCTUnwrap(try Paths.barFiles().first { $0.contains("btc-perp") }) }

    /// The Python versions of `macd_cross` and `rsi_mean_reversion` (examples/strategies, on
    /// sdk/python/tape_strategy.py) give byte for byte the orders, fills, positions and equity of the
    /// built-in strategies on a month of real 1-minute bars, with latency, fees and slippage.
    func testExternalStrategiesGiveTheFillsOfTheBuiltIns() throws {
        try python()
        let bars = try btcBars()
        let directory = Paths.tempDir("external")
        let execution = "  execution: {latency: 250ms, fee_bps: 2, slippage_bps: 1}\n"
        for (builtIn, script, parameters) in [("macd_cross", "macd_cross.py", "quantity: 0.5, allow_short: true"),
                                              ("rsi_mean_reversion", "rsi_reversion.py", "quantity: 0.25, lower: 35, upper: 65")] {
            let command = "python3 \(Paths.packageRoot.path)/examples/strategies/\(script)"
            let inside = try writeTrading(directory, builtIn, "trading:\n" + execution
                + "  strategies:\n    - {type: \(builtIn), name: s, \(parameters)}\n")
            let outside = try writeTrading(directory, builtIn + "-external", "trading:\n" + execution
                + "  strategies:\n    - {type: external, name: s, command: \"\(command)\", \(parameters)}\n")
            var (code, _, error) = try run(["replay", bars, "--trading", inside, "--quiet", "--no-report", "--out", directory + "/in-" + builtIn])
            XCTAssertEqual(code, 0, error)
            (code, _, error) = try run(["replay", bars, "--trading", outside, "--quiet", "--no-report", "--out", directory + "/out-" + builtIn])
            XCTAssertEqual(code, 0, error)
            let fills = try rows(directory + "/in-" + builtIn, "fills")
            XCTAssertGreaterThan(fills.count, 100, "\(builtIn) traded")
            for kind in tradingKinds {
                XCTAssertEqual(try file(directory + "/out-\(builtIn)/\(kind).csv"), try file(directory + "/in-\(builtIn)/\(kind).csv"),
                               "\(builtIn) \(kind).csv: external and built-in differ")
            }
            let metrics = try XCTUnwrap(try summary(directory + "/in-" + builtIn)["trading"] as? [String: Any])
            XCTAssertEqual(metrics["fills"] as? Int, fills.count - 1)
        }
    }

    /// A backtest with a built-in and an external strategy split across processes at several instants
    /// (--stop-at/--snapshot-out, then --snapshot-in: the external strategy's own state travels in the
    /// snapshot) equals the uninterrupted run, row for row; two whole runs have the same digest.
    func testABacktestSplitAcrossProcessesEqualsTheWholeRun() throws {
        try python()
        let bars = try btcBars()
        let directory = Paths.tempDir("split")
        let command = "python3 \(Paths.packageRoot.path)/examples/strategies/macd_cross.py"
        let trading = try writeTrading(directory, "trading", """
            trading:
              cash: 1000000
              execution: {latency: 90s, fee_per_unit: 0.5}
              strategies:
                - {type: bollinger_breakout, quantity: 0.3}
                - {type: external, name: py_macd, command: "\(command)", quantity: 0.2, timeframe: 5m}

            """)
        let extra = ["--trading", trading, "--quiet", "--no-report"]
        var (code, _, error) = try run(["replay", bars] + extra + ["--out", directory + "/whole"])
        XCTAssertEqual(code, 0, error)
        (code, _, error) = try run(["replay", bars] + extra + ["--out", directory + "/again"])
        XCTAssertEqual(code, 0, error)
        let whole = try summary(directory + "/whole")
        XCTAssertEqual(try summary(directory + "/again")["digest"] as? String, whole["digest"] as? String,
                       "two processes, one digest")
        let first = try XCTUnwrap(whole["first_receive_ns"] as? Int64), last = try XCTUnwrap(whole["last_receive_ns"] as? Int64)
        let tags = Set(try rows(directory + "/whole", "fills").dropFirst().map { $0.split(separator: ",").last.map(String.init) ?? "" })
        XCTAssertEqual(tags, ["bollinger_breakout", "py_macd"], "both strategies traded")
        for fraction in [0.3, 0.71] {
            let split = first + Int64(Double(last - first) * fraction)
            let checkpoint = directory + "/at-\(fraction).ckpt"
            let part1 = directory + "/part1-\(fraction)", part2 = directory + "/part2-\(fraction)"
            (code, _, error) = try run(["replay", bars] + extra + ["--out", part1, "--stop-at", String(split), "--snapshot-out", checkpoint])
            XCTAssertEqual(code, 0, error)
            (code, _, error) = try run(["replay", bars] + extra + ["--out", part2, "--snapshot-in", checkpoint])
            XCTAssertEqual(code, 0, error)
            for kind in tradingKinds + ["bars"] {
                let expected = try rows(directory + "/whole", kind)
                let part1Rows = try rows(part1, kind), part2Rows = try rows(part2, kind)
                XCTAssertGreaterThan(part1Rows.count, 1, "\(kind) before the split at \(fraction)")
                XCTAssertEqual(part1Rows + part2Rows.dropFirst(), expected, "\(kind) split at \(fraction)")
            }
        }
    }

    /// Tick-level fills on a raw capture: a scripted order sequence (an external strategy submitting on
    /// chosen quotes: market orders larger than the displayed size, a limit far below the market, an IOC
    /// limit that does not cross, a resting limit above the ask) with 5 ms latency; every fill is checked by
    /// scripts/check_fills.py, which rebuilds the book from the capture itself: prices, times after the
    /// latency, sizes (the partial fills), the limit that never fills and why.
    func testScriptedOrdersFillAsTheQuotesAndTradesInTheFileSay() throws {
        try python()
        let capture = try XCTUnwrap(try Paths.captures().first { $0.hasSuffix("usdm-btcusdt_20240808.gz") })
        let directory = Paths.tempDir("scripted")
        let script = directory + "/scripted.py"
        try """
            import sys
            sys.path.insert(0, "\(Paths.packageRoot.path)/sdk/python")
            from tape_strategy import Strategy, run

            class Scripted(Strategy):
                subscriptions = ("quotes",)
                def on_start(self, parameters):
                    self.quotes = 0
                def on_quote(self, item, ctx):
                    self.quotes += 1
                    n, bid, ask = self.quotes, item["bid"], item["ask"]
                    if n == 2000:
                        ctx.submit("buy", 20, tag="m_buy")
                        ctx.submit("buy", 1, order_type="limit", limit_price=round(bid * 0.9, 1), tag="never")
                    elif n == 4000:
                        ctx.submit("buy", 1, order_type="limit", limit_price=round(bid * 0.99, 1), tif="ioc", tag="ioc")
                    elif n == 6000:
                        ctx.submit("sell", 0.5, order_type="limit", limit_price=round(ask + 20, 1), tag="rest")
                    elif n == 9000:
                        ctx.submit("sell", 20, tag="m_sell")

            run(Scripted())

            """.write(toFile: script, atomically: true, encoding: .utf8)
        let trading = try writeTrading(directory, "trading", """
            trading:
              execution: {latency: 5ms}
              strategies:
                - {type: external, name: scripted, command: "python3 \(script)"}

            """)
        let (code, _, error) = try run(["replay", capture, "--trading", trading, "--quiet", "--no-report", "--out", directory + "/run"])
        XCTAssertTrue(code == 0 || code == 3, error)
        let (checked, output, problems) = try sh("python3 scripts/check_fills.py '\(capture)' '\(directory)/run' 5000000")
        XCTAssertEqual(checked, 0, output + problems)
        XCTAssertTrue(output.contains("ok m_buy") && output.contains("ok m_sell") && output.contains("ok never")
                      && output.contains("ok ioc") && output.contains("ok rest"), output)
        XCTAssertTrue(output.contains("partial"), output)
        print(output)
    }

    /// An external strategy that breaks the protocol fails the run (exit 5) with its line named, after
    /// the rest of the run completed; a bad key in the trading config is refused before anything runs.
    func testABrokenStrategyAndABadKeyAreClearErrors() throws {
        try python()
        let bars = try btcBars()
        let directory = Paths.tempDir("broken")
        let script = directory + "/broken.py"
        try """
            import sys, json
            for line in sys.stdin:
                item = json.loads(line)
                if item["type"] == "hello":
                    print(json.dumps({"type": "ready", "protocol": 1, "subscriptions": ["bars"]}), flush=True)
                elif item["type"] == "bar":
                    print("not json at all", flush=True)

            """.write(toFile: script, atomically: true, encoding: .utf8)
        let broken = try writeTrading(directory, "broken", "trading:\n  strategies:\n    - {type: external, command: \"python3 \(script)\"}\n")
        var (code, _, error) = try run(["replay", bars, "--trading", broken, "--quiet", "--no-report", "--out", directory + "/run"])
        XCTAssertEqual(code, 5, error)
        XCTAssertTrue(error.contains("line 2 of its output is not a protocol message: not json at all"), error)
        XCTAssertGreaterThan(try rows(directory + "/run", "bars").count, 1000, "the run itself completed")
        let bad = try writeTrading(directory, "bad", "trading:\n  execution: {latency: soon}\n  strategies: [{type: macd_cross}]\n")
        (code, _, error) = try run(["replay", bars, "--trading", bad, "--quiet", "--no-report", "--out", directory + "/bad"])
        XCTAssertEqual(code, 4, error)
        XCTAssertTrue(error.contains("trading.execution.latency: expected a duration"), error)
        let unknown = try writeTrading(directory, "unknown", "trading:\n  strategies: [{type: macd_cross, quantiy: 2}]\n")
        (code, _, error) = try run(["replay", bars, "--trading", unknown, "--quiet", "--no-report", "--out", directory + "/unknown"])
        XCTAssertEqual(code, 4, error)
        XCTAssertTrue(error.contains("trading.strategies[0].quantiy: unknown key"), error)
    }
}
