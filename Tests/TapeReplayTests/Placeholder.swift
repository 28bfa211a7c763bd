import XCTest

final class TapeReplayTestsPlaceholder: XCTestCase {
    func testPlaceholder() {}
}
