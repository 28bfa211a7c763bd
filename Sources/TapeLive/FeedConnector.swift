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
