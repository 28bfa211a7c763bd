import Foundation
import XCTest
import TapeCore

/// The parsers read only the bytes they are given. Each input is placed flush against a page that is
/// not readable (PROT_NONE): a read one byte past the end is a SIGSEGV, not a silent look at whatever
/// follows. Before the fix, `parseDateTime("2024-08-09T12")` read the byte after `12` looking for `:`
/// (found by review of the fuzz target `time`, confirmed by AddressSanitizer: heap-buffer-overflow).
final class ParserBoundsTests: XCTestCase {
    /// Runs `body` on `text` copied to the very end of a readable page followed by an unreadable one.
    func withTextBeforeGuardPage<Result>(_ text: String,
                                         _ body: (UnsafePointer<UInt8>, Int) -> Result) throws -> Result {
        let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = Array(text.utf8)
        precondition(bytes.count <= pageBytes, "one page of text")
        guard let mapping = mmap(nil, 2 * pageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapping != MAP_FAILED else { throw XCTSkip("mmap failed: \(errno)") }
        defer { munmap(mapping, 2 * pageBytes) }
        XCTAssertEqual(mprotect(mapping + pageBytes, pageBytes, PROT_NONE), 0)
        let start = (mapping + pageBytes - bytes.count).assumingMemoryBound(to: UInt8.self)
        bytes.withUnsafeBufferPointer { start.update(from: $0.baseAddress!, count: bytes.count) }
        return body(UnsafePointer(start), bytes.count)
    }

    func testEveryPrefixOfADateTimeParsesWithoutReadingPastItsEnd() throws {
        let full = "2024-08-09T12:34:56.123456789+05:30"
        for length in 1...full.utf8.count {
            let prefix = String(full.prefix(length))
            let parsed = try withTextBeforeGuardPage(prefix) { TimeUtil.parseDateTime($0, $1) }
            // The same text in a String (room after it): the same answer.
            XCTAssertEqual(parsed, TimeUtil.parseDateTime(prefix), prefix)
        }
        let hourOnly = try withTextBeforeGuardPage("2024-08-09T12") { TimeUtil.parseDateTime($0, $1) }
        XCTAssertNil(hourOnly, "an hour without minutes is not a time")
    }

    func testEveryPrefixOfANumberParsesWithoutReadingPastItsEnd() throws {
        let full = "-61837.630000000000000000001e-5"
        for length in 1...full.utf8.count {
            let prefix = String(full.prefix(length))
            let parsed = try withTextBeforeGuardPage(prefix) { Numbers.parseDouble($0, $1) }
            XCTAssertEqual(parsed?.bitPattern, Numbers.parseDouble(prefix)?.bitPattern, prefix)
            let integer = try withTextBeforeGuardPage(prefix) { Numbers.parseInt($0, $1) }
            XCTAssertEqual(integer, Numbers.parseInt(prefix), prefix)
        }
    }
}
