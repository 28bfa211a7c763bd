import Foundation
import XCTest
import TapeTestSupport

/// Issue 9: standard input that cannot be read (a directory given as `< dir`: every read fails with
/// EISDIR) was "empty" before; now the run names the input and the system's reason and exits 4.
final class ReadErrorCLITests: XCTestCase {
    func testStandardInputThatCannotBeReadIsUnusableWithTheReason() throws {
        let tape = ProcessInfo.processInfo.environment["TAPE_BINARY"]
            ?? Paths.packageRoot.appendingPathComponent(".build/release/tape").path
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let folder = Paths.tempDir("read-error")
        let (code, _, standardError) = try sh("'\(tape)' replay - --out '\(folder)/run' < '\(folder)'")
        XCTAssertEqual(code, 4, standardError)
        XCTAssertTrue(standardError.contains("-: read failed at byte 0: Is a directory"), standardError)
    }
}
