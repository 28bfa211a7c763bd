import Foundation
import XCTest
import TapeCore
import TapeIO
import TapeGraph
import TapeRecordings
import TapeSinks

/// Writers against a real full device (/dev/full: every write fails with ENOSPC). Before this change
/// BufferedFile.flush ignored the failed write, GzipLineWriter.close and RunFolderSink used `try?`, and
/// a replay into such a folder exited 0 with a short file.
final class WriteErrorTests: XCTestCase {
    func testBufferedFileReportsTheFailedWriteWithItsPath() throws {
        let directory = try directoryWithFullDevice("buffered", fileName: "out.csv")
        let file = try BufferedFile(path: directory + "/out.csv")
        file.writeLine("a,b,c")
        XCTAssertThrowsError(try file.flush()) { error in
            let failure = error as? FileWriteError
            XCTAssertEqual(failure?.path, directory + "/out.csv")
            XCTAssertEqual(failure?.operation, "write")
            XCTAssertEqual(failure?.errnoCode, ENOSPC)
            XCTAssertEqual("\(error)", "\(directory)/out.csv: write failed: No space left on device")
        }
        file.writeLine("later rows are dropped, the failure stays")
        XCTAssertThrowsError(try file.close())
        XCTAssertThrowsError(try file.close(), "close is idempotent and keeps reporting")
    }

    func testBufferedFileRecordsAFailureAtTheBufferLimitBeforeAnyFlush() throws {
        let directory = try directoryWithFullDevice("buffered-limit", fileName: "out.csv")
        let file = try BufferedFile(path: directory + "/out.csv")
        let row = String(repeating: "x", count: 99)
        for _ in 0...(BufferedFile.bufferBytes / 100) { file.writeLine(row) }
        XCTAssertEqual(file.writeError?.errnoCode, ENOSPC, "the automatic write at the buffer limit failed")
        XCTAssertThrowsError(try file.close())
    }

    func testGzipWriterReportsTheFailedWrite() throws {
        let directory = try directoryWithFullDevice("gzip", fileName: "rows.csv.gz")
        let writer = try GzipWriter(path: directory + "/rows.csv.gz")
        // Random text does not compress: more than one output buffer reaches write(2) before close.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<(GzipWriter.outputBytes / 32) {
            writer.writeLine(String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 36)
                + String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 36))
        }
        XCTAssertEqual(writer.writeError?.errnoCode, ENOSPC, "recorded by the non-throwing write path")
        XCTAssertThrowsError(try writer.flush())
        XCTAssertThrowsError(try writer.close()) { error in
            XCTAssertTrue("\(error)".hasPrefix(directory + "/rows.csv.gz: write failed"), "\(error)")
        }
    }

    func testRunFolderSinkFailsOnAFullBarsFile() throws {
        let directory = try directoryWithFullDevice("run-folder", fileName: "bars.csv")
        let symbols = SymbolTable()
        let symbol = symbols.intern("spot:BTCUSDT")
        let sink = try RunFolderSink(directory: directory, symbols: symbols, withPredictions: false)
        for index in 0..<10 { sink.emit(bar(index, symbol: symbol)) }
        XCTAssertThrowsError(try sink.flush())
        let failure = try XCTUnwrap(sink.failure)
        XCTAssertEqual("\(failure)", "\(directory)/bars.csv: write failed: No space left on device")
        XCTAssertThrowsError(try OutputFailed.closeAll([sink])) { error in
            let expected = "output failed (run-folder): \(directory)/bars.csv: write failed: No space left on device"
            XCTAssertEqual("\(error)", expected)
        }
        // The other files were closed and are complete.
        let anomalies = try String(contentsOfFile: directory + "/anomalies.csv", encoding: .utf8)
        XCTAssertEqual(anomalies, GraphOutput.csvHeaders["anomalies"]! + "\n")
    }

    func testRejectLogFailsOnAFullRejectsFile() throws {
        let directory = try directoryWithFullDevice("rejects", fileName: "rejects.csv.gz")
        let log = RejectLog(writer: try GzipLineWriter(path: directory + "/rejects.csv.gz"), printLimit: 0)
        log.reject(Reject(file: "in.gz", line: 7, reason: .badNumber, detail: "price 'x'"))
        XCTAssertThrowsError(try log.close()) { error in
            XCTAssertEqual("\(error)", "\(directory)/rejects.csv.gz: write failed: No space left on device")
        }
        XCTAssertNotNil(log.failure)
    }

    func testWritersSucceedOnAWorkingDisk() throws {
        let directory = temporaryDirectory("working")
        let symbols = SymbolTable()
        let sink = try RunFolderSink(directory: directory, symbols: symbols, withPredictions: false)
        sink.emit(bar(0, symbol: symbols.intern("spot:BTCUSDT")))
        try sink.close()
        try sink.close()
        XCTAssertNil(sink.failure)
        let writer = try GzipWriter(path: directory + "/x.gz")
        writer.writeLine("hello")
        try writer.sync()
        try writer.close()
        XCTAssertNil(writer.writeError)
    }
}
