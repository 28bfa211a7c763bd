import Foundation
import TapeCore
import TapeEngine
import TapeGraph
import TapeRecordings
import TapeRedis
import TapeSinks
import TapeSources
import TapeTestSupport
import XCTest

/// The Redis of `make services` (config/services.env), its client, and the real input replayed in tests.
enum RedisTestSupport {
    static let port = 56379
    static let url = "redis://127.0.0.1:\(port)"

    static func packageRoot(_ file: String = #filePath) -> URL { TapeTestSupport.packageRoot(containing: file) }

    /// A connection to the test server, or the test is skipped (failed under CI=true).
    static func connect(_ url: String = RedisTestSupport.url) throws -> RedisConnection {
        do { return try RedisConnection(url: url) } catch {
            try skipOrFail(missing: "Redis of `make services` at \(url) (scripts/services.sh start): \(error)")
        }
    }

    /// A key prefix of this process and test, so runs and tests never see each other's keys.
    static func prefix(_ test: String) -> String { "tape-test-\(getpid())-\(test):" }

    /// Every key under `prefix`.
    static func keys(_ redis: RedisConnection, prefix: String) throws -> [String] {
        var cursor = "0"
        var found: [String] = []
        repeat {
            let reply = try redis.command(["SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"])
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string,
                  let keys = parts[1].array else {
                throw MissingRequirement(description: "SCAN answered \(reply)")
            }
            found += keys.compactMap(\.string)
            cursor = next
        } while cursor != "0"
        return found.sorted()
    }

    static func deleteKeys(_ redis: RedisConnection, prefix: String) throws {
        for key in try keys(redis, prefix: prefix) { _ = try redis.command(["DEL", key]) }
    }

    /// What Redis holds under `prefix`: hashes as dictionaries, sorted sets as their members in order.
    static func snapshot(_ redis: RedisConnection, prefix: String) throws -> CacheState {
        var state = CacheState()
        for key in try keys(redis, prefix: prefix) {
            let type = try redis.command(["TYPE", key]).string
            switch type {
            case "hash": state.hashes[key] = try redis.command(["HGETALL", key]).fieldValues
            case "zset": state.lists[key] = try redis.command(["ZRANGE", key, "0", "-1"]).array?.compactMap(\.string)
            default: state.others.append("\(key) (\(type ?? "?"))")
            }
        }
        return state
    }

    /// Runs a command line (through `/usr/bin/env`), returns its exit status and output.
    ///
    /// Not Foundation's `Process`: it learns that the child ended when a socket the child inherits is
    /// closed, and a server the command starts in the background (`redis-server --daemonize yes`)
    /// inherits that socket too and holds it for ever. Here the child gets no descriptor but its output
    /// file, and the wait is `waitpid` on the child itself.
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("tape-redis-test-\(getpid())-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap({ Int32($0) }) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw MissingRequirement(description: "cannot run \(arguments): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }

    static func redisIsUp() -> Bool {
        (try? run(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "ping"]).output)?.contains("PONG") ?? false
    }

    /// `redis-cli shutdown nosave`, then waits until the port no longer answers.
    static func stopRedis() throws {
        try run(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "shutdown", "nosave"])
        for _ in 0..<100 where redisIsUp() { usleep(50_000) }
        XCTAssertFalse(redisIsUp(), "Redis stopped")
    }

    /// `scripts/services.sh start` (idempotent; waits until every server answers).
    static func startServices(script: URL) throws {
        let result = try run([script.path, "start"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(redisIsUp(), "Redis answers after \(script.path) start: \(result.output)")
    }

    /// The `scripts/services.sh` that started the running server: the one of the checkout whose
    /// `.tape/redis` is the server's directory (several checkouts share the ports of config/services.env),
    /// so that a restart brings the server back with its own data (append-only file); this checkout's
    /// script when the directory is not a checkout's.
    static func servicesScript(of redis: RedisConnection) throws -> URL {
        let directory = try redis.command(["CONFIG", "GET", "dir"]).array?.last?.string ?? ""
        let checkout = URL(fileURLWithPath: directory).deletingLastPathComponent().deletingLastPathComponent()
        let script = checkout.appendingPathComponent("scripts/services.sh")
        if directory.hasSuffix("/.tape/redis") && FileManager.default.isExecutableFile(atPath: script.path) {
            return script
        }
        return packageRoot().appendingPathComponent("scripts/services.sh")
    }

    // MARK: the input

    /// Real captures (trades and quotes of three instruments) and a month of 1-minute bars of a fourth.
    static let captureFiles = ["binance-feed/spot-btcusdt_20240808.gz", "binance-feed/spot-ethusdt_20240808.gz",
                               "binance-feed/cm-btcusd_perp_20240808.gz"]
    static let barFile = "bars/btc-perp-20211231-20220201_1m.csv.gz"

    private static let inputLock = NSLock()
    nonisolated(unsafe) private static var loadedInput: Replay? = nil

    /// The input merged by receive time, read once per process.
    static func input() throws -> Replay {
        inputLock.lock()
        defer { inputLock.unlock() }
        if let loadedInput { return loadedInput }
        let data = packageRoot().appendingPathComponent("../shared/data").standardized
        guard FileManager.default.fileExists(atPath: data.appendingPathComponent(barFile).path) else {
            try skipOrFail(missing: "real data at \(data.path)")
        }
        let symbols = SymbolTable()
        var sources: [any EventSource] = []
        for (index, file) in (captureFiles + [barFile]).enumerated() {
            let options = ReaderOptions(symbols: symbols, rejects: RejectCollector(), sourceIndex: UInt32(index),
                                        symbol: file == barFile ? "BTC-PERP" : nil)
            sources.append(try openSource(path: data.appendingPathComponent(file).path, format: nil, options: options))
        }
        let merged = MergedSource(sources)
        var events: [MarketEvent] = []
        var event = MarketEvent()
        while merged.next(&event) == .event { events.append(event) }
        let replay = Replay(symbols: symbols, events: events)
        loadedInput = replay
        return replay
    }

    static func config() -> PipelineConfig {
        var config = PipelineConfig()
        config.timeframes = [Timeframe(seconds: 60), Timeframe(seconds: 300), Timeframe(seconds: 900)]
        return config
    }

    /// Replays `events` through an engine with `sinks` and a `CollectingSink`, to the end.
    static func replay(_ input: Replay, sinks: [any GraphSink], driver: any EngineDriver = FlatOut(),
                       checkInterval: Int = 4096) -> (engine: Engine, collected: CollectingSink, stop: EngineStop) {
        var settings = EngineSettings(config: config())
        settings.checkInterval = checkInterval
        let collected = CollectingSink()
        let engine = Engine(settings: settings, symbols: input.symbols, sinks: [collected] + sinks)
        let stop = engine.run(ArraySource(input.events), driver: driver)
        engine.finish()
        return (engine, collected, stop)
    }
}

/// The input, read once.
final class Replay: Sendable {
    let symbols: SymbolTable
    let events: [MarketEvent]
    init(symbols: SymbolTable, events: [MarketEvent]) {
        self.symbols = symbols
        self.events = events
    }
}

final class ArraySource: EventSource {
    let name = "array"
    var formatName: String { "array" }
    private(set) var stats = SourceStats()
    private let events: [MarketEvent]
    private var position = 0
    init(_ events: [MarketEvent]) { self.events = events }
    func next(_ event: inout MarketEvent) -> SourceStep {
        guard position < events.count else { return .end }
        event = events[position]
        position += 1
        stats.events += 1
        return .event
    }
}

final class FlatOut: EngineDriver {
    let paces = false
}

/// Lines a sink logged (the printer closure runs on the writer thread).
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) {
        lock.lock()
        stored.append(line)
        lock.unlock()
    }
    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// A key space under one prefix, as the tests compare it.
struct CacheState: Equatable {
    var hashes: [String: [String: String]?] = [:]
    var lists: [String: [String]?] = [:]
    var others: [String] = []
}

/// The state Redis must hold after a replay, computed from the collected outputs and the input only
/// (CSV text of the outputs, as the run folder writes it), never from the Redis code.
struct ExpectedCache {
    var state = CacheState()
    var anomaliesInOrder: [String] = []

    init(prefix: String, input: Replay, outputs: [GraphOutput], barListLength: Int, anomalyListLength: Int) {
        let symbols = input.symbols
        func columns(_ kind: String) -> [String] {
            GraphOutput.csvHeaders[kind]!.split(separator: ",").map(String.init)
        }
        func row(_ output: GraphOutput) -> [String] {
            output.csvRow(symbols: symbols).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        // Bars and their indicators, per symbol and timeframe, in emission order.
        var series: [String: [(fields: [(String, String)], bar: BarOutput)]] = [:]
        var order: [String] = []
        var anomalies: [(time: Nanos, member: String)] = []
        for output in outputs {
            switch output {
            case .bar(let bar):
                let key = "\(symbols.name(bar.symbol)):\(bar.timeframe)"
                let fields = Array(zip(columns("bars"), row(output)).dropFirst(2))  // symbol, timeframe
                if series[key] == nil { order.append(key) }
                series[key, default: []].append((fields, bar))
            case .indicators(let indicators):
                let key = "\(symbols.name(indicators.symbol)):\(indicators.timeframe)"
                let last = series[key]!.count - 1
                precondition(series[key]![last].bar.end == indicators.end, "indicators follow their bar")
                series[key]![last].fields += Array(zip(columns("indicators"), row(output)).dropFirst(3))
            case .anomaly(let anomaly):
                let text = Array(zip(columns("anomalies"), row(output)))
                let member = "{" + text.map { name, value in
                    let quoted = ["symbol", "rule", "severity"].contains(name)
                    return "\"\(name)\":" + (quoted ? "\"\(value)\"" : value.isEmpty ? "null" : value)
                }.joined(separator: ",") + "}"
                anomalies.append((anomaly.time, member))
                anomaliesInOrder.append(member)
            case .lateTick, .prediction, .trading:
                continue
            }
        }
        for key in order {
            let bars = series[key]!
            state.hashes["\(prefix)latest:bar:\(key)"] = Dictionary(uniqueKeysWithValues: bars.last!.fields)
            state.lists["\(prefix)bars:\(key)"] = bars.suffix(barListLength).map { entry in
                "{" + entry.fields.map { "\"\($0.0)\":" + ($0.1.isEmpty ? "null" : $0.1) }.joined(separator: ",") + "}"
            }
        }
        if !anomalies.isEmpty {
            let newest = anomalies.sorted { ($0.time, $0.member) < ($1.time, $1.member) }.suffix(anomalyListLength)
            state.lists["\(prefix)anomalies"] = newest.map(\.member)
        }
        // The latest trade and quote per symbol: the last of each in the input (every event is delivered).
        let format = Numbers.format
        for event in input.events {
            let symbol = symbols.name(event.symbol)
            switch event.kind {
            case .trade:
                state.hashes["\(prefix)latest:trade:\(symbol)"] = [
                    "event_time_ns": String(event.eventTime), "receive_time_ns": String(event.receiveTime),
                    "price": format(event.price), "size": format(event.size), "side": String(event.side),
                    "sequence": String(event.sequence),
                ]
            case .quote:
                state.hashes["\(prefix)latest:quote:\(symbol)"] = [
                    "event_time_ns": String(event.eventTime), "receive_time_ns": String(event.receiveTime),
                    "bid": format(event.bid), "bid_size": format(event.bidSize), "ask": format(event.ask),
                    "ask_size": format(event.askSize),
                ]
            case .bar, .clockTick:
                continue
            }
        }
    }
}
