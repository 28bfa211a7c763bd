import Foundation
import TapeCore
import TapeGraph
import TapeSinks
import TapeLogging
#if canImport(Glibc)
import Glibc
#endif

/// How the Redis hot cache writes. Every limit is named; the defaults are documented in
/// docs/storage-redis.md.
public struct RedisSinkOptions: Sendable, Equatable {
    /// Prepended to every key and to the anomaly channel (see `RedisLayout`).
    public var keyPrefix = RedisLayout.defaultPrefix
    /// Bars kept per symbol and timeframe in `<prefix>bars:<symbol>:<timeframe>`.
    public var barListLength = 500
    /// Anomalies kept in `<prefix>anomalies`; also the most anomalies held for publishing while Redis is down.
    public var anomalyListLength = 1000
    /// Order changes kept per symbol in `<prefix>orders:<symbol>`, and fills in `<prefix>fills:<symbol>`
    /// (paper trading); also the most held per list while Redis is down.
    public var tradingListLength = 500
    /// Every key expires this long after its last write (a per-timeframe key: at least two timeframes);
    /// nil = never. Relative to the wall clock at the write, not to event time, so the state of a replay
    /// of old data is as readable as a live one.
    public var ttlSeconds: Int64? = 7 * 86_400
    /// The engine thread hands what it coalesced to the writer at most once per this interval (wall time,
    /// checked in `poll()`, which the engine calls whenever its input is idle — a live driver waiting for
    /// input wakes by `pollDue` — and every few thousand events): at once when the last hand-over is at
    /// least this old (leading edge: the first tick after a quiet spell is not held), otherwise as soon as
    /// it becomes so. So a busy symbol's latest trade and
    /// quote are published (and their hashes written) at most once per interval — the conflation that
    /// bounds the WebSocket fan-out — and a waiting item is held at most this long. 2 ms: the interval is a
    /// floor under the p99 to the WebSocket clients (docs/storage-redis.md, measured in BENCHMARKS.md) …
    public var handoverIntervalNanoseconds: Int64 = 2_000_000
    /// … or when this many items (dirty latest values + bars + predictions + anomalies) are waiting.
    public var handoverItemsMax = 4096
    /// Commands per pipelined round trip (a key's commands are never split, so a round may go beyond).
    public var pipelineCommandsMax = 8192
    public var connectTimeoutNanoseconds: Int64 = 2_000_000_000
    /// Longest wait for one reply; a server that does not answer in time counts as down.
    public var commandTimeoutNanoseconds: Int64 = 5_000_000_000
    /// Reconnect waits: jittered exponential backoff (`Backoff`) between these bounds.
    public var backoffInitialNanoseconds: Int64 = 100_000_000
    public var backoffMaxNanoseconds: Int64 = 10_000_000_000
    public var backoffSeed: UInt64 = 0x7265_6469_73
    /// `close()` while Redis is down waits this long for it to come back before giving up on what is
    /// pending (counted in `unwrittenAtClose`, not an error).
    public var closeWaitNanoseconds: Int64 = 5_000_000_000
    /// Publish every update on `<prefix>updates` for `tape serve`'s WebSocket clients (`RedisLayout.updateMessage`):
    /// the latest trade and quote per symbol at each hand-over (not every tick), every bar with its
    /// indicators, every prediction and anomaly. A publish no one listens to costs Redis next to nothing.
    public var publishUpdates = true
    /// false (default): a server that cannot be reached at start is an error. true: start down and
    /// connect when it comes up (a live service that must not wait on its cache).
    public var startWhenDown = false

    public init() {}

    var layout: RedisLayout { RedisLayout(prefix: keyPrefix) }
}

/// What the Redis sink did, for the run's summary (a consistent snapshot at any time).
public struct RedisSinkCounters: Sendable, Equatable, Codable {
    /// Batches the engine thread handed to the writer thread.
    public var handovers = 0
    /// Pipelined round trips that were fully answered.
    public var batches = 0
    /// Commands sent and answered.
    public var commands = 0
    /// Latest-value hashes written (trade, quote, bar, prediction; rewrites after a reconnect included).
    public var keysWritten = 0
    /// Bars and anomalies added to the capped sorted sets.
    public var listEntriesWritten = 0
    /// Anomalies published on the channel.
    public var anomaliesPublished = 0
    /// Updates published on `<prefix>updates` (`publishUpdates`).
    public var updatesPublished = 0
    /// Times Redis went down (a failed write or reconnect after being up).
    public var outages = 0
    /// Successful reconnects.
    public var reconnects = 0
    /// Keys and list entries written by the first round after each reconnect: what was held in memory.
    public var writtenAfterReconnect = 0
    /// Bars never sent because `barListLength` newer ones of the same list were waiting (Redis would
    /// have trimmed them at once).
    public var listEntriesSkipped = 0
    /// Anomalies beyond `anomalyListLength` dropped while Redis was down (neither kept nor published).
    public var anomaliesDroppedWhileDown = 0
    /// Keys and list entries still pending when `close()` gave up on a server that stayed down.
    public var unwrittenAtClose = 0
    /// Items dropped after a failure (a server error that is not an outage, e.g. WRONGTYPE).
    public var droppedAfterFailure = 0
    /// Most keys and list entries pending at once (writer side).
    public var pendingMax = 0
    /// Indicator outputs that did not follow their bar (not cached; the graph always emits the bar first).
    public var indicatorsWithoutBar = 0

    public init() {}

    /// The counters as a JSON object for the run's summary (keys as in this type).
    public var json: JSONValue {
        .object([
            ("handovers", .int(Int64(handovers))), ("batches", .int(Int64(batches))),
            ("commands", .int(Int64(commands))), ("keys_written", .int(Int64(keysWritten))),
            ("list_entries_written", .int(Int64(listEntriesWritten))),
            ("anomalies_published", .int(Int64(anomaliesPublished))),
            ("updates_published", .int(Int64(updatesPublished))), ("outages", .int(Int64(outages))),
            ("reconnects", .int(Int64(reconnects))), ("written_after_reconnect", .int(Int64(writtenAfterReconnect))),
            ("list_entries_skipped", .int(Int64(listEntriesSkipped))),
            ("anomalies_dropped_while_down", .int(Int64(anomaliesDroppedWhileDown))),
            ("unwritten_at_close", .int(Int64(unwrittenAtClose))),
            ("dropped_after_failure", .int(Int64(droppedAfterFailure))), ("pending_max", .int(Int64(pendingMax))),
            ("indicators_without_bar", .int(Int64(indicatorsWithoutBar))),
        ])
    }
}

/// The Redis hot cache behind the engine: the latest trade, quote, bar (with its indicators) and
/// prediction per symbol, the last N bars per symbol and timeframe, and every anomaly on a channel and in
/// a capped set; with paper trading the latest position and equity per symbol and the last N order changes
/// and fills per symbol (key layout: `RedisLayout`, docs/storage-redis.md).
///
///     options.sinkFactories.append(try RedisSink.factory(url: "redis://127.0.0.1:56379"))  // per run, or:
///     let redis = try RedisSink(url: "redis://127.0.0.1:56379", symbols: symbols) { print($0) }
///     let engine = Engine(settings: settings, symbols: symbols, sinks: [folder, redis])   // counters: redis.report
///
/// Contract:
/// - Engine thread (`record`, `emit`, `poll`, `flush`, `close`): never waits on the network. It coalesces
///   — newest trade and quote per symbol in arrays indexed by symbol id (no allocation per tick once
///   warm), every bar with the indicators that follow it, predictions, anomalies — and hands that to the
///   writer thread when the oldest item has waited `handoverIntervalNanoseconds` (checked in `poll()`) or
///   `handoverItemsMax` items wait. Symbol names are read from the engine's `SymbolTable` on the engine
///   thread only; the writer gets Strings. A bar and its indicators are never split across handovers.
/// - Writer thread: merges handovers into its pending state (newest value per key, at most
///   `barListLength` bars per list) and writes it pipelined: a hash per latest key (`HSET` of every field,
///   so no field is stale) and `EXPIRE`; per bar `ZREMRANGEBYSCORE end end` + `ZADD end member`, then one
///   trim per list; per anomaly `ZADD` + `PUBLISH`. Every write is idempotent but `PUBLISH`, so a round
///   cut by a failure is written again whole (an anomaly may then be published twice, never lost).
/// - Outage: a connection failure, a timeout or a transient server state (`LOADING`, `BUSY`, `OOM`, …)
///   is not a failure. The sink logs one line naming the server, keeps the pending state in memory
///   (bounded: symbols × keys, N entries per list), retries with jittered backoff (`Backoff`) when there
///   is something to write, and on reconnect writes every latest key it knows (so the latest state is
///   right even if the server came back empty) and then the pending list entries and anomalies, in
///   order, and logs one line. `failure` stays nil; the counters show it.
/// - Failure: any other error reply (e.g. `WRONGTYPE` from a foreign key under the prefix) is the
///   sink's `failure` (the engine stops the run); later items are dropped and counted.
/// - `flush()` returns when everything handed over is written and acknowledged, or when Redis is down
///   (then it is held in memory). `close()` writes what is pending, waits at most
///   `closeWaitNanoseconds` for a server that is down, ends the writer; idempotent. Both throw the failure.
/// - Late ticks are not cached (they are in the run folder and the stores of history).
public final class RedisSink: EventSink, @unchecked Sendable {
    public let name: String
    public let options: RedisSinkOptions
    public let layout: RedisLayout
    /// `host:port` of the server.
    public let peer: String
    /// The server as the writer sees it (`/ready`): down from a failed write or connection to the reconnect.
    public let dependency: DependencyTracker

    private let symbols: SymbolTable
    private let mailbox: RedisMailbox

    // Engine thread only.
    private var trades = LatestTicks()
    private var quotes = LatestTicks()
    private var bars: [NamedBar] = []
    private var predictions: [NamedPrediction] = []
    private var anomalies: [NamedAnomaly] = []
    private var trading: [NamedTrading] = []
    /// Whether anything waits to be handed over.
    private var waiting = false
    /// Monotonic time of the last hand-over (0: none yet).
    private var lastHandover: Int64 = 0
    private var closed = false

    /// Parses the URL (a bad one throws), connects (an unreachable server throws unless
    /// `options.startWhenDown`) and starts the writer thread. `log` gets one line per state change of
    /// the server (`tape: redis host:port: down (…)`, `… up again after …`), on the writer thread.
    public convenience init(url: String, symbols: SymbolTable, options: RedisSinkOptions = RedisSinkOptions(),
                            name: String = "redis", log: @escaping @Sendable (String) -> Void) throws {
        try self.init(url: url, symbols: symbols, options: options, name: name,
                      logger: TapeLogging.logger(label: "tape.store.redis", log))
    }

    /// As above; `logger` gets one event per state change of the server (metadata `peer`, `event`, `error`).
    public init(url: String, symbols: SymbolTable, options: RedisSinkOptions = RedisSinkOptions(),
                name: String = "redis", logger: Logger) throws {
        precondition(options.barListLength > 0 && options.anomalyListLength > 0 && options.tradingListLength > 0,
                     "Redis lists keep at least one entry")
        precondition(options.handoverItemsMax > 0 && options.pipelineCommandsMax > 0, "Redis batches are not empty")
        precondition(options.handoverIntervalNanoseconds >= 0 && options.closeWaitNanoseconds >= 0,
                     "Redis sink waits are not negative")
        precondition(options.ttlSeconds.map { $0 > 0 } ?? true, "a Redis TTL is positive (nil: never expire)")
        self.name = name
        self.options = options
        self.layout = options.layout
        self.symbols = symbols
        let connection = RedisConnection(endpoint: try RedisEndpoint(url: url),
                                         connectTimeoutNanoseconds: options.connectTimeoutNanoseconds,
                                         commandTimeoutNanoseconds: options.commandTimeoutNanoseconds,
                                         clientName: "tape-\(name)")
        peer = connection.peer
        dependency = DependencyTracker(name: "redis", status: .up, peer: connection.peer)
        var logger = logger
        logger[metadataKey: "peer"] = .string(connection.peer)
        var startError: RedisError? = nil
        do {
            try connection.reconnect()
        } catch let error as RedisError {
            guard options.startWhenDown else { throw error }
            startError = error
        }
        mailbox = RedisMailbox()
        let writer = RedisWriter(connection: connection, options: options, mailbox: mailbox, logger: logger,
                                 dependency: dependency, startError: startError)
        let thread = Thread { writer.run() }
        thread.name = "tape-sink-\(name)"
        thread.start()
    }

    deinit {
        // Without close() the writer would wait for ever: let it end (what is pending is not written).
        if !closed {
            mailbox.condition.lock()
            mailbox.closeRequested = true
            mailbox.condition.broadcast()
            mailbox.condition.unlock()
        }
    }

    public var counters: RedisSinkCounters {
        mailbox.condition.lock()
        defer { mailbox.condition.unlock() }
        return mailbox.counters
    }

    public var failure: (any Error)? {
        mailbox.condition.lock()
        defer { mailbox.condition.unlock() }
        return mailbox.failure
    }

    // MARK: engine thread

    public func record(_ event: MarketEvent) {
        switch event.kind {
        case .trade: trades.set(event)
        case .quote: quotes.set(event)
        // Input bars reach Redis as the graph's bars; clock ticks are never recorded.
        case .bar, .clockTick: return
        }
        noteWaiting()
        if waitingItems >= options.handoverItemsMax { handOver() }
    }

    public func emit(_ output: GraphOutput) {
        switch output {
        case .bar(let bar):
            bars.append(NamedBar(symbol: symbols.name(bar.symbol), bar: bar, indicators: nil))
            noteWaiting()
            // No handover here: the bar's indicators come next.
            return
        case .indicators(let indicators):
            let last = bars.count - 1
            if last >= 0, bars[last].indicators == nil, bars[last].bar.symbol == indicators.symbol,
               bars[last].bar.timeframe == indicators.timeframe, bars[last].bar.end == indicators.end {
                bars[last].indicators = indicators
            } else {
                mailbox.condition.lock()
                mailbox.counters.indicatorsWithoutBar += 1
                mailbox.condition.unlock()
            }
        case .prediction(let prediction):
            predictions.append(NamedPrediction(symbol: symbols.name(prediction.symbol), prediction: prediction))
        case .anomaly(let anomaly):
            anomalies.append(NamedAnomaly(symbol: symbols.name(anomaly.symbol), anomaly: anomaly))
        case .trading(let row):
            // The account's total equity is not cached: each `tape work` member has an account of its own.
            guard let symbol = row.symbol else { return }
            trading.append(NamedTrading(symbol: symbols.name(symbol), row: row))
        case .lateTick:
            return
        }
        noteWaiting()
        if waitingItems >= options.handoverItemsMax { handOver() }
    }

    /// Hands the waiting items to the writer when the last hand-over is `handoverIntervalNanoseconds` old.
    public func poll() {
        guard waiting else { return }
        if Monotonic.nanoseconds() - lastHandover >= options.handoverIntervalNanoseconds
            || waitingItems >= options.handoverItemsMax {
            handOver()
        }
    }

    /// When the waiting items are due for their hand-over (monotonic ns); nil when nothing waits.
    public var pollDue: Int64? { waiting ? lastHandover + options.handoverIntervalNanoseconds : nil }

    /// Hands over what waits; returns when it is written and acknowledged, or Redis is down (then it is
    /// held in memory and written on reconnect). Throws the failure.
    public func flush() throws {
        precondition(!closed, "RedisSink \(name): flush after close()")
        handOver()
        mailbox.condition.lock()
        let target = mailbox.handedOver
        if target > mailbox.flushWanted { mailbox.flushWanted = target }
        mailbox.condition.broadcast()
        while mailbox.flushedThrough < target && !mailbox.finished { mailbox.condition.wait() }
        let failure = mailbox.failure
        mailbox.condition.unlock()
        if let failure { throw failure }
    }

    /// Hands over what waits, lets the writer write it (waiting at most `closeWaitNanoseconds` for a
    /// server that is down) and waits for the writer to end. Idempotent. Throws the failure.
    public func close() throws {
        if !closed {
            handOver()
            closed = true
        }
        mailbox.condition.lock()
        mailbox.closeRequested = true
        mailbox.condition.broadcast()
        while !mailbox.finished { mailbox.condition.wait() }
        let failure = mailbox.failure
        mailbox.condition.unlock()
        if let failure { throw failure }
    }

    private var waitingItems: Int {
        trades.dirty.count + quotes.dirty.count + bars.count + predictions.count + anomalies.count + trading.count
    }

    @inline(__always)
    private func noteWaiting() { waiting = true }

    private func handOver() {
        guard waiting else { return }
        precondition(!closed, "RedisSink \(name): output after close()")
        let batch = RedisBatch(trades: trades.drain(symbols), quotes: quotes.drain(symbols), bars: bars,
                               predictions: predictions, anomalies: anomalies, trading: trading)
        bars.removeAll(keepingCapacity: true)
        predictions.removeAll(keepingCapacity: true)
        anomalies.removeAll(keepingCapacity: true)
        trading.removeAll(keepingCapacity: true)
        waiting = false
        lastHandover = Monotonic.nanoseconds()
        assert(waitingItems == 0, "a handover takes everything that waits")
        mailbox.condition.lock()
        mailbox.batches.append(batch)
        mailbox.handedOver += 1
        mailbox.counters.handovers += 1
        mailbox.condition.broadcast()
        mailbox.condition.unlock()
    }
}

extension RedisSink: ReportingSink {
    /// summary.json `stores.redis`: the server, the key prefix and the counters (`RedisSinkCounters.json`).
    public var report: JSONValue {
        var members: [(String, JSONValue)] = [("server", .string(peer)), ("key_prefix", .string(layout.prefix))]
        if case .object(let counted) = counters.json { members += counted }
        return .object(members)
    }
}

extension RedisSink {
    /// For `ReplayOptions.sinkFactories` (replay and live): checks the URL now, so that a bad one is a
    /// usage error before anything starts, and builds one sink per run with the run's symbol table and
    /// printer. A server that cannot be reached when the run starts fails the run (exit 5) unless
    /// `options.startWhenDown` (advised for `tape live`, which must not wait on its cache).
    public static func factory(url: String, options: RedisSinkOptions = RedisSinkOptions())
        throws(RedisError) -> (RunContext) throws -> EngineSink {
        _ = try RedisEndpoint(url: url)
        return { context in
            try RedisSink(url: url, symbols: context.symbols, options: options, log: context.printer)
        }
    }
}

/// The newest tick per symbol, indexed by symbol id, and the ids changed since the last drain.
struct LatestTicks {
    private var values: [MarketEvent] = []
    private var isDirty: [Bool] = []
    private(set) var dirty: [SymbolID] = []

    @inline(__always)
    mutating func set(_ event: MarketEvent) {
        let index = Int(event.symbol)
        if index >= values.count {
            let added = max(index + 1, 2 * values.count) - values.count
            values.append(contentsOf: repeatElement(MarketEvent(), count: added))
            isDirty.append(contentsOf: repeatElement(false, count: added))
        }
        values[index] = event
        if !isDirty[index] {
            isDirty[index] = true
            dirty.append(event.symbol)
        }
    }

    /// The changed ticks with their names (in the order they first changed); clears the marks.
    mutating func drain(_ symbols: SymbolTable) -> [NamedTick] {
        let changed = dirty.map { NamedTick(symbol: symbols.name($0), event: values[Int($0)]) }
        for id in dirty { isDirty[Int(id)] = false }
        dirty.removeAll(keepingCapacity: true)
        return changed
    }
}

struct NamedTick: Sendable {
    var symbol: String
    var event: MarketEvent
}

struct NamedBar: Sendable {
    var symbol: String
    var bar: BarOutput
    var indicators: IndicatorOutput?
}

struct NamedPrediction: Sendable {
    var symbol: String
    var prediction: PredictionOutput
}

struct NamedAnomaly: Sendable {
    var symbol: String
    var anomaly: AnomalyOutput
}

/// A paper-trading row of one symbol (an order change, a fill, a position, the symbol's equity).
struct NamedTrading: Sendable {
    var symbol: String
    var row: TradingOutput
}

/// What the engine thread hands to the writer: values copied, names resolved, in emission order.
struct RedisBatch: Sendable {
    var trades: [NamedTick]
    var quotes: [NamedTick]
    var bars: [NamedBar]
    var predictions: [NamedPrediction]
    var anomalies: [NamedAnomaly]
    var trading: [NamedTrading]
}

/// The one place the engine thread and the writer thread meet. Every field is guarded by `condition`.
final class RedisMailbox: @unchecked Sendable {
    let condition = NSCondition()
    var batches: [RedisBatch] = []
    /// Batches handed over so far.
    var handedOver = 0
    /// The engine waits in `flush()` until `flushedThrough` reaches this.
    var flushWanted = 0
    /// Every batch up to this count is written, or held while Redis is down, or dropped after a failure.
    var flushedThrough = 0
    var closeRequested = false
    var finished = false
    var failure: RedisError? = nil
    var counters = RedisSinkCounters()
}

enum Monotonic {
    static func nanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
