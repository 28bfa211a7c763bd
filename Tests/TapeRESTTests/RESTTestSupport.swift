import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeSources
import TapeRecordings
import TapeREST

/// A clock whose `sleep` only moves `now`: a 60 s rate-limit wait takes no wall time.
final class FakeClock: @unchecked Sendable {
    private let lock = NSLock()
    private var nowValue: Int64 = 1_000_000_000_000

    var now: Int64 { lock.lock(); defer { lock.unlock() }; return nowValue }

    func advance(_ nanoseconds: Int64) {
        lock.lock()
        nowValue += max(0, nanoseconds)
        lock.unlock()
    }

    var clock: RESTClock { RESTClock(now: { self.now }, sleep: { self.advance($0) }) }
}

/// Thread-safe list (log lines, delivered bodies with their fake time).
final class Collected<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []
    func append(_ item: Element) { lock.lock(); items.append(item); lock.unlock() }
    var all: [Element] { lock.lock(); defer { lock.unlock() }; return items }
}

/// The loopback vendor server (vendor_server.py), started by a test and stopped at its end.
final class VendorServer {
    let process = Process()
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(bars: String, symbol: String, key: String, window: Int = 100, step: Int = 40, faults: String = "") throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "vendor_server.py")
        try requireOrSkip(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 for the vendor server")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            script.path, "--bars", bars, "--symbol", symbol, "--key", key, "--window", "\(window)",
            "--step", "\(step)", "--faults", faults,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        port = try announcedPort(output, of: process, what: "vendor_server.py")
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

enum RESTTestData {
    /// ../shared/data/bars/<name> beside the package (skips locally, fails under CI=true when missing).
    static func bars(_ name: String, file: String = #filePath) throws -> String {
        var url = URL(fileURLWithPath: file).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                let path = url.appendingPathComponent("../shared/data/bars/" + name).standardizedFileURL.path
                try requireOrSkip(FileManager.default.fileExists(atPath: path), "real bars at \(path)")
                return path
            }
            url = url.deletingLastPathComponent()
        }
        try skipOrFail(missing: "the package root above \(file)")
    }

    /// The first `count` bars of a bar file as the 1-minute bar reader reads them (independent of the
    /// REST decoders): the expected values.
    static func readerBars(_ path: String, count: Int) throws -> [MarketEvent] {
        let options = ReaderOptions(symbols: SymbolTable(), rejects: RejectCollector())
        let source = try openSource(path: path, format: .bars, options: options)
        var events: [MarketEvent] = []
        var event = MarketEvent()
        while events.count < count, source.next(&event) == .event { events.append(event) }
        return events
    }

    /// Bars compared on what the REST decoders must reproduce: kind, event time, OHLC, volume (bits).
    static func barFields(_ event: MarketEvent) -> [UInt64] {
        [
            UInt64(event.kind.rawValue), UInt64(bitPattern: event.eventTime), event.open.bitPattern,
            event.high.bitPattern, event.low.bitPattern, event.price.bitPattern, event.size.bitPattern,
        ]
    }
}
