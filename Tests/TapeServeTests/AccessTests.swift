import Foundation
import TapeServe
import TapeTestSupport
import XCTest

/// config/serve.yaml and the token buckets, in process.
final class AccessTests: XCTestCase {
    func testTheShippedConfigAndKeyHashes() throws {
        let shipped = try ServeConfig.load(path: packageRoot().appendingPathComponent("config/serve.yaml").path)
        XCTAssertEqual(shipped.read, .open)
        XCTAssertEqual(shipped.keys, [], "no key ships with the repository")
        XCTAssertEqual(shipped.perKey, ServeConfig.Limit(ratePerSecond: 100, burst: 200))
        XCTAssertEqual(shipped.perIP, ServeConfig.Limit(ratePerSecond: 50, burst: 100))
        // The FIPS 180-2 example: SHA-256("abc").
        XCTAssertEqual(ServeConfig.hash(key: "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

        let config = try ServeConfig.parse("""
            auth:
              read: key
              keys:
                - {name: ops, sha256: "\(ServeConfig.hash(key: "k1").uppercased())", scopes: [read, admin]}
                - {name: viewer, sha256: "\(ServeConfig.hash(key: "k2"))"}
            rate_limits: {per_key: {rate_per_second: 2.5, burst: 3}}
            """)
        XCTAssertEqual(config.read, .key)
        XCTAssertEqual(config.keys.map(\.name), ["ops", "viewer"])
        XCTAssertEqual(config.keys.map(\.admin), [true, false])
        XCTAssertEqual(config.keys[0].sha256, ServeConfig.hash(key: "k1"), "hashes are kept lowercase")
        XCTAssertEqual(config.perKey, ServeConfig.Limit(ratePerSecond: 2.5, burst: 3))
    }

    func testAConfigThatCannotBeUsedSaysWhy() {
        let cases: [(String, String)] = [
            ("auth: {read: maybe}", "auth.read"),
            ("auth: {keys: [{name: a, sha256: abc}]}", "64 hex digits"),
            ("auth: {keys: [{name: a, sha256: \"\(String(repeating: "0", count: 64))\", scopes: [write]}]}", "scopes"),
            ("rate_limits: {per_ip: {rate_per_second: 0, burst: 1}}", "rate_limits.per_ip"),
            ("listen: 1", "unknown key"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try ServeConfig.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
    }

    /// A bucket grants its burst, then one request per 1/rate s; an empty one says when to come back.
    func testTokenBucketsRefillAtTheirRate() {
        let limiter = RateLimiter(limit: ServeConfig.Limit(ratePerSecond: 2, burst: 3))
        let second: Int64 = 1_000_000_000
        for _ in 0..<3 { XCTAssertNil(limiter.take("a", now: 0)) }
        XCTAssertEqual(limiter.take("a", now: 0), 1, "empty: retry after a second (rounded up)")
        XCTAssertNil(limiter.take("b", now: 0), "another client has its own bucket")
        XCTAssertNil(limiter.take("a", now: second / 2), "half a second gives one token at 2/s")
        XCTAssertNotNil(limiter.take("a", now: second / 2))
        for _ in 0..<3 { XCTAssertNil(limiter.take("a", now: 100 * second)) }
        XCTAssertNotNil(limiter.take("a", now: 100 * second), "never more than the burst, however long idle")
    }

    /// At most `clientsMax` buckets: idle (refilled) ones go first.
    func testBucketsAreBounded() {
        let limiter = RateLimiter(limit: ServeConfig.Limit(ratePerSecond: 1, burst: 1), clientsMax: 10)
        for client in 0..<10 { _ = limiter.take("client-\(client)", now: 0) }
        XCTAssertEqual(limiter.clients, 10)
        _ = limiter.take("late", now: 5_000_000_000)
        XCTAssertLessThanOrEqual(limiter.clients, 10)
        XCTAssertNotNil(limiter.take("late", now: 5_000_000_000), "the newcomer's bucket was kept")
    }
}
