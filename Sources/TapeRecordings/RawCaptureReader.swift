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
    public var stats: SourceStats { lines.progress(of: counters) }
    private var counters = SourceStats()
    public let validator: EventValidator

    private let lines: LineReader
    private var decoder: Decoder
    private let rejects: RejectHandler
    private let sourceIndex: UInt32
    private var pending: [MarketEvent] = []
    private var pendingPos = 0
    private var pendingLine = 0
    private var skipCounts = [Int](repeating: 0, count: SkipKind.allCases.count)
    private var ownRejects = 0
    private var finished = false

    /// Reads `path` with an explicit decoder (any venue).
    public convenience init(path: String, options: ReaderOptions, decoder: Decoder, threaded: Bool = true) throws {
        self.init(lines: try LineReader(path: path, rejects: options.rejects, threaded: threaded,
                                        maxLineBytes: options.maxLineBytes),
                  options: options, decoder: decoder)
    }

    /// Reads from `lines` (possibly peeked by `FormatDetector`: the first line is still to come).
    public init(lines: LineReader, options: ReaderOptions, decoder: Decoder) {
        name = lines.fileName
        self.decoder = decoder
        rejects = options.rejects
        sourceIndex = options.sourceIndex
        self.lines = lines
        validator = EventValidator(file: lines.fileName, options: options, checkDuplicates: true)
        pending.reserveCapacity(64)
    }

    deinit { flushSkips() }

    private func flushSkips() {
        for k in SkipKind.allCases where skipCounts[k.rawValue] > 0 {
            rejects.skipped(k.name, count: skipCounts[k.rawValue])
            skipCounts[k.rawValue] = 0
        }
    }

    @inline(never)
    private func reject(_ r: RejectReason, _ line: Int, _ detail: String) {
        ownRejects += 1
        rejects.reject(Reject(file: name, line: line, reason: r, detail: detail))
    }

    private static func excerpt(_ b: UnsafeRawBufferPointer) -> String {
        let n = min(b.count, 60)
        var s = String(decoding: UnsafeRawBufferPointer(rebasing: b[0..<n]), as: UTF8.self)
        if b.count > n { s += "…" }
        return "\"\(s)\""
    }

    @_specialize(where Decoder == BinanceDecoder)
    public func next(_ event: inout MarketEvent) -> SourceStep {
        while true {
            while pendingPos < pending.count {
                var e = pending[pendingPos]
                pendingPos += 1
                if validator.check(&e, line: pendingLine) {
                    counters.events += 1
                    event = e
                    return .event
                }
            }
            if finished { return .end }
            guard let line = lines.next() else { finish(); return .end }
            counters.lines += 1
            let ln = lines.lineNumber
            let n = line.count
            guard n > 0, let base = line.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                reject(.malformedLine, ln, "empty line"); continue
            }
            guard let sp = memchrSpace(base, n) else {
                reject(.malformedLine, ln, "no space between receive time and message: \(Self.excerpt(line))"); continue
            }
            guard let ts = Numbers.parseInt(base, sp), ts > 0, TimeUtil.isAccepted(ts) else {
                reject(.badTimestamp, ln, "receive time \(Self.excerpt(UnsafeRawBufferPointer(rebasing: line[0..<sp]))) is not a positive integer ns"); continue
            }
            var ms = sp + 1
            while ms < n && base[ms] == 0x20 { ms += 1 }
            if ms >= n { reject(.malformedLine, ln, "empty message"); continue }
            pending.removeAll(keepingCapacity: true)
            pendingPos = 0
            pendingLine = ln
            let msg = UnsafeRawBufferPointer(start: base + ms, count: n - ms)
            if msg.elementsEqual(RawCapture.clockTickMessage.utf8) {
                pending.append(.clockTick(at: ts, sequence: Int64(ln), source: sourceIndex))
                continue
            }
            switch decoder.decode(msg, receiveTime: ts, into: &pending) {
            case .decoded:
                for k in pending.indices { pending[k].source = sourceIndex }
            case .skipped(let kind):
                skipCounts[kind.rawValue] += 1
                counters.skipped += 1
            case .malformed(let reason, let detail):
                reject(reason, ln, detail + " in \(Self.excerpt(msg))")
            case .unknown(let detail):
                reject(.unknownMessage, ln, detail)
            }
        }
    }

    private func finish() {
        finished = true
        flushSkips()
        counters.rejected = ownRejects + validator.rejected + lines.stream.issues.count
        // Every line refused by the reader itself: the content is not a raw capture (e.g. `--format raw`
        // forced on a CSV file).
        if counters.events == 0 && counters.skipped == 0 && ownRejects > 0 && ownRejects == counters.lines {
            counters.unusable = "\(name): no event read: the content is not a raw capture "
                + "(all \(ownRejects) lines refused)"
        }
    }

    /// Rejects so far (own + validator; container damage is added at the end).
    public var rejectedSoFar: Int { ownRejects + validator.rejected }
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
}

/// A Binance raw capture reader (the common case).
public typealias BinanceCaptureReader = RawCaptureReader<BinanceDecoder>

@inline(__always)
private func memchrSpace(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? {
    var i = 0
    while i < n { if p[i] == 0x20 { return i }; i += 1 }
    return nil
}
