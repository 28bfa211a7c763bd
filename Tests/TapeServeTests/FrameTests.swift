import TapeServe
import XCTest

/// The frame bytes `/ws` writes for every client (made once per message), against RFC 6455 §5.2 worked by hand:
/// byte 0 = FIN (0x80) | opcode 1 (text) = 0x81; byte 1 = no mask bit, then the payload length in bytes — 0…125
/// in the byte itself, 126 + a 16-bit big-endian length up to 65,535, 127 + a 64-bit one beyond.
final class FrameTests: XCTestCase {
    func testTextFramesHaveTheHeaderOfTheRFCAndTheUTF8Payload() {
        func check(_ text: String, header: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
            let frame = WebSocketTextFrame.bytes(text)
            XCTAssertEqual(Array(frame.prefix(header.count)), header, file: file, line: line)
            XCTAssertEqual(Array(frame.dropFirst(header.count)), Array(text.utf8), file: file, line: line)
        }
        check("", header: [0x81, 0x00])
        check(#"{"type":"pong"}"#, header: [0x81, 15])
        check(String(repeating: "a", count: 125), header: [0x81, 125])
        check(String(repeating: "a", count: 126), header: [0x81, 126, 0x00, 0x7E])
        // Bytes, not characters: 63 two-byte "é" are 126 bytes.
        check(String(repeating: "é", count: 63), header: [0x81, 126, 0x00, 0x7E])
        check(String(repeating: "b", count: 65_535), header: [0x81, 126, 0xFF, 0xFF])
        check(String(repeating: "c", count: 65_536), header: [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00])
        check(String(repeating: "d", count: 70_000), header: [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70])
    }
}
