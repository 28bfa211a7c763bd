import TapeCore
import TapeClock
import TapeSources
import TapeFeeds
import TapeRecordings
import Histogram

/// One feed of a live session as the engine's side sees it.
public struct FeedSpec: Sendable, Equatable {
    /// The connector's name: recordings are `<name>-….gz`, rejects name it (`binance-usdm`, `polygon`).
    public var name: String
    public var wireProtocol: WireProtocol
    /// Symbol prefix (`usdm` gives `usdm:BTCUSDT`); nil: bare symbols.
    public var venue: String?

    public init(name: String, wireProtocol: WireProtocol, venue: String?) {
        self.name = name
        self.wireProtocol = wireProtocol
        self.venue = venue
    }
}

/// Per-feed counters of a live session (the summary's `live.feeds`).
public struct FeedCounters: Sendable, Codable, Equatable {
    public var messages = 0
    public var bytes = 0
    public var events = 0
    public var rejected = 0
    public var skipped = 0
    /// Trade ids missing between consecutive trades of a symbol (Binance trade ids are contiguous).
    public var gaps = 0
    /// Messages the inbox refused (engine behind, message too long).
    public var dropped = 0
    /// Live events dropped because the warm-up already covered them (`--warmup`).
    public var warmupOverlap = 0
    public init() {}

    enum CodingKeys: String, CodingKey {
        case messages, bytes, events, rejected, skipped, gaps, dropped, warmupOverlap = "warmup_overlap"
    }
}

/// The live stream as an `EventSource`: stamped items from the `Inbox`, in stamp order. Each wire
/// message is first written to its feed's recording (`CaptureRecorder`), then decoded and validated by
/// the feed's `StampedMessages` — the same code the replay of that recording runs, with the same line
/// numbers in rejects — and clock ticks go out as `.clockTick` items (recorded in the `clock` file).
///
/// `.idle` when the inbox has nothing; `.end` once the inbox is closed and drained.
public final class LiveSource: EventSource {
    public let name = "live"
    public var formatName: String { "live" }
    public var stats: SourceStats {
        var total = SourceStats()
        for counter in counters {
            total.lines += counter.messages
            total.events += counter.events
            total.rejected += counter.rejected
            total.skipped += counter.skipped
        }
        total.events += clockCounters.events
        return total
    }
    public let feeds: [FeedSpec]
    public private(set) var counters: [FeedCounters]
    public private(set) var clockCounters = FeedCounters()
    /// Wall time from receive stamp to hand-over to the engine, ns, per feed.
    public private(set) var latency: [Histogram<UInt64>]
    /// The first recording failure (disk full...): the session stops with exit 5.
    public private(set) var recordingFailure: (any Error)? = nil

    private let inbox: Inbox
    private let options: ReaderOptions
    private var streams: [any StampedMessageStream]
    private var clockStream: any StampedMessageStream
    private var recorders: [CaptureRecorder?]
    private var clockRecorder: CaptureRecorder?
    private var batch = Inbox.Batch()
    private var position = 0
    private var current: (any StampedMessageStream)? = nil
    private var currentFeed = -1
    private var currentReceive: Nanos = 0
    private var lastTradeSequence: [[Int64]]
    private var ended = false
    private let countsGaps: [Bool]
    /// Drops live events the warm-up already delivered (nil: no warm-up).
    private var overlap: WarmupOverlap?

    /// `recordDirectory` nil: nothing is recorded (line numbers then count messages per feed from 2,
    /// as if a header were there, so rejects still match what a recording would say).
    public init(inbox: Inbox, feeds: [FeedSpec], options: ReaderOptions, recordDirectory: String?,
                recordMaxBytes: Int64 = 256 << 20, overlap: WarmupOverlap? = nil) throws {
        precondition(!feeds.isEmpty, "a live source needs a feed")
        self.inbox = inbox
        self.feeds = feeds
        self.options = options
        self.overlap = overlap
        counters = Array(repeating: FeedCounters(), count: feeds.count)
        latency = feeds.map { _ in Histogram<UInt64>(highestTrackableValue: 60_000_000_000,
                                                       numberOfSignificantValueDigits: .three) }
        lastTradeSequence = Array(repeating: [], count: feeds.count)
        countsGaps = feeds.map { $0.wireProtocol == .binance }
        var made: [any StampedMessageStream] = []
        var recorders: [CaptureRecorder?] = []
        for (index, feed) in feeds.enumerated() {
            var feedOptions = options
            feedOptions.sourceIndex = UInt32(index)
            let recorder = try recordDirectory.map {
                try CaptureRecorder(directory: $0, header: RawCapture.Header(feed: feed.name,
                                                                               wireProtocol: feed.wireProtocol,
                                                                               venue: feed.venue),
                                    maxBytes: recordMaxBytes)
            }
            recorders.append(recorder)
            made.append(Self.makeStream(feed, name: feed.name, options: feedOptions))
        }
        streams = made
        self.recorders = recorders
        var clockOptions = options
        clockOptions.sourceIndex = UInt32(feeds.count)
        let clockFeed = FeedSpec(name: "clock", wireProtocol: .clock, venue: nil)
        clockStream = Self.makeStream(clockFeed, name: "clock", options: clockOptions)
        clockRecorder = try recordDirectory.map {
            try CaptureRecorder(directory: $0, header: RawCapture.Header(feed: "clock", wireProtocol: .clock,
                                                                           venue: nil),
                                maxBytes: recordMaxBytes)
        }
    }

    /// The decoder of each protocol behind the one seam.
    static func makeStream(_ feed: FeedSpec, name: String, options: ReaderOptions) -> any StampedMessageStream {
        let symbols = options.symbols
        let ids = feed.wireProtocol.hasIds
        switch feed.wireProtocol {
        case .binance:
            return StampedMessages(name: name, decoder: BinanceDecoder(symbols: symbols, venue: feed.venue),
                                   options: options, checkDuplicates: ids)
        case .polygon:
            return StampedMessages(name: name, decoder: PolygonDecoder(symbols: symbols, venue: feed.venue),
                                   options: options, checkDuplicates: ids)
        case .finage:
            return StampedMessages(name: name, decoder: FinageDecoder(symbols: symbols, venue: feed.venue),
                                   options: options, checkDuplicates: ids)
        case .alphavantage:
            return StampedMessages(name: name, decoder: AlphaVantageDecoder(symbols: symbols, venue: feed.venue),
                                   options: options, checkDuplicates: ids)
        case .fmp:
            return StampedMessages(name: name, decoder: FMPDecoder(symbols: symbols, venue: feed.venue),
                                   options: options, checkDuplicates: ids)
        case .clock:
            return StampedMessages(name: name, decoder: ClockOnlyDecoder(), options: options, checkDuplicates: false)
        }
    }

    public func next(_ event: inout MarketEvent) -> SourceStep {
        while true {
            if let stream = current, stream.nextEvent(&event) {
                if currentFeed >= 0 {
                    if countsGaps[currentFeed] && event.kind == .trade { countGap(event) }
                    if let overlap, overlap.covers(event) {
                        counters[currentFeed].warmupOverlap += 1
                        continue
                    }
                    counters[currentFeed].events += 1
                    let lag = WallClock.nanos() &- currentReceive
                    latency[currentFeed].record(UInt64(max(0, lag)))
                } else {
                    clockCounters.events += 1
                }
                return .event
            }
            if position < batch.entries.count {
                let entry = batch.entries[position]
                position += 1
                submit(entry)
                continue
            }
            if ended { return .end }
            position = 0
            if !inbox.take(into: &batch, waitNanos: 0) {
                finishStreams()
                return .end
            }
            if batch.entries.isEmpty { return .idle }
        }
    }

    /// Records one stamped item and hands it to its feed's decoder.
    private func submit(_ entry: Inbox.Entry) {
        currentReceive = entry.receiveTime
        if entry.feed == Inbox.tickFeed {
            currentFeed = -1
            clockCounters.messages += 1
            let line = RawCapture.clockTickBytes.withUnsafeBytes { tick in
                record(clockRecorder, entry.receiveTime, tick, count: clockCounters.messages, feed: -1)
            }
            clockStream.submitTick(receiveTime: entry.receiveTime, line: line)
            current = clockStream
            // Every tick ends the gzip members: a crash loses at most one tick interval.
            flushRecorders()
            return
        }
        let feed = Int(entry.feed)
        currentFeed = feed
        counters[feed].messages += 1
        counters[feed].bytes += entry.count
        batch.bytes.withUnsafeBytes { all in
            let message = UnsafeRawBufferPointer(rebasing: all[entry.start..<(entry.start + entry.count)])
            let line = record(recorders[feed], entry.receiveTime, message, count: counters[feed].messages, feed: feed)
            streams[feed].submit(message, receiveTime: entry.receiveTime, line: line)
        }
        current = streams[feed]
    }

    /// Writes the item to its recording; returns its line number there (as the replay will number it).
    private func record(_ recorder: CaptureRecorder?, _ receiveTime: Nanos, _ message: UnsafeRawBufferPointer,
                        count: Int, feed: Int) -> Int {
        // Not recorded: number as if it were (header = line 1).
        guard let recorder, recordingFailure == nil else { return count + 1 }
        do {
            let (line, rotated) = try recorder.append(receiveTime: receiveTime, message: message)
            if rotated {
                // The replay reads the new file with a fresh decoder and validator: so does live.
                if feed >= 0 {
                    var feedOptions = options
                    feedOptions.sourceIndex = UInt32(feed)
                    streams[feed] = Self.makeStream(feeds[feed], name: feeds[feed].name, options: feedOptions)
                }
            }
            return line
        } catch {
            recordingFailure = error
            return 0
        }
    }

    private func flushRecorders() {
        guard recordingFailure == nil else { return }
        do {
            for recorder in recorders { try recorder?.flush() }
            try clockRecorder?.flush()
        } catch { recordingFailure = error }
    }

    private func countGap(_ event: MarketEvent) {
        let feed = currentFeed
        let index = Int(event.symbol)
        if index >= lastTradeSequence[feed].count {
            lastTradeSequence[feed].append(contentsOf: repeatElement(-1, count: index + 1 - lastTradeSequence[feed].count))
        }
        let last = lastTradeSequence[feed][index]
        if last >= 0 && event.sequence > last + 1 { counters[feed].gaps += Int(event.sequence - last - 1) }
        if event.sequence > last { lastTradeSequence[feed][index] = event.sequence }
    }

    private func finishStreams() {
        ended = true
        for (index, stream) in streams.enumerated() {
            stream.flushSkips()
            counters[index].rejected = stream.rejectedCount
            counters[index].skipped = stream.skippedCount
        }
        clockStream.flushSkips()
        for (index, dropped) in inbox.dropped where index >= 0 { counters[Int(index)].dropped = dropped }
    }

    /// Waits until the inbox has something (or `nanos` passed): the driver's idle wait.
    public func waitForInput(nanos: Int64) { inbox.wait(nanos: nanos) }

    /// Closes every recording (fsync). Throws the first failure (also a failure met while recording).
    public func closeRecordings() throws {
        var first = recordingFailure
        for recorder in recorders + [clockRecorder] {
            do { try recorder?.close() } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }

    /// Every recording file written, feeds first, then the clock.
    public var recordingPaths: [String] {
        recorders.flatMap { $0?.paths ?? [] } + (clockRecorder?.paths ?? [])
    }
}

/// `StampedMessages` of any decoder, as the live source holds them (one per feed).
public protocol StampedMessageStream: AnyObject {
    func submit(_ message: UnsafeRawBufferPointer, receiveTime: Nanos, line: Int)
    func nextEvent(_ event: inout MarketEvent) -> Bool
    func flushSkips()
    var rejectedCount: Int { get }
    var skippedCount: Int { get }
}

extension StampedMessageStream {
    func submitTick(receiveTime: Nanos, line: Int) {
        RawCapture.clockTickBytes.withUnsafeBytes { submit($0, receiveTime: receiveTime, line: line) }
    }
}

extension StampedMessages: StampedMessageStream {
    public var rejectedCount: Int { ownRejects + validator.rejected }
    public var skippedCount: Int { skipped }
}

extension RawCapture {
    /// `#tick` as bytes.
    static let clockTickBytes: [UInt8] = Array(RawCapture.clockTickMessage.utf8)
}
