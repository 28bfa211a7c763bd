import Foundation
import TapeCore
import TapeIO
import TapeSinks

/// Documented exit codes of `tape replay` and of the commands built on the engine.
public enum TapeExit {
    public static let clean: Int32 = 0
    /// Internal error (a bug): please report.
    public static let internalError: Int32 = 1
    /// Some input records were rejected (counted in summary.json, kept in rejects.csv.gz); the rest was processed.
    public static let inputRejected: Int32 = 3
    /// Input unusable: a file missing or unreadable, its format not detected, a bad config.
    public static let unusableInput: Int32 = 4
    /// An output could not be written (full disk, a sink's server gone): the run stopped; its outputs
    /// are incomplete and summary.json says which sink failed and why.
    public static let outputFailed: Int32 = 5
    /// Nothing was delivered to the graph although the inputs had events: the filters (`--symbols`,
    /// `--from`/`--to`) left nothing. Outputs are empty; a warning on stderr says which filter.
    public static let nothingDelivered: Int32 = 6
    /// Events were delivered but the graph produced nothing but late ticks: every timeframe shorter than
    /// (or not a multiple of) a bar file's bars, `allowed_lateness` too small for bar input. A warning on
    /// stderr says which.
    public static let nothingProduced: Int32 = 8
    /// Interrupted by SIGINT: the shell convention 128 + 2. Outputs hold every complete row up to the stop.
    public static let interruptedBySIGINT: Int32 = 130
    /// Interrupted by SIGTERM: 128 + 15.
    public static let interruptedBySIGTERM: Int32 = 143
    /// The exit code of a run interrupted by `signal`: 128 + signal (130 SIGINT, 143 SIGTERM).
    public static func interrupted(signal: Int32) -> Int32 {
        precondition(signal > 0 && signal < 64, "a signal number")
        return 128 + signal
    }
}

/// One input of a run (a file in replay; a feed or a partition live), as summary.json lists it.
public struct InputSummary: Codable, Equatable, Sendable {
    public var path: String
    public var sha256: String?
    public var format: String
    public var lines: Int
    public var events: Int
    public var rejected: Int
    public var skipped: Int
    public var bytes: Int64
    /// What the reader decided about the input's layout (bar files: columns, separator, time format,
    /// bar time and length); absent for formats that leave nothing to decide.
    public var layout: JSONValue?
    public init(path: String, sha256: String?, format: String, lines: Int, events: Int, rejected: Int,
                skipped: Int, bytes: Int64, layout: JSONValue? = nil) {
        self.path = path; self.sha256 = sha256; self.format = format; self.lines = lines
        self.events = events; self.rejected = rejected; self.skipped = skipped; self.bytes = bytes
        self.layout = layout
    }
}

/// The graph's own counters, as summary.json lists them.
public struct GraphSummary: Codable, Equatable, Sendable {
    public var trades: Int
    public var quotes: Int
    public var barsIn: Int
    public var lateTicks: Int
    public var badTicks: Int
    /// Events a window had already closed for (a repeated input bar): counted, kept out of that bar.
    public var droppedEvents: Int
    public var timeframes: [String]
    /// Bars this run closed per timeframe (every configured one listed, 0 included).
    public var barsByTimeframe: [String: Int]? = nil
    enum CodingKeys: String, CodingKey {
        case trades, quotes, barsIn = "bars_in", lateTicks = "late_ticks", badTicks = "bad_ticks"
        case droppedEvents = "dropped_events", timeframes, barsByTimeframe = "bars_by_timeframe"
    }
}

/// A sink that failed, as summary.json lists it.
public struct SinkFailureSummary: Codable, Equatable, Sendable {
    public var sink: String
    public var error: String
    public init(sink: String, error: String) { self.sink = sink; self.error = error }
}

/// `summary.json`: the one typed model of a run's summary. Written by `write(to:)` (sorted keys, so the
/// text is deterministic apart from wall-time figures), never edited as text; commands that add to it
/// (`tape train`'s `model`) set a field and write it again.
public struct RunSummary: Codable, Sendable {
    public var tapeVersion: String
    /// SHA-256 over every output's canonical line, in emission order (docs/architecture.md).
    public var digest: String
    /// Per symbol: SHA-256 over that symbol's output lines, in order. Equal across 1 or N workers.
    public var digestsBySymbol: [String: String]
    public var ticksIn: Int
    public var ticksRejected: Int
    public var ticksRejectedByReason: [String: Int]
    public var skipped: [String: Int]
    public var ticksFiltered: Int
    public var ticksDelivered: Int
    public var clockTicks: Int
    public var eventsOut: Int
    public var eventsOutByKind: [String: Int]
    public var eventsOutBySymbol: [String: Int]
    public var wallSeconds: Double
    public var ticksPerSecond: Double
    public var inputs: [InputSummary]
    public var configHash: String
    public var graph: GraphSummary
    public var speed: String
    public var fromNs: Int64?
    public var toNs: Int64?
    public var symbols: [String]?
    public var firstEventNs: Int64?
    public var lastEventNs: Int64?
    public var firstReceiveNs: Int64?
    public var lastReceiveNs: Int64?
    /// Why the run stopped: `end_of_stream`, `stopped`, `sink_failed`, `stop_time` (`--stop-at`),
    /// `interrupted` (SIGINT/SIGTERM).
    public var stop: String
    public var sinkFailures: [SinkFailureSummary]
    /// The snapshot the run continued from / ended in, if any.
    public var snapshotIn: String?
    public var snapshotOut: String?
    public var exitCode: Int32
    /// `tape train`: the training summary with the walk-forward metrics.
    public var model: JSONValue?
    /// `tape live`: feeds (counters, connection, latency percentiles, recordings), tick period, warm-up.
    public var live: JSONValue? = nil
    /// `--store`: per store (`postgres`, `redis`, `influx`) what it wrote, spooled and replayed.
    public var stores: JSONValue? = nil
    /// The trading layer's metrics (docs/backtesting.md), when the config has a `trading:` section.
    public var trading: JSONValue? = nil
    /// Stored optional so that a summary.json written before the field existed still reads.
    var interruptedValue: Bool? = nil
    /// True when SIGINT/SIGTERM stopped the run: its outputs hold the complete rows up to the stop.
    public var interrupted: Bool {
        get { interruptedValue ?? false }
        set { interruptedValue = newValue }
    }

    enum CodingKeys: String, CodingKey {
        case tapeVersion = "tape_version", digest, digestsBySymbol = "digests_by_symbol", ticksIn = "ticks_in"
        case ticksRejected = "ticks_rejected", ticksRejectedByReason = "ticks_rejected_by_reason", skipped
        case ticksFiltered = "ticks_filtered", ticksDelivered = "ticks_delivered", clockTicks = "clock_ticks"
        case eventsOut = "events_out", eventsOutByKind = "events_out_by_kind"
        case eventsOutBySymbol = "events_out_by_symbol", wallSeconds = "wall_seconds"
        case ticksPerSecond = "ticks_per_second", inputs, configHash = "config_hash", graph, speed
        case fromNs = "from_ns", toNs = "to_ns", symbols, firstEventNs = "first_event_ns"
        case lastEventNs = "last_event_ns", firstReceiveNs = "first_receive_ns", lastReceiveNs = "last_receive_ns"
        case stop, sinkFailures = "sink_failures", snapshotIn = "snapshot_in", snapshotOut = "snapshot_out"
        case exitCode = "exit_code", model, interruptedValue = "interrupted", live, stores, trading
    }

    /// Encodes every key, nil values as `null` (readers can rely on the keys being there).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tapeVersion, forKey: .tapeVersion)
        try container.encode(digest, forKey: .digest)
        try container.encode(digestsBySymbol, forKey: .digestsBySymbol)
        try container.encode(ticksIn, forKey: .ticksIn)
        try container.encode(ticksRejected, forKey: .ticksRejected)
        try container.encode(ticksRejectedByReason, forKey: .ticksRejectedByReason)
        try container.encode(skipped, forKey: .skipped)
        try container.encode(ticksFiltered, forKey: .ticksFiltered)
        try container.encode(ticksDelivered, forKey: .ticksDelivered)
        try container.encode(clockTicks, forKey: .clockTicks)
        try container.encode(eventsOut, forKey: .eventsOut)
        try container.encode(eventsOutByKind, forKey: .eventsOutByKind)
        try container.encode(eventsOutBySymbol, forKey: .eventsOutBySymbol)
        try container.encode(wallSeconds, forKey: .wallSeconds)
        try container.encode(ticksPerSecond, forKey: .ticksPerSecond)
        try container.encode(inputs, forKey: .inputs)
        try container.encode(configHash, forKey: .configHash)
        try container.encode(graph, forKey: .graph)
        try container.encode(speed, forKey: .speed)
        try container.encode(fromNs, forKey: .fromNs)
        try container.encode(toNs, forKey: .toNs)
        try container.encode(symbols, forKey: .symbols)
        try container.encode(firstEventNs, forKey: .firstEventNs)
        try container.encode(lastEventNs, forKey: .lastEventNs)
        try container.encode(firstReceiveNs, forKey: .firstReceiveNs)
        try container.encode(lastReceiveNs, forKey: .lastReceiveNs)
        try container.encode(stop, forKey: .stop)
        try container.encode(sinkFailures, forKey: .sinkFailures)
        try container.encode(snapshotIn, forKey: .snapshotIn)
        try container.encode(snapshotOut, forKey: .snapshotOut)
        try container.encode(exitCode, forKey: .exitCode)
        try container.encode(interrupted, forKey: .interruptedValue)
        if let model { try container.encode(model, forKey: .model) }
        if let live { try container.encode(live, forKey: .live) }
        if let stores { try container.encode(stores, forKey: .stores) }
        if let trading { try container.encode(trading, forKey: .trading) }
    }

    /// The JSON text: pretty, keys sorted, `/` unescaped, trailing newline.
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Writes `summary.json` (via a temporary file and a rename, so a reader never sees half of it): a
    /// `.tmp` beside it, synced, then renamed over it. A failed write (a full disk) removes the `.tmp`
    /// and throws a `FileWriteError` naming `path`.
    public func write(to path: String) throws {
        let text = try jsonText()
        let temporary = path + ".tmp"
        do {
            let file = try BufferedFile(path: temporary)
            file.write(text)
            try file.close()
        } catch let failure as FileWriteError {
            unlink(temporary)
            throw FileWriteError(path: path, operation: failure.operation, errnoCode: failure.errnoCode)
        }
        guard rename(temporary, path) == 0 else {
            throw SummaryWriteError(path: path, detail: String(cString: strerror(errno)))
        }
    }
}

/// summary.json could not be written.
public struct SummaryWriteError: Error, CustomStringConvertible {
    public let path: String
    public let detail: String
    public var description: String { "\(path): cannot write: \(detail)" }
}

extension Engine {
    /// The engine's half of the summary: digests, counters, graph counters, stop reason, sink failures.
    /// The driver fills in what is its own (inputs, rejects, speed, wall time, snapshot paths).
    public func summary(stop: EngineStop, configHash: String) -> RunSummary {
        let graphCounters = graph.counters
        let stopName: String
        switch stop {
        case .endOfStream: stopName = "end_of_stream"
        case .stoppedByDriver: stopName = "stopped"
        case .sinkFailed: stopName = "sink_failed"
        case .reachedStopTime: stopName = "stop_time"
        }
        return RunSummary(
            tapeVersion: tapeVersion, digest: digest.hexDigest, digestsBySymbol: digest.digestsBySymbol,
            ticksIn: 0, ticksRejected: 0, ticksRejectedByReason: [:], skipped: [:],
            ticksFiltered: counters.filtered, ticksDelivered: counters.delivered, clockTicks: counters.clockTicks,
            eventsOut: digest.count, eventsOutByKind: digest.countByKind, eventsOutBySymbol: digest.countsBySymbol,
            wallSeconds: 0, ticksPerSecond: 0, inputs: [], configHash: configHash,
            graph: GraphSummary(trades: graphCounters.trades, quotes: graphCounters.quotes,
                                barsIn: graphCounters.bars, lateTicks: graphCounters.lateTicks,
                                badTicks: graphCounters.badTicks, droppedEvents: graphCounters.droppedEvents,
                                timeframes: settings.config.timeframes.map(\.description),
                                barsByTimeframe: Dictionary(uniqueKeysWithValues: settings.config.timeframes.enumerated().map {
                                    ($0.element.description,
                                     $0.offset < graph.barsClosedByTimeframe.count ? graph.barsClosedByTimeframe[$0.offset] : 0)
                                })),
            speed: "max", fromNs: settings.from, toNs: settings.to, symbols: settings.symbols,
            firstEventNs: counters.firstEvent, lastEventNs: counters.lastEvent,
            firstReceiveNs: counters.firstReceive, lastReceiveNs: counters.lastReceive,
            stop: stopName,
            sinkFailures: sinkFailures.map { SinkFailureSummary(sink: $0.sink, error: "\($0.error)") },
            snapshotIn: nil, snapshotOut: nil, exitCode: TapeExit.clean, model: nil)
    }
}

/// The version written into every summary and snapshot.
public let tapeVersion = "0.2.0"
