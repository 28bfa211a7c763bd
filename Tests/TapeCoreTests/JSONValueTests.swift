import Foundation
import XCTest
import TapeCore

/// Tape's one JSON writer: text in insertion order, and Encodable for Codable models that embed it.
final class JSONValueTests: XCTestCase {
    let value: JSONValue = .object([
        ("zeta", .int(-12)),
        ("alpha", .array([.number(0.5), .number(.nan), .bool(true), .null, .number(1e-07)])),
        ("name", .string("a\"b\\c\nd\te\u{1}")),
        ("empty", .object([])),
    ])

    func testRenderKeepsInsertionOrderAndEscapes() {
        // Written by hand: two-space indent, keys as inserted, NaN as null, shortest round-trip numbers.
        let expected = """
        {
          "zeta": -12,
          "alpha": [
            0.5,
            null,
            true,
            null,
            1e-07
          ],
          "name": "a\\"b\\\\c\\nd\\te\\u0001",
          "empty": {}
        }
        """
        XCTAssertEqual(value.render(), expected)
    }

    func testCompactRenderIsOneLineInInsertionOrder() {
        // Written by hand: no spaces, no line breaks, scalars as in `render`.
        XCTAssertEqual(value.renderCompact(),
                       #"{"zeta":-12,"alpha":[0.5,null,true,null,1e-07],"name":"a\"b\\c\nd\te\u0001","empty":{}}"#)
        XCTAssertEqual(JSONValue.array([]).renderCompact(), "[]")
    }

    func testEncodableGivesTheSameValue() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        XCTAssertEqual(text, #"{"alpha":[0.5,null,true,null,1e-07],"empty":{},"#
                       + #""name":"a\"b\\c\nd\te\u0001","zeta":-12}"#)
        // Embedded in a Codable model.
        struct Summary: Encodable { var digest: String; var model: JSONValue }
        let embedded = try encoder.encode(Summary(digest: "ab", model: .object([("rows", .int(3))])))
        XCTAssertEqual(String(decoding: embedded, as: UTF8.self), #"{"digest":"ab","model":{"rows":3}}"#)
    }

    /// The keyed container is filled in the object's order (what an order-keeping encoder writes).
    func testObjectMembersAreEncodedInOrder() throws {
        let recorder = KeyOrderRecorder()
        try JSONValue.object([("b", .int(1)), ("a", .int(2)), ("c", .null)]).encode(to: recorder)
        XCTAssertEqual(recorder.keys, ["b", "a", "c"])
    }
}

/// An Encoder that only records the keys of the top-level keyed container, in call order.
final class KeyOrderRecorder: Encoder {
    var keys: [String] = []
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let recorder: KeyOrderRecorder
        var codingPath: [any CodingKey] = []
        mutating func encodeNil(forKey key: Key) throws { recorder.keys.append(key.stringValue) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { recorder.keys.append(key.stringValue) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                            forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            fatalError("not used")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { fatalError("not used") }
        mutating func superEncoder() -> any Encoder { fatalError("not used") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { fatalError("not used") }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Container<Key>(recorder: self))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { fatalError("not used") }
    func singleValueContainer() -> any SingleValueEncodingContainer { fatalError("not used") }
}
