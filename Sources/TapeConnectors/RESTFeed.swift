import Foundation
import TapeCore
import TapeLive
import TapeREST

/// A REST poller (Alpha Vantage, FMP) as a `FeedConnector`: every response body the poller delivers
/// goes into the inbox as one wire message. The poller owns the rate limits, the backoff and the
/// retries (TapeREST); bad credentials end it with `authenticationFailed`, which stops the session.
/// Each failing spell of the poller (`RESTCounters.failingSpells`: attempts in a row without data) is
/// reported as `ConnectorReport.failing` (a `feed_failing` fault for the alerts; the feed counts as down),
/// and the next data after it as `recovered`; polling goes on.
public struct RESTFeed: FeedConnector {
    public let spec: FeedSpec
    public let peer: String
    /// Builds the poller around the delivery closure (the poller is made on the connector's task).
    private let makePoller: @Sendable (_ deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws
        -> RESTPoller

    public init(spec: FeedSpec, peer: String,
                makePoller: @escaping @Sendable (_ deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws
                    -> RESTPoller) {
        self.spec = spec
        self.peer = peer
        self.makePoller = makePoller
    }

    public func run(feedIndex: Int, inbox: Inbox, report: ConnectorReport) async {
        let poller: RESTPoller
        do {
            poller = try makePoller { body in inbox.push(feed: feedIndex, message: body) }
        } catch {
            report.fail(ConnectorReport.Fatal(feed: spec.name, peer: peer, detail: "\(error)"))
            return
        }
        report.connected(feedIndex)
        report.state(feedIndex, spec.name, peer: poller.peer, "polling")
        poller.start()
        var spellsReported = 0
        var bodiesAtFailing: Int? = nil
        while !Task.isCancelled {
            do { try await Task.sleep(nanoseconds: 50_000_000) } catch { break }
            let counters = poller.counters
            let spells = counters.failingSpells
            if let before = bodiesAtFailing, counters.bodiesDelivered > before {
                bodiesAtFailing = nil
                report.recovered(feedIndex, spec.name, peer: poller.peer)
            }
            if spells > spellsReported {
                spellsReported = spells
                bodiesAtFailing = counters.bodiesDelivered
                let last = poller.lastFailure ?? "an error"
                let text = "\(RESTPoller.failuresBeforeFailing) attempts in a row without data, the last \(last); "
                    + "backing off, polling goes on"
                report.failing(feedIndex, spec.name, peer: poller.peer, text)
            }
            if poller.state == .stopped || poller.state == .failed { break }
        }
        poller.stop()
        if let failure = poller.join() {
            report.fail(ConnectorReport.Fatal(feed: spec.name, peer: poller.peer, detail: "\(failure)"))
        }
        report.state(feedIndex, spec.name, peer: poller.peer, "stopped")
    }
}
