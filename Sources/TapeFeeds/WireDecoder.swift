import TapeCore

/// Records a decoder deliberately does not turn into events. Counted (`RejectHandler.skipped`), not rejects.
public enum SkipKind: Int, Sendable, CaseIterable {
    /// Order-book diffs (`<sym>@depth…`): Tape's graph works on trades and top of book.
    case depth = 0
    /// A line that is not a stream message (e.g. a REST depth snapshot `{"lastUpdateId":…}`).
    case nonStream = 1
    /// Venue status / subscription acknowledgements (Polygon `{"ev":"status"}`, Finage heartbeats…).
    case status = 2
    /// Message kinds a venue sends that Tape does not use (aggregates, …).
    case other = 3
    /// A polled REST body whose records were all delivered by an earlier poll (polls overlap), or whose
    /// only new bar is still forming: nothing new.
    case repeated = 4

    /// The name used in `RejectHandler.skipped` and the summary.
    public var name: String {
        switch self {
        case .depth: return "depth"
        case .nonStream: return "non_stream"
        case .status: return "status"
        case .other: return "other"
        case .repeated: return "repeated"
        }
    }
}

/// What became of one wire message.
public enum DecodeOutcome: Sendable, Equatable {
    /// `count` events (≥ 1) were appended to the output buffer.
    case decoded(count: Int)
    /// Deliberately not used (counted, not a reject).
    case skipped(SkipKind)
    /// Broken message: bad JSON, a missing or unparsable field. `reason` is `malformed_line`,
    /// `bad_number` or `bad_timestamp`; `detail` names the field/value (built only on this path).
    case malformed(reason: RejectReason, detail: String)
    /// Well-formed message of a kind the decoder does not know (`unknown_message`).
    case unknown(detail: String)
}

/// The decoder seam: turns ONE wire message (the exact bytes received) plus its receive time into zero
/// or more `MarketEvent`s. The live connector and the replay of a raw capture call the same decoder,
/// so a capture replays exactly what the live pipeline saw.
///
/// Rules for implementations (hot path): no allocation per message on the success path (append to
/// `out`, whose capacity the caller keeps), no Foundation, symbols interned with
/// `SymbolTable.intern(bytes:)`. Decoders do not validate values (negative, crossed…): the caller runs
/// `EventValidator` on every event. `source` is left 0; the reader sets it.
///
/// Implemented: `BinanceDecoder` (combined streams, spot and futures), `PolygonDecoder` (stocks WS
/// `T`/`Q`), `FinageDecoder` (stocks, ETF, crypto and forex WS). Another vendor plugs in the same way:
/// one struct, one `decode`.
public protocol WireDecoder {
    mutating func decode(_ message: UnsafeRawBufferPointer, receiveTime: Nanos,
                         into out: inout [MarketEvent]) -> DecodeOutcome
}

extension WireDecoder {
    /// Convenience for tests and tools.
    public mutating func decode(_ message: String, receiveTime: Nanos, into out: inout [MarketEvent]) -> DecodeOutcome {
        var m = message
        return m.withUTF8 { decode(UnsafeRawBufferPointer($0), receiveTime: receiveTime, into: &out) }
    }
}

