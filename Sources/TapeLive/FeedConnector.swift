import TapeCore

/// A market-data connection of a live session: connects, subscribes, and hands every wire message —
/// the exact bytes received — to the session's `Inbox`, which stamps it. It never decodes (the engine's
/// thread does, with the replay's decoders) and never reads time for the stream.
///
///     let connector = BinanceConnector(spec: spec, streams: ["btcusdt@trade"], baseURL: url)
///     Task { await connector.run(feedIndex: 0, inbox: inbox, report: report) }
///
/// Contract: `run` returns only when the task is cancelled or on a fatal error (bad credentials), which
/// it reports with `report.fail`; it reconnects on every other failure with jittered exponential backoff
/// (`Backoff`), resubscribes, notices a silent connection (no message within the read timeout), and
/// logs one line per state change naming the peer (never a credential).
public protocol FeedConnector: Sendable {
    var spec: FeedSpec { get }
    /// The peer as named in messages (`wss://fstream.binance.com`), without credentials.
    var peer: String { get }
    func run(feedIndex: Int, inbox: Inbox, report: ConnectorReport) async
}

/// Jittered exponential backoff: attempt n waits a uniform random time in [0, min(cap, base·2ⁿ)]
/// ("full jitter"), from a seeded generator so tests are repeatable.
public struct Backoff: Sendable {
    public var baseNanos: Int64
    public var capNanos: Int64
    private var state: UInt64

    public init(baseNanos: Int64 = 250_000_000, capNanos: Int64 = 30_000_000_000, seed: UInt64 = 0x9E37_79B9) {
        precondition(baseNanos > 0 && capNanos >= baseNanos, "backoff bounds")
        self.baseNanos = baseNanos
        self.capNanos = capNanos
        state = seed | 1
    }

    /// The wait before reconnect attempt `attempt` (0 = first retry).
    public mutating func delay(attempt: Int) -> Int64 {
        let ceiling = attempt >= 40 ? capNanos : min(capNanos, baseNanos << Int64(min(attempt, 40)))
        // xorshift64*
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        let random = state &* 2_685_821_657_736_338_717
        return Int64(random % UInt64(ceiling + 1))
    }
}
