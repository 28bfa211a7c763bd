import XCTest
import TapeCore
import TapeGraph

/// The one way to add a timeframe to a config (used by `tape train` and by scenarios).
final class AddTimeframeTests: XCTestCase {
    func testAddedTimeframeGoesInItsSortedPlaceOnce() {
        var config = PipelineConfig()   // 1m, 5m, 15m (config/pipeline.yaml)
        let before = config.canonicalText
        config.addTimeframe(Timeframe("2m")!)
        XCTAssertEqual(config.timeframes.map(\.description), ["1m", "2m", "5m", "15m"])
        XCTAssertTrue(config.canonicalText.hasPrefix("timeframes=1m,2m,5m,15m\n"), config.canonicalText)
        XCTAssertNotEqual(config.canonicalText, before)
        let withTwoMinutes = config
        config.addTimeframe(Timeframe("5m")!)
        config.addTimeframe(Timeframe("120s")!)   // 2m again, spelled in seconds
        XCTAssertEqual(config, withTwoMinutes)
    }

    func testAddingToAConfigBuiltInCodeSortsIt() {
        var config = PipelineConfig()
        config.timeframes = [Timeframe("15m")!, Timeframe("30s")!]
        config.addTimeframe(Timeframe("1h")!)
        XCTAssertEqual(config.timeframes.map(\.description), ["30s", "15m", "1h"])
    }
}
