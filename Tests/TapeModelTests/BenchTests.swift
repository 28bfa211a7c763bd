import XCTest
import TapeModel
import Foundation

final class BenchTests: XCTestCase {
    /// Smoke-runs the bench API (`make bench` calls `ModelBench.run()` with the defaults) and prints figures.
    func testBenchRuns() throws {
        // TAPE_MODEL_BENCH_FULL=1: the `make bench` defaults (20k training bars, 200 rounds, 50k bars).
        let full = ProcessInfo.processInfo.environment["TAPE_MODEL_BENCH_FULL"] != nil
        let bars = full ? 50_000 : 20_000
        let r = full ? try ModelBench.run() : try ModelBench.run(trainBars: 5000, rounds: 100, bars: bars)
        XCTAssertEqual(r.count, 3)
        for x in r { print("BENCH " + x.line); XCTAssertGreaterThan(x.count, 0); XCTAssertGreaterThan(x.seconds, 0) }
        XCTAssertEqual(r[1].count, bars)
    }
}
