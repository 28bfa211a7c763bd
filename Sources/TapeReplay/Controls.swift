#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TapeClock

/// Pause/resume for a replay: toggled by SIGUSR1 (any time) and, when stdin is a terminal, by the
/// `p` or space key. The driver calls `waitIfPaused()`; time spent paused is returned so pacing can
/// shift its wall-time origin (a paused replay resumes where it was, without a burst).
public final class PauseControl: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var paused = false
    private var savedTermios: termios? = nil
    /// A cheap, racy read for the hot loop; the authoritative state is under the mutex.
    public private(set) var maybePaused = false
    public var onChange: ((Bool) -> Void)?

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

    /// Blocks while paused. Returns the wall nanoseconds spent waiting.
    public func waitIfPaused() -> Int64 {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if !paused { return 0 }
        let start = WallClock.nanos()
        while paused { pthread_cond_wait(&cond, &mutex) }
        return WallClock.nanos() - start
    }

    /// Starts listening for SIGUSR1 (and keys, if stdin is a terminal). Call before other threads start
    /// (the signal is blocked here so that every later thread inherits the mask and only the listener
    /// thread receives it). For the CLI: the listener threads live until the process ends.
    public func install(keys: Bool) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        spawn { me in
            var s = sigset_t(); sigemptyset(&s); sigaddset(&s, SIGUSR1)
            while true {
                var sig: Int32 = 0
                if sigwait(&s, &sig) == 0 && sig == SIGUSR1 { me.toggle() }
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

/// Sleeps until a wall time (ns). Returns immediately if it has passed.
@inline(__always)
func sleepUntil(_ wall: Int64) {
    var now = WallClock.nanos()
    while wall - now > 20_000 {
        let d = wall - now
        var ts = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
        nanosleep(&ts, nil)
        now = WallClock.nanos()
    }
}
