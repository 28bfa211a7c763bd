import Foundation
import XCTest
import TapeCore
import TapeIO
import TapeRecordings
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9: a failed `read(2)` was taken for the end of the input, silently. It is now a `read_error`
/// reject naming the file, the byte and the system's reason, and the input counts as unusable (exit 4).
/// Real failures, no mock: a directory opened for reading (EISDIR at the first read) and
/// /proc/self/mem read across the end of a mapping (the mapped bytes, then EIO: a failure mid-input).
final class ReadErrorTests: XCTestCase {
    func testADirectoryReadIsAReadErrorNotAnEmptyInput() throws {
        let directory = NSTemporaryDirectory() + "tape-read-error-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let descriptor = open(directory, O_RDONLY)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        let rejects = RejectCollector()
        let lines = LineReader(stream: GzipStream(fileDescriptor: descriptor, path: "in.csv", threaded: false),
                               rejects: rejects)
        XCTAssertNil(lines.next())
        XCTAssertEqual(rejects.rejects.map(\.message), [
            "in.csv:1: read_error: read failed at byte 0: \(String(cString: strerror(EISDIR))); "
                + "the rest of the input was not read",
        ])
        XCTAssertEqual(lines.readFailure, "read failed at byte 0: Is a directory; the rest of the input was not read")
    }

    /// Three pages of a bars CSV in memory, the page after them unmapped, read through /proc/self/mem:
    /// the kernel hands out the three pages, then the next read fails with EIO. Every complete line
    /// before the failure is delivered, the cut line is not, one `read_error` says where and why, and
    /// the reader's stats say the input is unusable.
    func testAReadFailureMidInputIsReportedAfterTheLinesBeforeIt() throws {
        let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mappedBytes = 3 * pageBytes
        guard let mapping = mmap(nil, mappedBytes + pageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                 -1, 0), mapping != MAP_FAILED else { return XCTFail("mmap: \(errno)") }
        defer { munmap(mapping, mappedBytes) }
        XCTAssertEqual(munmap(mapping + mappedBytes, pageBytes), 0, "the page after the text is not mapped")
        var text = "timestamp,open,high,low,close\n"
        var minute = 0
        while text.utf8.count < mappedBytes + 100 {
            text += String(format: "2024-08-09T%02d:%02d:00Z,61000.5,61010.25,60990,61005.75\n",
                           minute / 60, minute % 60)
            minute += 1
        }
        let bytes = Array(text.utf8.prefix(mappedBytes))
        bytes.withUnsafeBytes { mapping.copyMemory(from: $0.baseAddress!, byteCount: mappedBytes) }
        let completeRows = bytes.filter { $0 == 0x0A }.count - 1   // newlines in the mapped bytes, less the header

        let descriptor = open("/proc/self/mem", O_RDONLY)
        XCTAssertGreaterThanOrEqual(descriptor, 0, "open /proc/self/mem: \(errno)")
        XCTAssertEqual(lseek(descriptor, off_t(Int(bitPattern: mapping)), SEEK_SET), off_t(Int(bitPattern: mapping)))
        let rejects = RejectCollector()
        let options = ReaderOptions(symbols: SymbolTable(), rejects: rejects, symbol: "BTCUSDT")
        let lines = LineReader(stream: GzipStream(fileDescriptor: descriptor, path: "bars.csv", threaded: true),
                               rejects: rejects)
        let reader = CSVEventReader<BarRowDecoder>(lines: lines, options: options)
        var event = MarketEvent()
        var events = 0
        while reader.next(&event) == .event { events += 1 }
        XCTAssertEqual(events, completeRows, "every complete row before the failure")
        let expected = "read failed at byte \(mappedBytes): \(String(cString: strerror(EIO))); "
            + "the rest of the input was not read; the partial line \(completeRows + 2) was dropped"
        XCTAssertEqual(rejects.rejects.map(\.message), ["bars.csv:\(completeRows + 2): read_error: \(expected)"])
        XCTAssertEqual(reader.stats.unusable, "bars.csv: read failed at byte \(mappedBytes): Input/output error; "
                       + "the rest of the input was not read")
    }
}
