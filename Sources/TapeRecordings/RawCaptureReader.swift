import TapeCore
import TapeIO
import TapeSources
import TapeFeeds

/// Reads a raw live-feed capture (`.rawCapture`): one line per wire message,
/// `<receive time, integer ns UTC> <space> <raw message as received>`, gzipped (or plain).
/// Each message goes through the same `WireDecoder` the live connector uses, then `EventValidator`.
///
/// Bad lines are rejected naming file and line: no space / empty message → `malformed_line`,
/// non-numeric or non-positive time → `bad_timestamp`; decoder results map to `malformed_line`,
/// `bad_number`, `bad_timestamp`, `unknown_message`; skips (depth, non-stream lines) are counted per
/// kind and reported to `RejectHandler.skipped` in one call per kind when the file ends (or the reader
/// is dropped). Container damage (truncated/corrupt gzip) is reported by `LineReader`.
public final class RawCaptureReader<Decoder: WireDecoder>: EventSource {
    public let name: String
    public var format: RecordingFormat { .rawCapture }
    public var formatName: String { RecordingFormat.rawCapture.rawValue }
    /// Counters so far; the byte counts come from the line reader as it goes (progress while reading).
    public var stats: SourceStats {
        var current = counters
        current.events = messages.events
        current.skipped = messages.skipped
        return lines.progress(of: current)
    }
    private var counters = SourceStats()
    public var validator: EventValidator { messages.validator }

    private let lines: LineReader
    /// Decoding and validation, shared with the live source.
    private let messages: StampedMessages<Decoder>
    private var finished = false
    private var headerLines = 0
    private var sawContent = false

    /// Reads `path` with an explicit decoder (any venue).
    public convenience init(path: String, options: ReaderOptions, decoder: Decoder, threaded: Bool = true) throws {
        self.init(lines: try LineReader(path: path, rejects: options.rejects, threaded: threaded,
                                        maxLineBytes: options.maxLineBytes),
                  options: options, decoder: decoder)
    }

    /// Reads from `lines` (possibly peeked by `FormatDetector`: the first line is still to come).
    public init(lines: LineReader, options: ReaderOptions, decoder: Decoder, checkDuplicates: Bool = true) {
        name = lines.fileName
        self.lines = lines
        messages = StampedMessages(name: lines.fileName, decoder: decoder, options: options,
                                   checkDuplicates: checkDuplicates)
    }

    @_specialize(where Decoder == BinanceDecoder)
    public func next(_ event: inout MarketEvent) -> SourceStep {
        while true {
            if messages.nextEvent(&event) { return .event }
            if finished { return .end }
            guard let line = lines.next() else { finish(); return .end }
            counters.lines += 1
            let lineNumber = lines.lineNumber
            let count = line.count
            guard count > 0, let base = line.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                messages.reject(.malformedLine, line: lineNumber, "empty line"); continue
            }
            // The first line may be the capture header a live recording starts with (`RawCapture.Header`).
            if !sawContent {
                sawContent = true
                if RawCapture.Header.matches(line) { headerLines = 1; continue }
            }
            guard let space = memchrSpace(base, count) else {
                messages.reject(.malformedLine, line: lineNumber, "no space between receive time and message: "
                                + StampedMessages<Decoder>.excerpt(line))
                continue
            }
            guard let receiveTime = Numbers.parseInt(base, space), receiveTime > 0,
                  TimeUtil.isAccepted(receiveTime) else {
                let timeText = StampedMessages<Decoder>.excerpt(UnsafeRawBufferPointer(rebasing: line[0..<space]))
                messages.reject(.badTimestamp, line: lineNumber, "receive time \(timeText) is not a positive integer ns")
                continue
            }
            var messageStart = space + 1
            while messageStart < count && base[messageStart] == 0x20 { messageStart += 1 }
            if messageStart >= count { messages.reject(.malformedLine, line: lineNumber, "empty message"); continue }
            let message = UnsafeRawBufferPointer(start: base + messageStart, count: count - messageStart)
            messages.submit(message, receiveTime: receiveTime, line: lineNumber)
        }
    }

    private func finish() {
        finished = true
        messages.flushSkips()
        counters.rejected = messages.ownRejects + messages.validator.rejected + lines.stream.issues.count
        // Every line refused by the reader itself: the content is not a raw capture (e.g. `--format raw`
        // forced on a CSV file).
        let refused = messages.ownRejects
        if messages.events == 0 && messages.skipped == 0 && refused > 0 && refused == counters.lines - headerLines {
            counters.unusable = "\(name): no event read: the content is not a raw capture "
                + "(all \(refused) lines refused)"
        }
    }

    /// Rejects so far (own + validator; container damage is added at the end).
    public var rejectedSoFar: Int { messages.ownRejects + messages.validator.rejected }
}

extension RawCaptureReader where Decoder == BinanceDecoder {
    /// A Binance capture. Venue: `options.venue`, else inferred from the file name (`spot-`, `usdm-`,
    /// `cm-`), else none; symbols are then `venue:SYMBOL` (e.g. `usdm:BTCUSDT`).
    public convenience init(path: String, options: ReaderOptions, threaded: Bool = true) throws {
        let venue = options.venue ?? BinanceDecoder.venue(fromFileName: path)
        try self.init(path: path, options: options,
                      decoder: BinanceDecoder(symbols: options.symbols, venue: venue), threaded: threaded)
    }

    /// A Binance capture read from `lines` (venue as above, from the name the lines carry).
    public convenience init(lines: LineReader, options: ReaderOptions) {
        let venue = options.venue ?? BinanceDecoder.venue(fromFileName: lines.fileName)
        self.init(lines: lines, options: options, decoder: BinanceDecoder(symbols: options.symbols, venue: venue))
    }
}

/// The raw-capture line layout shared by the reader and (later) the live recorder.
public enum RawCapture {
    /// The message of a recorded clock tick: `<receive ns> #tick`. Not a wire message (no decoder sees
    /// it): the stamped instant at which the live driver ticked, so a replay fires timers where live did.
    public static let clockTickMessage = "#tick"

    /// The first line of a capture written by `tape live`:
    /// `# tape capture feed=binance-usdm protocol=binance venue=usdm` (space-separated `key=value`;
    /// `venue` may be absent). It tells the replay which decoder reads the messages (the wire protocol)
    /// and the venue prefix of the symbols, so a recording does not depend on its file name. Captures
    /// without it (`../shared/data/binance-feed`) are Binance, venue from the file name.
    public struct Header: Equatable, Sendable {
        public static let prefix = "# tape capture"
        /// The connector's name in the session (`binance-usdm`, `polygon`, `clock`...).
        public var feed: String
        public var wireProtocol: WireProtocol
        public var venue: String?

        public init(feed: String, wireProtocol: WireProtocol, venue: String?) {
            precondition(!feed.contains(" ") && !(venue ?? "").contains(" "), "names without spaces")
            self.feed = feed
            self.wireProtocol = wireProtocol
            self.venue = venue
        }

        /// The header line, without the newline.
        public var line: String {
            var text = "\(Header.prefix) feed=\(feed) protocol=\(wireProtocol.rawValue)"
            if let venue { text += " venue=\(venue)" }
            return text
        }

        public static func matches(_ line: UnsafeRawBufferPointer) -> Bool {
            line.count >= prefix.utf8.count && line.prefix(prefix.utf8.count).elementsEqual(prefix.utf8)
        }

        /// Parses a header line; nil if it is not one. An unknown protocol is an error naming it.
        public static func parse(_ text: String) throws -> Header? {
            guard text.hasPrefix(prefix) else { return nil }
            var fields: [String: String] = [:]
            for token in text.dropFirst(prefix.count).split(separator: " ") {
                let parts = token.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            let protocolName = fields["protocol"] ?? ""
            guard let wireProtocol = WireProtocol(rawValue: protocolName) else {
                let known = WireProtocol.allCases.map(\.rawValue).joined(separator: ", ")
                throw UnusableInputError("capture header names protocol '\(protocolName)' (known: \(known))")
            }
            return Header(feed: fields["feed"] ?? wireProtocol.rawValue, wireProtocol: wireProtocol,
                          venue: fields["venue"])
        }
    }
}

/// A Binance raw capture reader (the common case).
public typealias BinanceCaptureReader = RawCaptureReader<BinanceDecoder>

@inline(__always)
private func memchrSpace(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? {
    var i = 0
    while i < n { if p[i] == 0x20 { return i }; i += 1 }
    return nil
}
