import XCTest
import TapeModel

final class BenchTests: XCTestCase {
    /// Smoke-runs the bench API (`make bench` calls `ModelBench.run()` with the defaults) and prints figures.
    func testBenchRuns() throws {
        let r = try ModelBench.run(trainBars: 5000, rounds: 100, bars: 20_000)
        XCTAssertEqual(r.count, 3)
        for x in r { print("BENCH " + x.line); XCTAssertGreaterThan(x.count, 0); XCTAssertGreaterThan(x.seconds, 0) }
        XCTAssertEqual(r[1].count, 20_000)
    }
}
