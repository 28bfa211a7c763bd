import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeRecordings

/// A quoted CSV field (RFC 4180: `"` doubled inside quotes) reads back as the text that was written.
final class CSVQuotingTests: XCTestCase {
    func fields(_ line: String) throws -> [String] {
        var row = CSVRow()
        let bytes = Array(line.utf8)
        return try bytes.withUnsafeBytes { buffer in
            guard row.split(buffer) else { throw MissingRequirement(description: "split refused: \(line)") }
            return (0..<row.count).map { row.string($0) }
        }
    }

    func testDoubledQuotesInsideAQuotedFieldAreUnescaped() throws {
        // Expected values written by hand from RFC 4180.
        XCTAssertEqual(try fields(#"a,"say ""hi"", then go",,"x""#), ["a", #"say "hi", then go"#, "", "x"])
        XCTAssertEqual(try fields(#""""","""""""#), [#"""#, #""""#])
        XCTAssertEqual(try fields(#""plain, no quotes",b"#), ["plain, no quotes", "b"])
        // bytes(_:) is what decoders intern: it must be the unescaped text too.
        var row = CSVRow()
        let line = Array(#"1,"a""b",2"#.utf8)
        line.withUnsafeBytes { buffer in
            XCTAssertTrue(row.split(buffer))
            XCTAssertEqual(Array(row.bytes(1)), Array(#"a"b"#.utf8))
            XCTAssertEqual(row.int(0), 1)
            XCTAssertEqual(row.int(2), 2)
        }
    }

    /// Written by the tick writer (`RecordingWriter`), read by the tick CSV reader: a symbol and an
    /// exchange holding quotes and commas come back identical.
    func testTickWriterQuotedFieldsRoundTrip() throws {
        let directory = NSTemporaryDirectory() + "tape-quoting-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let symbolName = #"odd "name", with a comma"#
        let exchangeName = #"X""Y"#
        let written = SymbolTable()
        let writer = RecordingWriter(directory: directory, prefix: "q", symbols: written, rotateHourly: false,
                                     flushEvery: 10)
        let time: Nanos = 1_723_111_200 * 1_000_000_000
        var trade = MarketEvent.trade(eventTime: time, receiveTime: time, symbol: written.intern(symbolName),
                                      price: 101.5, size: 2, sequence: 1)
        trade.exchange = written.intern(exchangeName)
        try writer.write(trade)
        try writer.close()
        XCTAssertEqual(writer.files.count, 1)

        let read = SymbolTable()
        let rejects = RejectCollector()
        let source = try openSource(path: writer.files[0], format: nil,
                                    options: ReaderOptions(symbols: read, rejects: rejects))
        XCTAssertEqual(source.formatName, "tick-csv")
        var event = MarketEvent()
        XCTAssertEqual(source.next(&event), .event)
        XCTAssertEqual(read.name(event.symbol), symbolName)
        XCTAssertEqual(read.name(event.exchange), exchangeName)
        XCTAssertEqual(event.price, 101.5)
        XCTAssertEqual(source.next(&event), .end)
        XCTAssertEqual(source.stats.rejected, 0)
    }
}
