import Foundation
import TapeRedis
import TapeTestSupport
import XCTest

/// hiredis against the Redis of `make services`, checked by reading back.
final class RedisConnectionTests: XCTestCase {
    func testURLs() throws {
        let plain = try RedisEndpoint(url: "redis://127.0.0.1:56379")
        XCTAssertEqual([plain.host, String(plain.port), String(plain.database)], ["127.0.0.1", "56379", "0"])
        let full = try RedisEndpoint(url: "redis://tape:p%40ss@cache.example:7000/3")
        XCTAssertEqual([full.host, String(full.port), String(full.database), full.user ?? ""],
                       ["cache.example", "7000", "3", "tape"])
        XCTAssertEqual("\(full)", "redis://tape@cache.example:7000/3", "printed without the password")
        XCTAssertEqual(try RedisEndpoint(url: "redis://localhost").port, 6379)
        for bad in ["rediss://h:1", "http://h", "redis://", "redis://h:1/x", "redis://h:1?db=2", "h:1"] {
            XCTAssertThrowsError(try RedisEndpoint(url: bad), bad) {
                XCTAssertEqual(($0 as? RedisError)?.kind, .badURL, "\($0)")
            }
        }
        XCTAssertThrowsError(try RedisEndpoint(url: "rediss://u:top-secret@h:1")) {
            XCTAssertFalse("\($0)".contains("top-secret"), "\($0)")
            XCTAssertTrue("\($0)".contains("rediss://u@h:1"), "\($0)")
        }
    }

    /// Pipelined: ten thousand commands in one round trip, replies in order; arguments are binary safe.
    func testPipelineAndBinarySafety() throws {
        let redis = try RedisTestSupport.connect()
        let prefix = RedisTestSupport.prefix("connection")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        let count = 10_000
        for index in 0..<count { try redis.append(["HSET", "\(prefix)h", "f\(index)", String(index * 3)]) }
        XCTAssertEqual(redis.unansweredCommands, count)
        let replies = try redis.readReplies(count)
        XCTAssertEqual(replies, Array(repeating: .integer(1), count: count))
        XCTAssertEqual(try redis.command(["HLEN", "\(prefix)h"]), .integer(Int64(count)))
        XCTAssertEqual(try redis.command(["HGET", "\(prefix)h", "f9999"]).string, "29997")

        let awkward = "a b\r\n\u{0}c \"quoted\" é"
        _ = try redis.command(["SET", "\(prefix)k \r\n", awkward])
        XCTAssertEqual(try redis.command(["GET", "\(prefix)k \r\n"]), .bulk(Array(awkward.utf8)))
        XCTAssertEqual(try redis.command(["GET", "\(prefix)missing"]), .null)
        XCTAssertThrowsError(try redis.command(["HGET", "\(prefix)k \r\n", "f"])) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .server)
            XCTAssertTrue("\($0)".hasPrefix("redis 127.0.0.1:56379: HGET: WRONGTYPE"), "\($0)")
        }
        XCTAssertTrue(redis.isConnected, "an error reply leaves the connection up")
    }

    /// A server that closed the connection: the next call throws a connection error naming it (no
    /// SIGPIPE kills the process), and `reconnect` brings it back.
    func testAClosedConnectionIsAnErrorAndReconnects() throws {
        let redis = try RedisConnection(url: RedisTestSupport.url, clientName: "tape-test-kill-\(getpid())")
        let admin = try RedisTestSupport.connect()
        let id = try redis.command(["CLIENT", "ID"]).integer ?? -1
        _ = try admin.command(["CLIENT", "KILL", "ID", String(id)])
        var failure: RedisError? = nil
        for _ in 0..<3 where failure == nil {  // the first write may still fit into the dead socket's buffer
            do { _ = try redis.command(["PING"]) } catch { failure = error as? RedisError }
        }
        XCTAssertEqual(failure?.kind, .connection)
        XCTAssertTrue(failure?.description.hasPrefix("redis 127.0.0.1:56379: ") ?? false,
                      "\(String(describing: failure))")
        XCTAssertFalse(redis.isConnected)
        try redis.reconnect()
        XCTAssertEqual(try redis.command(["PING"]), .status("PONG"))
    }

    func testUnreachableServerNamesItWithoutThePassword() {
        XCTAssertThrowsError(try RedisConnection(url: "redis://:pw-secret@127.0.0.1:1/2")) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .connection)
            XCTAssertTrue("\($0)".hasPrefix("redis 127.0.0.1:1: cannot connect"), "\($0)")
            XCTAssertFalse("\($0)".contains("pw-secret"), "\($0)")
        }
    }
}
