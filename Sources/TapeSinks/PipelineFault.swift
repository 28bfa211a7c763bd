import TapeCore
import TapeGraph

/// Something wrong with the pipeline itself rather than the market: a feed that dropped, refused its
/// credentials or keeps failing, a store or the bus that went away, a poison record on the bus.
/// Reported by the part that sees it (connectors, stores, the Kafka producer, workers) to the
/// `FaultListener`s of the run (the alerts), never to the graph: faults are operational and change no
/// output.
///
/// ```swift
/// listener.fault(PipelineFault(rule: PipelineFault.feedDisconnected, subject: "binance-usdm",
///                              severity: .warning, detail: "closed by peer (1006)"))
/// ```
public struct PipelineFault: Sendable, Equatable {
    /// A feed's connection ended (closed, error, read timeout); the connector reconnects.
    public static let feedDisconnected = "feed_disconnected"
    /// A feed refused the credentials or the subscription: the session stops.
    public static let feedRefused = "feed_refused"
    /// A feed that keeps failing while connected (a REST poller: attempts in a row without data); it
    /// backs off and goes on.
    public static let feedFailing = "feed_failing"
    /// The bus (Kafka) is away from `tape ingest`'s producer: records wait in its bounded queue and are
    /// resent; the workers get nothing meanwhile.
    public static let busOutage = "bus_outage"
    /// A store's server went away (PostgreSQL spooling, Redis holding state in memory).
    public static let storeOutage = "store_outage"
    /// A record on the bus that no decoder accepts: counted, skipped.
    public static let poisonRecord = "poison_record"

    /// The rule name alerts are configured by (`feed_disconnected`, …).
    public var rule: String
    /// What it is about: a feed name, a store, `topic[partition]`.
    public var subject: String
    public var severity: Severity
    /// One line for people (no secrets: the reporting part names hosts, never keys or passwords).
    public var detail: String

    public init(rule: String, subject: String, severity: Severity, detail: String) {
        precondition(!rule.isEmpty && !subject.isEmpty, "a fault names its rule and its subject")
        self.rule = rule
        self.subject = subject
        self.severity = severity
        self.detail = detail
    }
}

/// Receives pipeline faults from any thread; must return at once (no I/O, no waiting).
public protocol FaultListener: AnyObject, Sendable {
    func fault(_ fault: PipelineFault)
}
