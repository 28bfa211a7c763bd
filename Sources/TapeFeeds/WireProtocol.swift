import TapeCore

/// The wire protocols Tape decodes: one `WireDecoder` each. A live connector speaks one, its recording
/// names it in its header (`RawCapture.Header`), and the replay picks the same decoder from it.
public enum WireProtocol: String, Sendable, CaseIterable, Codable {
    /// Binance combined streams (spot, USDⓈ-M, COIN-M): `BinanceDecoder`.
    case binance
    /// Polygon/Massive stocks WebSocket: `PolygonDecoder`.
    case polygon
    /// Finage WebSocket (stocks, crypto, forex): `FinageDecoder`.
    case finage
    /// Alpha Vantage REST (one response body per message): `AlphaVantageDecoder`.
    case alphavantage
    /// Financial Modeling Prep REST: `FMPDecoder`.
    case fmp
    /// The live driver's clock ticks only (`<ns> #tick` lines); no wire message is expected.
    case clock
}

extension WireProtocol {
    /// True if the protocol's events carry ids (trade ids, update ids, sequence numbers) that repeat only
    /// when a message is delivered twice: the validator then rejects repeats as `duplicate`.
    public var hasIds: Bool {
        switch self {
        case .binance, .polygon: return true
        // Finage messages carry no ids; polled bars are deduplicated by the decoders (by bar time).
        case .finage, .alphavantage, .fmp, .clock: return false
        }
    }
}

/// The decoder of the `clock` recording: it holds clock ticks only, which never reach a decoder; any
/// other message in it is `unknown_message`.
public struct ClockOnlyDecoder: WireDecoder {
    public init() {}

    public mutating func decode(_ message: UnsafeRawBufferPointer, receiveTime: Nanos,
                                into out: inout [MarketEvent]) -> DecodeOutcome {
        .unknown(detail: "a message in a clock recording (only `#tick` lines belong there)")
    }
}
