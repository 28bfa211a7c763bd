import Foundation
import XCTest
import TapeCore
import TapeRecordings
import TapeIO
import TapeSources

/// RecordingWriter size rotation on its own: files named by receive hour with -N suffixes, every
/// rotated file reached maxBytes, and the files together read back every event once, in order.
final class WriterRotationTests: XCTestCase {
    func testSizeRotationWithinOneHour() throws {
        let dir = NSTemporaryDirectory() + "tape-rot-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let symbols = SymbolTable()
        let a = symbols.intern("A")
        let maxBytes: Int64 = 4_000
        let w = RecordingWriter(directory: dir, prefix: "r", symbols: symbols, maxBytes: maxBytes, rotateHourly: true, flushEvery: 10)
        // 2024-08-08 10:00:00 UTC = 1723111200 s; 1000 events 1 ms apart stay inside hour 10.
        let t0: Int64 = 1_723_111_200 * 1_000_000_000
        let n = 1000
        for i in 0..<n {
            let t = t0 + Int64(i) * 1_000_000
            try w.write(.trade(eventTime: t, receiveTime: t, symbol: a, price: 100 + Double(i * 37 % 1001) / 7, size: Double(i % 13 + 1), sequence: Int64(i + 1)))
        }
        try w.close()
        XCTAssertGreaterThan(w.files.count, 2)
        let names = w.files.map { ($0 as NSString).lastPathComponent }
        XCTAssertEqual(names.first, "r-20240808-10.csv.gz")
        XCTAssertEqual(Array(names.dropFirst()), (1..<names.count).map { "r-20240808-10-\($0).csv.gz" })
        for f in w.files.dropLast() {
            let size = try FileManager.default.attributesOfItem(atPath: f)[.size] as! Int
            XCTAssertGreaterThanOrEqual(Int64(size), maxBytes, f)
        }
        var seqs: [Int64] = []
        let rejects = RejectCollector()
        for f in w.files {
            let src = try openSource(path: f, format: nil, options: ReaderOptions(symbols: SymbolTable(), rejects: rejects))
            var e = MarketEvent()
            while src.next(&e) == .event { seqs.append(e.sequence) }
        }
        XCTAssertEqual(rejects.rejects.count, 0)
        XCTAssertEqual(seqs, (1...Int64(n)).map { $0 })
    }
}
