import TapeCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Something that wants to be called back at a time. The graph's nodes implement this; the token
/// says which of the node's timers fired (e.g. which symbol/window).
public protocol TimerTarget: AnyObject {
    func onTimer(token: UInt64, now: Nanos)
}

/// The only source of time for the graph.
///
/// **Time model.** Receive time is stamped once, when a message enters Tape (`ReceiveStamper`, live) or
/// as recorded (replay). The graph's clock (`SimulatedClock`, in replay *and* live) advances only from
/// the stream: to each event's receive time before the event is delivered, and to each clock tick's
/// time (`EventKind.clockTick`, stamped by the live driver and recorded with the data). It never reads
/// wall time, so a consumer that lags behind wall time computes exactly what a prompt one would, and
/// the replay of a recording (ticks included) fires every timer at the same stream position as live.
public protocol Clock: AnyObject {
    /// Current time, ns UTC.
    var now: Nanos { get }
    /// Calls `target.onTimer(token:now:)` once the clock reaches `due`. Timers due at the same time
    /// fire in registration order. A timer scheduled in the past fires at the next advance.
    func schedule(at due: Nanos, target: TimerTarget, token: UInt64)
}

/// A min-heap of timers ordered by (due time, registration order): the documented tie-break.
public struct TimerQueue {
    @usableFromInline struct Entry {
        var due: Nanos
        var seq: UInt64
        var token: UInt64
        var target: TimerTarget
    }
    @usableFromInline var heap: [Entry] = []
    @usableFromInline var nextSeq: UInt64 = 0

    public init() { heap.reserveCapacity(256) }

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    /// Due time of the earliest timer, if any.
    public var nextDue: Nanos? { heap.first?.due }

    @inline(__always) @usableFromInline
    static func less(_ a: Entry, _ b: Entry) -> Bool { a.due < b.due || (a.due == b.due && a.seq < b.seq) }

    public mutating func push(due: Nanos, target: TimerTarget, token: UInt64) {
        heap.append(Entry(due: due, seq: nextSeq, token: token, target: target))
        nextSeq &+= 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !TimerQueue.less(heap[i], heap[parent]) { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest timer if it is due at or before `t`.
    public mutating func popDue(atOrBefore t: Nanos) -> (due: Nanos, token: UInt64, target: TimerTarget)? {
        guard let first = heap.first, first.due <= t else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            let n = heap.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && TimerQueue.less(heap[l], heap[m]) { m = l }
                if r < n && TimerQueue.less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return (first.due, first.token, first.target)
    }

    /// Pending timers of `target` in firing order (due time, then registration order).
    public func pending(for target: TimerTarget) -> [(due: Nanos, token: UInt64)] {
        heap.filter { $0.target === target }.sorted(by: TimerQueue.less).map { ($0.due, $0.token) }
    }
}

/// The graph's clock, in replay and live alike: deterministic, driven by the stream. The engine
/// advances it to each event's (and clock tick's) receive time;
/// before the event is delivered every timer due at or before that time fires, in (due time,
/// registration order), with `now` set to the timer's due time while it runs. Time never goes back.
public final class SimulatedClock: Clock {
    public private(set) var now: Nanos
    private var timers = TimerQueue()

    public init(start: Nanos = 0) { now = start }

    public func schedule(at due: Nanos, target: TimerTarget, token: UInt64) {
        timers.push(due: due, target: target, token: token)
    }

    public var pendingTimers: Int { timers.count }
    public var nextDue: Nanos? { timers.nextDue }

    /// Fires every timer due at or before `t`, then sets `now = max(now, t)`.
    @inline(__always)
    public func advance(to t: Nanos) {
        if let d = timers.nextDue, d <= t { fire(upTo: t) }
        if t > now { now = t }
    }

    private func fire(upTo t: Nanos) {
        while let (due, token, target) = timers.popDue(atOrBefore: t) {
            if due > now { now = due }
            target.onTimer(token: token, now: now)
        }
    }

    /// Fires all remaining timers up to `t` (end of input: lets the last windows close).
    public func drain(until t: Nanos) { advance(to: t) }

    // MARK: snapshot support

    /// Pending timers of `target`, in the order they would fire: (due time, registration order).
    /// With `importTimers` this carries a target's timers to another clock (graph snapshots).
    public func exportTimers(for target: TimerTarget) -> [(due: Nanos, token: UInt64)] {
        timers.pending(for: target)
    }

    /// Schedules `timers` for `target` in the given order, so that their relative firing order (due
    /// time, registration order) is the one they had on the clock they were exported from. Timers
    /// registered here later fire after them at equal due times.
    public func importTimers(_ timers: [(due: Nanos, token: UInt64)], target: TimerTarget) {
        for index in timers.indices.dropFirst() {
            precondition(timers[index - 1].due <= timers[index].due, "timers are imported in firing order")
        }
        for timer in timers { schedule(at: timer.due, target: target, token: timer.token) }
    }

    /// Moves `now` forward to `t` without firing anything (restoring a snapshot into a fresh clock).
    /// Precondition: no timer is pending and `t >= now`.
    public func resume(at t: Nanos) {
        precondition(timers.isEmpty, "resume(at:) is for a fresh clock, before timers are imported")
        precondition(t >= now, "time never goes back")
        now = t
    }
}

/// Wall time, for drivers only: pacing at N×, progress, wall-time figures, and stamping receive
/// times at the entry of live input (`ReceiveStamper`). Never read by the graph or the engine.
public enum WallClock {
    /// CLOCK_REALTIME, ns since the Unix epoch.
    @inline(__always)
    public static func nanos() -> Nanos {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Nanos(spec.tv_sec) * 1_000_000_000 + Nanos(spec.tv_nsec)
    }
}

/// Stamps receive times where a message enters Tape (a live connector's read loop, the live driver's
/// clock ticks). The only place where wall time becomes stream time: after the stamp, every component
/// reads time from the stream. Stamps are strictly increasing across all threads that share one
/// stamper (one lock), even if the system clock steps back, so the stamped stream has a total order.
public final class ReceiveStamper: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var last: Nanos = .min
    private let wallTime: @Sendable () -> Nanos

    /// `wallTime` is the wall clock (tests may pass a scripted one).
    public init(wallTime: @escaping @Sendable () -> Nanos = { WallClock.nanos() }) {
        self.wallTime = wallTime
        pthread_mutex_init(&lock, nil)
    }

    deinit { pthread_mutex_destroy(&lock) }

    /// The next receive time: wall time, or one ns after the previous stamp if wall time has not moved on.
    public func stamp() -> Nanos {
        let wall = wallTime()
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        let stamped = wall > last ? wall : last &+ 1
        last = stamped
        return stamped
    }
}
