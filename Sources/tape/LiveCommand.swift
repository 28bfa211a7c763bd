import ArgumentParser
import Foundation
import TapeCore
import TapeTrading
import TapeFeeds
import TapeSinks
import TapeEngine
import TapeReplay
import TapeLive
import TapeConnectors
import TapeREST
import TapeModel
import TapeLogging
import Yams

/// `tape live`: connectors → stamped inbox → the replay's engine and run folder, recorded as it goes.
struct LiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Run the graph on live market feeds; record the stamped stream for an exact replay.",
        discussion: """
            Feeds: --feed NAME:SYMBOLS[=BASE_URL], repeatable. NAME is binance-spot, binance-usdm, \
            binance-cm, polygon, finage (BASE_URL required: the socket URL of your Finage market), \
            alphavantage or fmp; BASE_URL points the connector elsewhere (tape feed-sim: \
            --feed binance-usdm:btcusdt=ws://127.0.0.1:PORT). Keys from POLYGON_API_KEY, FINAGE_API_KEY, \
            ALPHAVANTAGE_API_KEY, FMP_API_KEY (never logged or recorded). \
            Exit codes as replay's, plus 7: a feed refused the credentials.
            """)

    @Option(name: .customLong("feed"), help: "A feed: NAME:SYMBOLS[=BASE_URL] (repeatable).")
    var feeds: [String] = []

    @Option(help: "Binance streams per symbol (comma-separated): trade, bookTicker, aggTrade.")
    var binanceStreams: String = "trade,bookTicker"

    @Option(help: "Polygon channels per symbol (comma-separated): T, Q, AM.")
    var polygonChannels: String = "T,Q"

    @Option(help: "Seconds between two polling rounds of a REST feed (each vendor's rate limits still apply).")
    var pollSeconds: Double?

    @Option(help: "Run folder (default reports/live-<time>/).")
    var out: String?

    @Option(help: "Record the stamped stream here (default <run folder>/recording).")
    var record: String?

    @Option(help: "Start a new recording file per feed after this many MB (uncompressed).")
    var recordMaxMb: Int = 256

    @Flag(help: "Do not record the stream.")
    var noRecord = false

    @Option(help: "Session length, e.g. 30s, 5m, 2h (default: until SIGINT/SIGTERM).")
    var duration: String?

    @Option(help: "Clock tick period in ms (ticks close bars while the market is quiet).")
    var tickMs: Int?

    @Option(help: "Replay these recordings first (flat out), then continue live (repeatable).")
    var warmup: [String] = []

    @OptionGroup var bars: BarFileOptions

    @Option(help: "Continue from this checkpoint.")
    var snapshotIn: String?

    @Option(help: "End in a checkpoint written here.")
    var snapshotOut: String?

    @Option(help: "Pipeline config (YAML; default config/pipeline.yaml if present).")
    var config: String?

    @Option(help: "Paper trading: strategies, simulated execution and account (YAML with a trading: section, the same file as for replay; docs/backtesting.md). Orders, fills, positions and equity go to the run folder and to the --store stores (PostgreSQL tables, Redis and the WebSocket).")
    var trading: String?

    @Option(help: "Seconds without a message before a connection counts as silent and is reconnected.")
    var readTimeoutSeconds: Double?

    @Option(help: "Live settings file (YAML): tick_ms, read_timeout_seconds, poll_seconds, feeds (see README).")
    var liveConfig: String?

    @Option(help: "Run this trained model (a `tape train` run folder's model/ directory) on every bar: predictions.csv.")
    var model: String?

    @Flag(help: "No per-reject messages on stderr.")
    var quiet = false

    @OptionGroup var store: StoreOptions

    @OptionGroup var bus: BusOptions

    @OptionGroup var metricsListen: MetricsListenOptions

    @OptionGroup var logging: LoggingOptions

    mutating func run() throws {
        logging.apply()
        // The settings file first; the command line adds feeds and overrides its values.
        var file = LiveConfigFile()
        if let liveConfig {
            do { file = try LiveConfigFile.load(path: liveConfig) }
            catch { fail("\(liveConfig): \(error)", code: TapeExit.unusableInput) }
        }
        let feeds = file.feeds + self.feeds
        let tickMs = self.tickMs ?? file.tickMs ?? 100
        let readTimeoutSeconds = self.readTimeoutSeconds ?? file.readTimeoutSeconds ?? 10
        let pollSeconds = self.pollSeconds ?? file.pollSeconds ?? 60
        guard !feeds.isEmpty else { throw ValidationError("give at least one --feed NAME:SYMBOLS") }
        guard (1...60_000).contains(tickMs) else { throw ValidationError("tick ms \(tickMs): expected 1 ... 60000") }
        guard readTimeoutSeconds > 0, readTimeoutSeconds <= 3_600 else {
            throw ValidationError("read timeout seconds: expected 0 < seconds <= 3600")
        }
        var settings = WebSocketSettings()
        settings.readTimeoutNanos = Int64(readTimeoutSeconds * 1e9)
        guard pollSeconds >= 0.01, pollSeconds <= 86_400 else {
            throw ValidationError("poll seconds: expected 0.01 ... 86400")
        }
        let interval = Int64(pollSeconds * 1e9)
        let connectors = try feeds.map { try Self.connector($0, settings: settings, binanceStreams: binanceStreams,
                                                             polygonChannels: polygonChannels,
                                                             restIntervalNanos: interval) }
        var run = ReplayOptions(inputs: warmup)
        run.bars = try bars.barOptions()
        do { try loadConfig(into: &run, path: config, trading: trading) }
        catch let error as UnusableInput { fail(error.description, code: TapeExit.unusableInput) }
        run.outDir = out
        run.quiet = quiet
        run.snapshotIn = snapshotIn
        run.snapshotOut = snapshotOut
        // Rejects, layouts and warnings of the session: events like the others (JSON with --log-format json).
        let runLogger = Logger(label: "tape.run")
        run.messagePrinter = { line in runLogger.log(level: line.hasPrefix("tape: warning:") ? .warning : .notice, "\(line)") }
        // `/ready`: the feeds (registered by the session), the stores and the Kafka producer as they see them.
        let readiness = Readiness()
        let registry = StoreRegistry()
        readiness.register("stores") { registry.dependencies }
        let exported = try metricsListen.start(readiness: readiness)
        defer { exported?.1.stop() }
        run.sinkFactories = try store.factories(extra: file.stores, board: exported?.0, registry: registry)
        if let publish = try bus.factory(clientID: "tape-ingest", registry: registry) {
            run.sinkFactories.append(publish)
        }
        run.describedInputs = warmup + feeds
        if let model {
            do { run.engine.extraNodes.append(try InferenceNode(modelPath: modelFile(model))) }
            catch { fail("\(model): \(error)", code: TapeExit.unusableInput) }
        }
        if let node = tradingNode(run.engine.config, source: trading ?? config ?? "config/pipeline.yaml") {
            run.engine.extraNodes.append(node)
        }
        // Polled bars reach the graph a poll period (plus the vendor's delay) after their end; below that
        // lateness every one of them would be a late tick. Say so before the session, not after.
        let restFeeds = feeds.filter { $0.hasPrefix("alphavantage:") || $0.hasPrefix("fmp:") }
        if !restFeeds.isEmpty && run.engine.config.allowedLateness <= interval {
            tapeLogger.warning(.text("tape: warning: REST feeds (\(restFeeds.map { String($0.prefix { $0 != ":" }) }.joined(separator: ", "))) "
                + "deliver a bar about \(Numbers.format(pollSeconds)) s after it ends, but allowed_lateness is "
                + "\(Numbers.format(Double(run.engine.config.allowedLateness) / 1e9)) s: their bars will be late ticks. "
                + "Set allowed_lateness above the poll period plus the vendor's delay in --config (e.g. 3m with poll_seconds 60)."),
                metadata: ["event": "late_rest_bars"])
        }
        var options = LiveOptions(feeds: connectors, run: run)
        options.readiness = readiness
        options.tickNanos = Int64(tickMs) * 1_000_000
        if let duration {
            guard let nanos = Self.parseDuration(duration) else {
                throw ValidationError("--duration '\(duration)': expected a number with s, m or h (e.g. 30s)")
            }
            options.durationNanos = nanos
        }
        options.record = !noRecord
        options.recordDirectory = record
        guard (1...1_000_000).contains(recordMaxMb) else { throw ValidationError("--record-max-mb: expected 1 ... 1000000") }
        options.recordMaxBytes = Int64(recordMaxMb) << 20
        let summary: ReplaySummary
        do { summary = try runLive(options) }
        catch let error as UnusableInput { fail(error.description, code: TapeExit.unusableInput) }
        catch let error as OutputFailed { fail(error.description, code: TapeExit.outputFailed) }
        let rejects = summary.rejectsByReason.keys.sorted().map { "\($0)=\(summary.rejectsByReason[$0]!)" }.joined(separator: " ")
        options.logger.info(.text("tape: live: session ended (\(summary.summary.stop)); \(summary.ticksIn) ticks in, "
                                  + "\(summary.ticksRejected) rejected\(rejects.isEmpty ? "" : " (\(rejects))"), run folder \(summary.runDir)"),
                            metadata: ["event": "session_ended", "ticks_in": .stringConvertible(summary.ticksIn),
                                       "ticks_rejected": .stringConvertible(summary.ticksRejected),
                                       "rejects": .dictionary(summary.rejectsByReason.mapValues { .stringConvertible($0) }),
                                       "exit_code": .stringConvertible(Int(summary.exitCode))])
        printSummary(summary)
        checkStrategies(run.engine.extraNodes)
        if !noRecord { print("recording       \(record ?? summary.runDir + "/recording")") }
        if summary.exitCode != 0 { throw ArgumentParser.ExitCode(summary.exitCode) }
    }

    /// `30s`, `5m`, `2h`, `1.5s` → ns.
    static func parseDuration(_ text: String) -> Int64? {
        guard let unit = text.last, let value = Double(text.dropLast()), value > 0, value.isFinite else { return nil }
        let seconds: Double
        switch unit {
        case "s": seconds = value
        case "m": seconds = value * 60
        case "h": seconds = value * 3_600
        default: return nil
        }
        guard seconds <= 366 * 86_400 else { return nil }
        return Int64(seconds * 1e9)
    }

    /// `NAME:SYMBOLS[=BASE_URL]` → a connector.
    static func connector(_ text: String, settings: WebSocketSettings, binanceStreams: String,
                          polygonChannels: String, restIntervalNanos: Int64) throws -> any FeedConnector {
        let urlSplit = text.split(separator: "=", maxSplits: 1).map(String.init)
        let nameAndSymbols = urlSplit[0].split(separator: ":", maxSplits: 1).map(String.init)
        let name = nameAndSymbols[0]
        let symbols = (nameAndSymbols.count > 1 ? nameAndSymbols[1] : "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !symbols.isEmpty else { throw ValidationError("--feed '\(text)': name the symbols, NAME:SYM,SYM") }
        let baseOverride = urlSplit.count > 1 ? urlSplit[1] : nil
        let rest = name == "alphavantage" || name == "fmp"
        if let base = baseOverride {
            let schemes = rest ? ["http://", "https://"] : ["ws://", "wss://"]
            guard schemes.contains(where: { base.hasPrefix($0) }) else {
                throw ValidationError("--feed '\(name)': base URL must start with \(schemes.joined(separator: " or "))")
            }
        }
        func key(_ variable: String) throws -> String {
            guard let key = ProcessInfo.processInfo.environment[variable], !key.isEmpty else {
                throw ValidationError("--feed \(name) needs \(variable) in the environment")
            }
            return key
        }
        switch name {
        case "binance-spot", "binance-usdm", "binance-cm":
            let venue = String(name.dropFirst("binance-".count))
            let kinds = binanceStreams.split(separator: ",").map { String($0) }
            let streams = symbols.flatMap { symbol in kinds.map { "\(symbol.lowercased())@\($0)" } }
            return WebSocketFeed(spec: FeedSpec(name: name, wireProtocol: .binance, venue: venue),
                                 vendor: BinanceVendor(streams: streams),
                                 baseURL: baseOverride ?? BinanceVendor.defaultBaseURL(venue: venue), settings: settings)
        case "polygon":
            let key = try key("POLYGON_API_KEY")
            let channels = symbols.flatMap { symbol in
                polygonChannels.split(separator: ",").map { "\($0).\(symbol.uppercased())" }
            }
            return WebSocketFeed(spec: FeedSpec(name: name, wireProtocol: .polygon, venue: nil),
                                 vendor: PolygonVendor(key: key, channels: channels),
                                 baseURL: baseOverride ?? PolygonVendor.defaultBaseURL, settings: settings)
        case "finage":
            let key = try key("FINAGE_API_KEY")
            guard let base = baseOverride else {
                throw ValidationError("--feed finage needs its socket URL: finage:SYMBOLS=wss://<id>.finage.ws:<port>")
            }
            return WebSocketFeed(spec: FeedSpec(name: name, wireProtocol: .finage, venue: "finage"),
                                 vendor: FinageVendor(key: key, symbols: symbols.map { $0.uppercased() }),
                                 baseURL: base, settings: settings)
        case "alphavantage":
            let key = try key("ALPHAVANTAGE_API_KEY")
            let base = baseOverride ?? AlphaVantagePoller.defaultBaseURL
            let peer = "alphavantage " + (URLComponents(string: base)?.host ?? base)
            let upper = symbols.map { $0.uppercased() }
            let log = TapeLogging.lines(Logger(label: "tape.feed"), metadata: ["feed": .string(name), "peer": .string(peer)])
            return RESTFeed(spec: FeedSpec(name: name, wireProtocol: .alphavantage, venue: nil), peer: peer) { deliver in
                try AlphaVantagePoller(symbols: upper, endpoint: .intraday1min, apiKey: key, baseURL: base,
                                       roundIntervalNanoseconds: restIntervalNanos, log: log, deliver: deliver)
            }
        case "fmp":
            let key = try key("FMP_API_KEY")
            let base = baseOverride ?? FMPPoller.defaultBaseURL
            let peer = "fmp " + (URLComponents(string: base)?.host ?? base)
            let upper = symbols.map { $0.uppercased() }
            let log = TapeLogging.lines(Logger(label: "tape.feed"), metadata: ["feed": .string(name), "peer": .string(peer)])
            return RESTFeed(spec: FeedSpec(name: name, wireProtocol: .fmp, venue: nil), peer: peer) { deliver in
                try FMPPoller(symbols: upper, endpoint: .historicalChart1min, apiKey: key, baseURL: base,
                              roundIntervalNanoseconds: restIntervalNanos, log: log, deliver: deliver)
            }
        default:
            throw ValidationError("--feed '\(name)': unknown feed (binance-spot, binance-usdm, binance-cm, polygon, "
                                  + "finage, alphavantage, fmp)")
        }
    }
}

/// `tape live --live-config FILE`: the live settings as YAML, the same names as the flags.
///
///     tick_ms: 100
///     read_timeout_seconds: 10
///     poll_seconds: 60
///     feeds:
///       - {feed: binance-usdm, symbols: [btcusdt, ethusdt], url: "ws://127.0.0.1:9000"}
///       - {feed: polygon, symbols: [AAPL]}
///     stores: ["postgres://postgres@127.0.0.1:55432/tape"]
///     stack: {…}
///
/// `stack` describes the processes `make live` starts around the session (scripts/live.sh reads it; see
/// docs/operations.md) and is ignored here, so `config/live.yaml` serves both. Unknown keys are errors naming
/// their path (as in the pipeline config). Keys stay in the environment.
struct LiveConfigFile {
    var tickMs: Int? = nil
    var readTimeoutSeconds: Double? = nil
    var pollSeconds: Double? = nil
    /// As `--feed` values: `NAME:SYMBOLS[=URL]`.
    var feeds: [String] = []
    /// As `--store` values (URLs).
    var stores: [String] = []

    struct Invalid: Error, CustomStringConvertible { let description: String }

    static func load(path: String) throws -> LiveConfigFile {
        guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw Invalid(description: "cannot read")
        }
        guard let root = try Yams.compose(yaml: text), let mapping = root.mapping else {
            throw Invalid(description: "expected a mapping of settings")
        }
        var config = LiveConfigFile()
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "tick_ms":
                guard let number = value.int else { throw Invalid(description: "tick_ms: expected an integer") }
                config.tickMs = number
            case "read_timeout_seconds":
                guard let number = value.float else { throw Invalid(description: "\(key): expected a number") }
                config.readTimeoutSeconds = number
            case "poll_seconds":
                guard let number = value.float else { throw Invalid(description: "\(key): expected a number") }
                config.pollSeconds = number
            case "feeds":
                guard let list = value.sequence else { throw Invalid(description: "feeds: expected a list") }
                for (index, item) in list.enumerated() {
                    config.feeds.append(try feed(item, path: "feeds[\(index)]"))
                }
            case "stores":
                guard let list = value.sequence else { throw Invalid(description: "stores: expected a list of URLs") }
                for (index, item) in list.enumerated() {
                    guard let url = item.string else { throw Invalid(description: "stores[\(index)]: expected a URL") }
                    config.stores.append(url)
                }
            case "stack":
                guard value.mapping != nil else { throw Invalid(description: "stack: expected a mapping") }
            default:
                throw Invalid(description: "\(key): unknown key (tick_ms, read_timeout_seconds, poll_seconds, feeds, stores, stack)")
            }
        }
        return config
    }

    private static func feed(_ node: Node, path: String) throws -> String {
        guard let mapping = node.mapping else { throw Invalid(description: "\(path): expected a mapping") }
        var name: String? = nil
        var symbols: [String] = []
        var url: String? = nil
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "feed": name = value.string
            case "symbols":
                guard let list = value.sequence else { throw Invalid(description: "\(path).symbols: expected a list") }
                symbols = list.compactMap(\.string)
            case "url": url = value.string
            default: throw Invalid(description: "\(path).\(key): unknown key (feed, symbols, url)")
            }
        }
        guard let name, !name.isEmpty else { throw Invalid(description: "\(path).feed: missing") }
        guard !symbols.isEmpty else { throw Invalid(description: "\(path).symbols: give at least one") }
        return "\(name):\(symbols.joined(separator: ","))" + (url.map { "=" + $0 } ?? "")
    }
}
