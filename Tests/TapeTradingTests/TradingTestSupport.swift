import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeClock
import TapeGraph
import TapeSources
import TapeRecordings
import TapeTrading

/// ../shared/data, or a skip (a failure under CI=true).
func sharedData() throws -> URL {
    let directory = packageRoot().appendingPathComponent("../shared/data").standardizedFileURL
    try requireOrSkip(FileManager.default.fileExists(atPath: directory.path), "real data at \(directory.path)")
    return directory
}

/// Runs a Python script of scripts/ with `arguments`; a missing Python module (vectorbt, numpy) skips the test
/// locally and fails it under CI.
func runPython(_ script: String, _ arguments: [String], needs modules: String) throws {
    let probe = spawnAndWait(["/usr/bin/env", "python3", "-c", "import \(modules)"])
    try requireOrSkip(probe == 0, "python3 with \(modules) (scripts/setup.sh installs it)")
    let status = spawnAndWait(["/usr/bin/env", "python3", packageRoot().appendingPathComponent("scripts/\(script)").path]
        + arguments)
    guard status == 0 else { throw MissingRequirement(description: "scripts/\(script) failed with status \(status)") }
}

/// A CSV file written by the reference scripts (no quoted fields): rows of fields, header dropped.
func readCSV(_ url: URL) throws -> [[String]] {
    let text = try String(contentsOf: url, encoding: .utf8)
    return text.split(separator: "\n").dropFirst().map { line in
        line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }
}

func number(_ text: String) -> Double {
    switch text {
    case "", "nan": return .nan
    case "inf": return .infinity
    case "-inf": return -.infinity
    default: return Double(text)!
    }
}

/// Equal within `relative` × max(1, |a|, |b|) (NaN equals NaN, infinities equal themselves).
func nearlyEqual(_ a: Double, _ b: Double, relative: Double = 1e-9) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    if a.isInfinite || b.isInfinite { return a == b }
    return abs(a - b) <= relative * max(1, abs(a), abs(b))
}

/// Reads a bar file through Tape's own reader (the production path).
func readBars(_ path: String, symbol: String = "B") throws -> (events: [MarketEvent], symbols: SymbolTable) {
    let symbols = SymbolTable()
    let options = ReaderOptions(symbols: symbols, rejects: RejectCollector(), symbol: symbol)
    let source = try openSource(path: path, format: nil, options: options)
    var events: [MarketEvent] = []
    var event = MarketEvent()
    while source.next(&event) == .event { events.append(event) }
    return (events, symbols)
}

/// Forwards the graph's outputs to the trading engine (and counts the bars it saw).
final class TradingForwarder: GraphSink {
    var engine: TradingEngine?
    var bars: [BarOutput] = []
    func emit(_ output: GraphOutput) {
        if case .bar(let bar) = output { bars.append(bar) }
        engine?.onOutput(output)
    }
}

/// Collects what the trading engine emits.
final class TradingCollector {
    var outputs: [TradingOutput] = []
    var fills: [FillRecord] { outputs.compactMap { if case .fill(let fill) = $0 { return fill } else { return nil } } }
    var totalEquity: [EquityRecord] {
        outputs.compactMap { if case .equity(let row) = $0, row.symbol == nil { return row } else { return nil } }
    }
    var orders: [OrderRecord] {
        outputs.compactMap { if case .order(let record) = $0 { return record } else { return nil } }
    }
    func lines(_ symbols: SymbolTable) -> [String] { outputs.map { $0.canonicalLine(symbols: symbols) } }
}

/// Trades precomputed signals, one per 1-minute bar close in order: a long signal holds +quantity, a short
/// signal −quantity (or flat when `longOnly`). The bar's index is the count of 1m bars seen.
final class SignalStrategy: Strategy {
    let name = "signals"
    var subscriptions: StrategySubscriptions { .bars }
    let longSignals: [Bool]
    let shortSignals: [Bool]
    let quantity: Double
    let longOnly: Bool
    private var barIndex = 0

    init(longSignals: [Bool], shortSignals: [Bool], quantity: Double, longOnly: Bool) {
        self.longSignals = longSignals
        self.shortSignals = shortSignals
        self.quantity = quantity
        self.longOnly = longOnly
    }

    func onOutput(_ output: GraphOutput, context: StrategyContext) {
        guard case .bar(let bar) = output, bar.timeframe == Timeframe(seconds: 60) else { return }
        defer { barIndex += 1 }
        if longSignals[barIndex] {
            context.targetPosition(bar.symbol, quantity)
        } else if shortSignals[barIndex] {
            context.targetPosition(bar.symbol, longOnly ? 0 : -quantity)
        }
    }

    func snapshot(into writer: inout SnapshotWriter) { writer.append(Int64(barIndex)) }
    func restore(from reader: inout SnapshotReader) throws { barIndex = Int(try reader.readInt64()) }
}

/// Bar events through a graph (1m only) into a trading engine: what a wired run does.
struct BarBacktest {
    let symbols: SymbolTable
    let graph: Graph
    let clock: SimulatedClock
    let forwarder: TradingForwarder
    let engine: TradingEngine
    let collector: TradingCollector

    init(symbols: SymbolTable, config: TradingConfig, strategies: [Strategy], graphConfig: PipelineConfig? = nil) {
        self.symbols = symbols
        var pipeline = graphConfig ?? PipelineConfig()
        if graphConfig == nil { pipeline.timeframes = [Timeframe(seconds: 60)] }
        clock = SimulatedClock()
        forwarder = TradingForwarder()
        graph = Graph(config: pipeline, clock: clock, symbols: symbols, sink: forwarder)
        let collector = TradingCollector()
        self.collector = collector
        engine = TradingEngine(config: config, strategies: strategies) { collector.outputs.append($0) }
        forwarder.engine = engine
    }

    func feed(_ events: ArraySlice<MarketEvent>) {
        for event in events {
            clock.advance(to: event.receiveTime)
            engine.onEvent(event)
            graph.onEvent(event)
        }
    }

    func finish() {
        graph.finish()
        engine.finish()
    }
}
