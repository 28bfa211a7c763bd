import XCTest

final class TapeRecordingsTestsPlaceholder: XCTestCase {
    func testPlaceholder() {}
}
