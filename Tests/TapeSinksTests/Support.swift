import Foundation
import TapeCore
import TapeIO
import TapeGraph

/// A temporary folder for one test.
func temporaryDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "tape-sinks-tests-\(getpid())/\(name)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A folder whose `fileName` is a symlink to /dev/full: every write to it fails with ENOSPC, as on a
/// full disk.
func directoryWithFullDevice(_ name: String, fileName: String) throws -> String {
    let directory = temporaryDirectory(name)
    try FileManager.default.createSymbolicLink(atPath: directory + "/" + fileName, withDestinationPath: "/dev/full")
    return directory
}

/// The `index`th bar of a synthetic stream: `trades` carries the index, so order can be checked.
func bar(_ index: Int, symbol: SymbolID, timeframe: Timeframe = Timeframe(seconds: 60)) -> GraphOutput {
    let start = Int64(index) * timeframe.nanos
    let price = 61_837.63 + Double(index % 1000) * 0.01
    return .bar(BarOutput(symbol: symbol, timeframe: timeframe, start: start, end: start + timeframe.nanos,
                          open: price, high: price + 1.5, low: price - 0.25, close: price + 0.125,
                          volume: 3.78826, vwap: price + 0.0625, trades: index))
}
