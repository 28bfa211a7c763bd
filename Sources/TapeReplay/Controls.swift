#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import TapeClock

/// Pause/resume and interrupt for a replay or a recording: pause is toggled by SIGUSR1 (any time) and,
/// when stdin is a terminal, by the `p` or space key. The driver calls `waitIfPaused()`; time spent
/// paused is returned so pacing can shift its wall-time origin (a paused replay resumes where it was,
/// without a burst).
///
/// SIGINT and SIGTERM interrupt: the first sets `interruptSignal` (the driver stops reading at its
/// next check, flushes and closes every output and writes summary.json with `interrupted: true`, and
/// the process exits 128 + the signal: 130 for SIGINT, 143 for SIGTERM); a paused or sleeping run
/// wakes up for it. A second one exits at once with the same code (outputs then as a kill leaves them).
public final class PauseControl: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var paused = false
    private var savedTermios: termios? = nil
    /// A cheap, racy read for the hot loop; the authoritative state is under the mutex.
    public private(set) var maybePaused = false
    public var onChange: ((Bool) -> Void)?
    /// The signal that interrupted the run (SIGINT, SIGTERM); 0 = none.
    private let interruptSignalStorage = Atomic<Int32>(0)
    /// The signal that interrupted the run; 0 while not interrupted. A relaxed load: cheap per event.
    public var interruptSignal: Int32 { interruptSignalStorage.load(ordering: .relaxed) }
    public var isInterrupted: Bool { interruptSignal != 0 }

    public init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    public func toggle() {
        pthread_mutex_lock(&mutex)
        paused.toggle()
        maybePaused = paused
        let p = paused
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        onChange?(p)
    }

    /// Records an interrupt and wakes a paused run. A second interrupt ends the process at once.
    public func interrupt(signal: Int32) {
        precondition(signal > 0, "an interrupt names its signal")
        if !interruptSignalStorage.compareExchange(expected: 0, desired: signal, ordering: .relaxed).exchanged {
            _exit(128 + signal)
        }
        pthread_mutex_lock(&mutex)
        maybePaused = true   // sends the hot loop to waitIfPaused, which returns at once
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
    }

    /// Blocks while paused (and not interrupted). Returns the wall nanoseconds spent waiting.
    public func waitIfPaused() -> Int64 {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if !paused || isInterrupted { return 0 }
        let start = WallClock.nanos()
        while paused && !isInterrupted { pthread_cond_wait(&cond, &mutex) }
        return WallClock.nanos() - start
    }

    /// The signals the listener thread takes: pause (SIGUSR1) and interrupt (SIGINT, SIGTERM).
    private static func listenedSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }

    /// Starts listening for SIGUSR1, SIGINT, SIGTERM (and keys, if stdin is a terminal). Call before other
    /// threads start (the signals are blocked here so that every later thread inherits the mask and only
    /// the listener thread receives them). For the CLI: the listener threads live until the process ends.
    /// Blocks SIGUSR1, SIGINT and SIGTERM on the calling thread, as `install` does: threads started from it
    /// afterwards inherit the mask, so the signals reach `install`'s `sigwait` thread and never a thread that
    /// would take the default action (end the process). Call it before starting threads of your own (a
    /// server's event loops) ahead of `install`.
    public static func blockSignals() {
        var set = PauseControl.listenedSignals()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    public func install(keys: Bool) {
        PauseControl.blockSignals()
        spawn { me in
            var signals = PauseControl.listenedSignals()
            while true {
                var received: Int32 = 0
                guard sigwait(&signals, &received) == 0 else { continue }
                if received == SIGUSR1 { me.toggle() } else { me.interrupt(signal: received) }
            }
        }
        if keys && isatty(0) == 1 {
            var t = termios()
            if tcgetattr(0, &t) == 0 {
                savedTermios = t
                var raw = t
                raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
                tcsetattr(0, TCSANOW, &raw)
                spawn { me in
                    var c: UInt8 = 0
                    while read(0, &c, 1) == 1 {
                        if c == UInt8(ascii: "p") || c == UInt8(ascii: " ") { me.toggle() }
                    }
                }
            }
        }
    }

    /// Restores the terminal if `install(keys:)` changed it.
    public func restoreTerminal() {
        if var t = savedTermios { tcsetattr(0, TCSANOW, &t); savedTermios = nil }
    }

    private final class Box { let f: (PauseControl) -> Void; let me: PauseControl
        init(_ f: @escaping (PauseControl) -> Void, _ me: PauseControl) { self.f = f; self.me = me } }

    private func spawn(_ f: @escaping (PauseControl) -> Void) {
        let box = Unmanaged.passRetained(Box(f, self)).toOpaque()
        var t = pthread_t()
        if pthread_create(&t, nil, { arg in
            let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            b.f(b.me)
            return nil
        }, box) == 0 { pthread_detach(t) } else { Unmanaged<Box>.fromOpaque(box).release() }
    }
}

/// Longest single sleep of a paced run: an interrupt is seen within this (ns).
let sleepSliceNs: Int64 = 50_000_000

/// Sleeps until a wall time (ns), in slices of at most `sleepSliceNs`, returning early once `pause`
/// is interrupted. Returns immediately if the time has passed.
@inline(__always)
func sleepUntil(_ wall: Int64, pause: PauseControl, every slice: (() -> Void)? = nil) {
    var now = WallClock.nanos()
    while wall - now > 20_000 && !pause.isInterrupted {
        let d = min(wall - now, sleepSliceNs)
        var ts = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
        nanosleep(&ts, nil)
        now = WallClock.nanos()
        slice?()
    }
}
