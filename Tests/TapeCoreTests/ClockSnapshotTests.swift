import XCTest
import TapeCore
import TapeClock

/// SimulatedClock's timer export/import keeps the firing order, ties at one due time included.
final class ClockSnapshotTests: XCTestCase {
    final class Recorder: TimerTarget {
        var fired: [UInt64] = []
        func onTimer(token: UInt64, now: Nanos) { fired.append(token) }
    }

    func testExportedTimersFireInTheSameOrderOnAnotherClock() {
        let first = SimulatedClock(start: 100), other = Recorder(), recorder = Recorder()
        // Registration order differs from due order; 4 and 5 tie at 300 (4 registered first).
        first.schedule(at: 500, target: recorder, token: 1)
        first.schedule(at: 300, target: recorder, token: 4)
        first.schedule(at: 200, target: other, token: 99)
        first.schedule(at: 300, target: recorder, token: 5)
        first.schedule(at: 250, target: recorder, token: 3)
        let exported = first.exportTimers(for: recorder)
        XCTAssertEqual(exported.map(\.token), [3, 4, 5, 1])
        XCTAssertEqual(exported.map(\.due), [250, 300, 300, 500])

        let second = SimulatedClock()
        second.resume(at: first.now)
        XCTAssertEqual(second.now, 100)
        second.importTimers(exported, target: recorder)
        second.schedule(at: 300, target: recorder, token: 6)   // registered after the imported ones
        second.advance(to: 1_000)
        XCTAssertEqual(recorder.fired, [3, 4, 5, 6, 1])
        XCTAssertTrue(other.fired.isEmpty)
    }
}
