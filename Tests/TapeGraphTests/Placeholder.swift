import XCTest

final class TapeGraphTestsPlaceholder: XCTestCase {
    func testPlaceholder() {}
}
