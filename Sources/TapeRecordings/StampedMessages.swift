import TapeCore
import TapeSources
import TapeFeeds

/// Turns stamped wire messages — `(receive time, the exact bytes received)` — into validated events:
/// the part of reading a raw capture that the live source shares, so a live session and the replay of
/// its recording decode, validate, reject and skip every message the same way.
///
///     let messages = StampedMessages(name: "binance-usdm", decoder: decoder, options: options)
///     messages.submit(message, receiveTime: stamp, line: 42)
///     while messages.nextEvent(&event) { engine.process(event) }
///
/// Per message: a clock tick message (`RawCapture.clockTickMessage`) becomes one `.clockTick`; anything
/// else goes through the decoder, then every event through `EventValidator` (first failure wins,
/// reported naming `name` and `line`). Skips are counted per kind and reported once per kind by
/// `flushSkips()` (end of file, end of session, or when the object goes away).
public final class StampedMessages<Decoder: WireDecoder> {
    /// The file (replay) or the feed (live) the messages come from, as named in rejects.
    public let name: String
    public let validator: EventValidator
    /// Rejected by the decoder or by the message layout (not the validator).
    public private(set) var ownRejects = 0
    /// Events handed out (validated), skipped messages, messages submitted.
    public private(set) var events = 0
    public private(set) var skipped = 0

    private var decoder: Decoder
    private let rejects: RejectHandler
    private let sourceIndex: UInt32
    private var pending: [MarketEvent] = []
    private var pendingPosition = 0
    private var pendingLine = 0
    private var skipCounts = [Int](repeating: 0, count: SkipKind.allCases.count)

    /// `checkDuplicates`: the protocol carries ids that repeat only when a message does (`WireProtocol.hasIds`).
    public init(name: String, decoder: Decoder, options: ReaderOptions, checkDuplicates: Bool = true) {
        self.name = name
        self.decoder = decoder
        rejects = options.rejects
        sourceIndex = options.sourceIndex
        validator = EventValidator(file: name, options: options, checkDuplicates: checkDuplicates)
        pending.reserveCapacity(64)
    }

    deinit { flushSkips() }

    /// Reports the skips counted so far (one `RejectHandler.skipped` call per kind) and resets them.
    public func flushSkips() {
        for kind in SkipKind.allCases where skipCounts[kind.rawValue] > 0 {
            rejects.skipped(kind.name, count: skipCounts[kind.rawValue])
            skipCounts[kind.rawValue] = 0
        }
    }

    /// Rejects a message before it reaches the decoder (bad line layout, too long...).
    @inline(never)
    public func reject(_ reason: RejectReason, line: Int, _ detail: String) {
        ownRejects += 1
        rejects.reject(Reject(file: name, line: line, reason: reason, detail: detail))
    }

    /// Decodes one message; its events (if any) come out of `nextEvent`. Call only when `nextEvent`
    /// has returned false (every event of the previous message handed out or rejected).
    @inline(__always)
    public func submit(_ message: UnsafeRawBufferPointer, receiveTime: Nanos, line: Int) {
        assert(pendingPosition >= pending.count, "submit before the previous message's events were taken")
        pending.removeAll(keepingCapacity: true)
        pendingPosition = 0
        pendingLine = line
        if message.elementsEqual(RawCapture.clockTickMessage.utf8) {
            pending.append(.clockTick(at: receiveTime, sequence: Int64(line), source: sourceIndex))
            return
        }
        switch decoder.decode(message, receiveTime: receiveTime, into: &pending) {
        case .decoded:
            for index in pending.indices { pending[index].source = sourceIndex }
        case .skipped(let kind):
            skipCounts[kind.rawValue] += 1
            skipped += 1
        case .malformed(let reason, let detail):
            reject(reason, line: line, detail + " in \(Self.excerpt(message))")
        case .unknown(let detail):
            reject(.unknownMessage, line: line, detail)
        }
    }

    /// The next valid event of the last message submitted; false when there is none left.
    @inline(__always)
    public func nextEvent(_ event: inout MarketEvent) -> Bool {
        while pendingPosition < pending.count {
            var candidate = pending[pendingPosition]
            pendingPosition += 1
            if validator.check(&candidate, line: pendingLine) {
                events += 1
                event = candidate
                return true
            }
        }
        return false
    }

    /// Starts over as a new file would (a rotated recording): decoder and validator state restart, so a
    /// live session that rotates its recording keeps deciding exactly as the replay of the new file.
    public func restart(decoder fresh: Decoder) {
        decoder = fresh
        validator.reset()
    }

    /// The start of a message for error texts, quoted (60 bytes at most).
    public static func excerpt(_ bytes: UnsafeRawBufferPointer) -> String {
        let count = min(bytes.count, 60)
        var text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<count]), as: UTF8.self)
        if bytes.count > count { text += "…" }
        return "\"\(MessageText.escaped(text))\""
    }
}
