import XCTest

final class TapeScenariosTestsPlaceholder: XCTestCase {
    func testPlaceholder() {}
}
