import XCTest

final class TapeModelTestsPlaceholder: XCTestCase {
    func testPlaceholder() {}
}
