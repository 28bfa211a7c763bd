import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// Shared helpers of the feeds tests (data location, shell, temp dirs, reading everything).
enum FeedsTestSupport {
    static func dataDir(file: String = #filePath) throws -> String {
        var url = URL(fileURLWithPath: file).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                let d = url.appendingPathComponent("../shared/data").standardizedFileURL.path
                if FileManager.default.fileExists(atPath: d + "/binance-feed") { return d }
                break
            }
            url = url.deletingLastPathComponent()
        }
        try skipOrFail(missing: "real data (../shared/data) beside the package")
    }

    static func binance(_ name: String) throws -> String { try dataDir() + "/binance-feed/" + name }

    @discardableResult
    static func sh(_ cmd: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", cmd]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Bit-exact equality of two event lists (MarketEvent's == is false for NaN fields). Returns the
    /// first differing index, or nil if equal.
    static func firstDifference(_ a: [MarketEvent], _ b: [MarketEvent]) -> Int? {
        func bits(_ e: MarketEvent) -> [UInt64] {
            [UInt64(bitPattern: e.eventTime), UInt64(bitPattern: e.receiveTime), UInt64(bitPattern: e.sequence),
             UInt64(e.symbol), UInt64(e.source), UInt64(e.kind.rawValue), UInt64(e.side), UInt64(e.exchange),
             UInt64(e.conditions)] + [e.price, e.size, e.bid, e.bidSize, e.ask, e.askSize, e.open, e.high, e.low].map(\.bitPattern)
        }
        for i in 0..<min(a.count, b.count) where bits(a[i]) != bits(b[i]) { return i }
        return a.count == b.count ? nil : min(a.count, b.count)
    }

    static func shInt(_ cmd: String) throws -> Int { Int(try sh(cmd)) ?? -1 }

    static func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "tape-feeds-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    struct Result {
        var events: [MarketEvent] = []
        var trades: Int { events.filter { $0.kind == .trade }.count }
        var quotes: Int { events.filter { $0.kind == .quote }.count }
        var collector = RejectCollector()
        var stats = SourceStats()
        var symbols = SymbolTable()
    }

    static func readAll(_ path: String, venue: String? = nil, threaded: Bool = true, sourceIndex: UInt32 = 0,
                        symbols: SymbolTable = SymbolTable()) throws -> Result {
        var r = Result()
        r.symbols = symbols
        let opts = ReaderOptions(symbols: symbols, rejects: r.collector, sourceIndex: sourceIndex, venue: venue)
        let reader = try BinanceCaptureReader(path: path, options: opts, threaded: threaded)
        var e = MarketEvent()
        while reader.next(&e) == .event { r.events.append(e) }
        r.stats = reader.stats
        return r
    }

    /// Decompressed lines of a real capture (via zcat), without the final empty element.
    static func lines(_ path: String) throws -> [String] {
        let text = try sh("zcat '\(path)'")
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    static func writeGzip(_ lines: [String], to path: String) throws {
        let plain = path + ".txt"
        try (lines.joined(separator: "\n") + "\n").write(toFile: plain, atomically: true, encoding: .utf8)
        try sh("gzip -c '\(plain)' > '\(path)' && rm '\(plain)'")
    }
}
