import Foundation
import XCTest
import TapeCore
import TapeReplay
import TapeEngine
import TapeIO

/// Clock ticks recorded in a capture (`<ns> #tick`, as the live recorder writes them) replay as stream
/// time: they fire timers at their stream position and are never delivered as events.
final class ClockTickReplayTests: XCTestCase {
    /// Copies a real capture, inserting a `#tick` line every `everyNs` of receive time between its lines.
    private func withTicks(_ capture: String, everyNs: Int64, to path: String) throws -> Int {
        let text = try sh("gzip -dc '\(capture)'").1
        let writer = try GzipWriter(path: path)
        var nextTick: Int64? = nil
        var ticks = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let space = line.firstIndex(of: " "), let time = Int64(line[..<space]) {
                if nextTick == nil { nextTick = (time / everyNs + 1) * everyNs }
                while let tick = nextTick, tick <= time {
                    writer.writeLine("\(tick) #tick")
                    ticks += 1
                    nextTick = tick + everyNs
                }
            }
            writer.writeLine(String(line))
        }
        try writer.close()
        return ticks
    }

    private func replay(_ inputs: [String], name: String) throws -> ReplaySummary {
        var options = ReplayOptions(inputs: inputs)
        options.outDir = Paths.tempDir(name)
        options.messagePrinter = { _ in }
        return try runReplay(options)
    }

    /// Ticks fire due timers earlier in the stream than the next market event would, never with other
    /// values (a timer runs with `now` = its due time): each symbol's outputs are the same with and
    /// without ticks. The interleaving of symbols may change — here the COIN-M file's last windows close
    /// on a tick (its last lines are depth updates, which are no events) instead of at the end of input
    /// — which is why runs are compared per symbol. Every tick is counted as a clock tick, none as an event.
    func testRecordedTicksReplayWithTheSameDigests() throws {
        let captures = try Paths.captures()
        let spot = try XCTUnwrap(captures.first { $0.hasSuffix("spot-btcusdt_20240808.gz") })
        let coin = try XCTUnwrap(captures.first { $0.hasSuffix("cm-ethusd_perp_20240808.gz") })
        let directory = Paths.tempDir("ticks")
        let spotTicks = directory + "/spot-btcusdt_20240808.gz", coinTicks = directory + "/cm-ethusd_perp_20240808.gz"
        let ticksInSpot = try withTicks(spot, everyNs: 1_000_000_000, to: spotTicks)
        let ticksInCoin = try withTicks(coin, everyNs: 250_000_000, to: coinTicks)
        XCTAssertGreaterThan(ticksInSpot, 250)

        let plain = try replay([spot, coin], name: "plain")
        let ticked = try replay([spotTicks, coinTicks], name: "ticked")
        XCTAssertEqual(ticked.summary.clockTicks, ticksInSpot + ticksInCoin)
        XCTAssertEqual(ticked.ticksIn, plain.ticksIn, "a tick is no event")
        XCTAssertEqual(ticked.summary.ticksDelivered, plain.summary.ticksDelivered)
        XCTAssertEqual(ticked.digestsBySymbol, plain.digestsBySymbol)
        XCTAssertEqual(ticked.eventsOutByKind, plain.eventsOutByKind)
        XCTAssertEqual(ticked.digestsBySymbol.count, 2)
        XCTAssertEqual(ticked.exitCode, TapeExit.clean)
    }
}
