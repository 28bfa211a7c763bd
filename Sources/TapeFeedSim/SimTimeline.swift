import Synchronization
import TapeCore

/// The simulated feed's one timeline, shared by every connection: when each message is due, and which
/// messages went by while no client was there.
///
/// Paced (`--speed N`): message i is due at `start + (receiveTime(i) − first) / N` of wall time, for
/// every connection alike, as a real feed sends regardless of who listens. A connection that opens
/// starts with the first message not yet due; messages that fell due while no connection was open are
/// never sent and are counted (`skippedWhileDisconnected`), as a real feed's gap.
///
/// As fast as possible (`--speed max`): time is the client's reading. A connection starts where the
/// last one stopped (the frontier), so nothing is skipped across reconnects; with no client connected
/// the timeline stands still.
public final class SimTimeline: Sendable {
    public let receiveTimes: [Nanos]
    /// nil = `max`.
    public let speed: Double?
    public let startInstant: ContinuousClock.Instant

    private struct State {
        /// Index of the first message no connection has passed yet.
        var frontier = 0
        var skippedWhileDisconnected = 0
        var openConnections = 0
        var finished = false
    }
    private let state = Mutex(State())

    public init(receiveTimes: [Nanos], speed: Double?, startInstant: ContinuousClock.Instant = .now) {
        precondition(speed.map { $0 > 0 && $0.isFinite } ?? true, "speed is positive and finite")
        self.receiveTimes = receiveTimes
        self.speed = speed
        self.startInstant = startInstant
    }

    public var firstTime: Nanos { receiveTimes.first ?? 0 }

    /// Simulated now: paced, the recording time that wall time has reached; `max`, the receive time of
    /// the frontier (the end of the recording once it was all served).
    public func simulatedNow(at instant: ContinuousClock.Instant = .now) -> Nanos {
        guard let speed else {
            let frontier = state.withLock { $0.frontier }
            if receiveTimes.isEmpty { return 0 }
            return receiveTimes[min(frontier, receiveTimes.count - 1)]
        }
        let elapsed = instant - startInstant
        let elapsedNanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        return firstTime + Nanos(elapsedNanos * speed)
    }

    /// The wall instant at which the message with this receive time is due (paced only).
    public func dueInstant(for receiveTime: Nanos) -> ContinuousClock.Instant {
        guard let speed else { return startInstant }
        let nanos = Double(receiveTime - firstTime) / speed
        return startInstant + .nanoseconds(Int64(nanos))
    }

    /// Index of the first message whose receive time is after `time`.
    public func firstIndex(after time: Nanos) -> Int {
        var low = 0, high = receiveTimes.count
        while low < high {
            let middle = (low + high) / 2
            if receiveTimes[middle] <= time { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// A connection opens: the index it starts from, and the messages that went by unseen are counted.
    public func connectionOpened(at instant: ContinuousClock.Instant = .now) -> Int {
        let dueIndex = speed == nil ? nil : firstIndex(after: simulatedNow(at: instant) - 1)
        return state.withLock { state in
            state.openConnections += 1
            guard let dueIndex else { return state.frontier }
            if dueIndex > state.frontier {
                state.skippedWhileDisconnected += dueIndex - state.frontier
                state.frontier = dueIndex
            }
            return dueIndex
        }
    }

    /// A connection has passed every message before `index` (sent or not subscribed).
    public func passed(upTo index: Int) {
        state.withLock { state in
            state.frontier = max(state.frontier, index)
            if index >= receiveTimes.count { state.finished = true }
        }
    }

    public func connectionClosed() {
        state.withLock { $0.openConnections -= 1 }
    }

    /// At exit: paced messages that fell due while no connection was open are counted too.
    public func finishAccounting(at instant: ContinuousClock.Instant = .now) {
        guard speed != nil else { return }
        let dueIndex = firstIndex(after: simulatedNow(at: instant) - 1)
        state.withLock { state in
            if state.openConnections == 0 && dueIndex > state.frontier {
                state.skippedWhileDisconnected += dueIndex - state.frontier
                state.frontier = dueIndex
            }
        }
    }

    public var skippedWhileDisconnected: Int { state.withLock { $0.skippedWhileDisconnected } }
    /// Every message has been passed by a connected client.
    public var finished: Bool { state.withLock { $0.finished } }
}
