import Foundation
import TapeLogging
import TapeCore
import TapeIO
import TapeSources
import TapeRecordings

/// One market event as the simulator serves it: Tape's `MarketEvent` with its names resolved (symbol
/// without the venue prefix, exchange and conditions as text), so that encoders need no symbol table.
public struct SimEvent: Sendable, Equatable {
    public var kind: EventKind
    /// Instrument name as a vendor spells it: `BTCUSDT`, `AAPL` (Tape's `venue:` prefix dropped).
    public var symbol: String
    /// Exchange time, ns UTC (bar *end* for bars), shifted with the session.
    public var eventTime: Nanos
    public var sequence: Int64
    public var side: UInt8
    /// Exchange and conditions as the recording spelled them ("" = none).
    public var exchange: String
    public var conditions: String
    public var price: Double
    public var size: Double
    public var bid: Double
    public var bidSize: Double
    public var ask: Double
    public var askSize: Double
    public var open: Double
    public var high: Double
    public var low: Double
}

/// One message of the simulated feed: what arrived at one receive time.
///
/// A raw Binance capture keeps each recorded wire message (`raw`, with its `stream` name), so the Binance
/// protocol serves it byte for byte; every other input is decoded by Tape's readers into `events`, and
/// the events of one receive time of one input form one message (the encoders split or group them as
/// their vendor does).
public struct SimMessage: Sendable {
    /// Receive time of the recording, ns UTC, shifted with the session: the instant the feed sends it.
    public var receiveTime: Nanos
    /// The recorded wire message (raw Binance captures only; `E`/`T` times rewritten by the shift).
    public var raw: [UInt8]?
    /// The raw message's stream name, lower-cased (`btcusdt@trade`); nil when not raw.
    public var stream: String?
    /// Decoded events (empty for raw messages: the raw bytes are what is served).
    public var events: [SimEvent]
    /// Market events in this message: `events.count`, or for a raw message 1 for a trade, aggTrade or
    /// bookTicker stream and 0 for depth.
    public var eventCount: Int
}

/// Counts what loading refused, and shows the first few refusals on standard error.
final class LoadRejects: RejectHandler {
    private(set) var rejected = 0
    private(set) var skipped = 0
    private let shownMaximum = 10

    func reject(_ reject: Reject) {
        rejected += 1
        if rejected <= shownMaximum { SimStats.logger.warning("feed-sim: \(reject.message)", metadata: ["event": "reject"]) }
    }

    func skipped(_ what: String, count: Int) { skipped += count }
}

/// A recording held in memory, in receive-time order, ready to be served.
///
/// Loading reads every input with Tape's own readers (`openSource`: format detected from content,
/// every record validated), or, for the Binance protocol, a raw Binance capture line by line (the
/// wire message is what is served). Several inputs are merged by (receive time, input order, line
/// order), Tape's merge order. The whole recording is kept in memory (`messagesMaximum` bounds it).
public final class SimRecording: Sendable {
    /// The most messages a simulator holds (a limit, so a wrong input fails clearly instead of swapping).
    public static let messagesMaximum = 20_000_000

    public let messages: [SimMessage]
    /// Records refused by the readers' validation, and lines deliberately not used (depth skipped by
    /// the decoder, non-stream lines, clock ticks).
    public let rejected: Int
    public let skipped: Int
    /// How far every time was moved (`--shift`), ns.
    public let shiftNanos: Nanos

    init(messages: [SimMessage], rejected: Int, skipped: Int, shiftNanos: Nanos) {
        self.messages = messages
        self.rejected = rejected
        self.skipped = skipped
        self.shiftNanos = shiftNanos
    }

    public var firstReceiveTime: Nanos? { messages.first?.receiveTime }
    public var lastReceiveTime: Nanos? { messages.last?.receiveTime }
    public var eventCount: Int { messages.reduce(0) { $0 + $1.eventCount } }

    /// Reads `paths` for `feedProtocol`. `symbol` names the instrument of inputs that carry none (bars).
    public static func load(paths: [String], feedProtocol: FeedProtocol, symbol: String?) throws -> SimRecording {
        let rejects = LoadRejects()
        let symbols = SymbolTable()
        var all: [SimMessage] = []
        for (index, path) in paths.enumerated() {
            let format = try FormatDetector.detect(path: path)
            if format == .rawCapture && feedProtocol == .binance {
                try loadRawCapture(path: path, rejects: rejects, into: &all)
            } else {
                let options = ReaderOptions(symbols: symbols, rejects: rejects, sourceIndex: UInt32(index),
                                            symbol: symbol)
                let source = try openSource(path: path, format: format, options: options)
                loadEvents(source: source, symbols: symbols, into: &all)
                if let unusable = source.stats.unusable { throw UnusableInputError(unusable) }
            }
            guard all.count <= messagesMaximum else {
                throw UnusableInputError("\(path): more than \(messagesMaximum) messages; serve a shorter recording")
            }
        }
        // Stable: equal receive times keep input order, then line order (Tape's merge order).
        let ordered = all.enumerated().sorted {
            ($0.element.receiveTime, $0.offset) < ($1.element.receiveTime, $1.offset)
        }.map(\.element)
        return SimRecording(messages: ordered, rejected: rejects.rejected, skipped: rejects.skipped, shiftNanos: 0)
    }

    /// This recording with every time moved by `nanos` (receive times, event times, and the `E`/`T`
    /// millisecond times inside raw Binance messages). `nanos` must be whole milliseconds.
    public func shifted(by nanos: Nanos) -> SimRecording {
        precondition(nanos % 1_000_000 == 0, "the shift is whole milliseconds (vendors' times are ms)")
        if nanos == 0 { return self }
        let shiftedMessages = messages.map { message -> SimMessage in
            var moved = message
            moved.receiveTime += nanos
            for index in moved.events.indices { moved.events[index].eventTime += nanos }
            if let raw = message.raw {
                moved.raw = BinanceWire.shiftTimes(raw, byMilliseconds: nanos / 1_000_000)
            }
            return moved
        }
        return SimRecording(messages: shiftedMessages, rejected: rejected, skipped: skipped,
                            shiftNanos: shiftNanos + nanos)
    }

    /// Raw capture lines `<receive ns> <message>`: stream messages kept verbatim; clock ticks and lines
    /// that are not stream messages (REST snapshots) skipped; broken lines rejected.
    private static func loadRawCapture(path: String, rejects: LoadRejects, into all: inout [SimMessage]) throws {
        let lines: LineReader
        do { lines = try LineReader(path: path, rejects: rejects, threaded: true) } catch {
            throw UnusableInputError("\(path): \(error)")
        }
        while let line = lines.next() {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")), space > 0,
                  let receiveTime = Numbers.parseInt(String(decoding: line[..<space], as: UTF8.self)),
                  TimeUtil.isAccepted(receiveTime) else {
                rejects.reject(Reject(file: path, line: lines.lineNumber, reason: .malformedLine,
                                      detail: "not `<receive ns> <message>`"))
                continue
            }
            let message = Array(line[(space + 1)...])
            guard let stream = BinanceWire.streamName(message) else {
                rejects.skipped("non_stream", count: 1)
                continue
            }
            all.append(SimMessage(receiveTime: receiveTime, raw: message, stream: stream, events: [],
                                  eventCount: BinanceWire.eventCount(stream: stream)))
        }
    }

    /// The most events grouped into one message (a vendor's array message stays a sane size).
    static let eventsPerMessageMaximum = 1_000

    /// Events from a reader; the events of one receive time in a row form one message.
    private static func loadEvents(source: EventSource, symbols: SymbolTable, into all: inout [SimMessage]) {
        var event = MarketEvent()
        let firstOfThisInput = all.count
        var names: [SymbolID: String] = [:]
        func name(_ id: SymbolID, dropVenue: Bool) -> String {
            if id == 0 { return "" }
            if let known = names[id] { return known }
            var text = symbols.name(id)
            if dropVenue, let colon = text.firstIndex(of: ":") { text = String(text[text.index(after: colon)...]) }
            names[id] = text
            return text
        }
        while source.next(&event) == .event {
            if event.kind == .clockTick { continue }
            let simEvent = SimEvent(kind: event.kind, symbol: name(event.symbol, dropVenue: true),
                                    eventTime: event.eventTime, sequence: event.sequence, side: event.side,
                                    exchange: name(event.exchange, dropVenue: false),
                                    conditions: name(event.conditions, dropVenue: false),
                                    price: event.price, size: event.size, bid: event.bid, bidSize: event.bidSize,
                                    ask: event.ask, askSize: event.askSize, open: event.open, high: event.high,
                                    low: event.low)
            if all.count > firstOfThisInput, let last = all.last, last.receiveTime == event.receiveTime,
               last.events.count < eventsPerMessageMaximum {
                all[all.count - 1].events.append(simEvent)
                all[all.count - 1].eventCount += 1
            } else {
                all.append(SimMessage(receiveTime: event.receiveTime, raw: nil, stream: nil, events: [simEvent],
                                      eventCount: 1))
            }
        }
    }
}
