import XCTest

final class TapeReportsTestsPlaceholder: XCTestCase {
    func testPlaceholder() {}
}
