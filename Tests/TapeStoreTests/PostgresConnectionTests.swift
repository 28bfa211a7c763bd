import Foundation
import TapeStore
import TapeTestSupport
import XCTest

/// libpq against the PostgreSQL that `make services` starts (config/services.env), checked by SQL.
final class PostgresConnectionTests: XCTestCase {
    private let url = "postgres://postgres@127.0.0.1:55432/tape"

    private func connect() throws -> PostgresConnection {
        do { return try PostgresConnection(url: url) } catch {
            try skipOrFail(missing: "PostgreSQL of `make services` at \(url): \(error)")
        }
    }

    func testCopyWritesEveryRowAndTheServerAgrees() throws {
        let connection = try connect()
        let table = "copy_test_\(getpid())"
        try connection.execute("DROP TABLE IF EXISTS \(table); CREATE TABLE \(table) (id bigint PRIMARY KEY, price double precision, note text)")
        defer { try? connection.execute("DROP TABLE \(table)") }
        var rows = ""
        for id in 1...10_000 { rows += "\(id)\t\(Double(id) * 0.5)\t\(id % 7 == 0 ? "\\N" : "n\(id)")\n" }
        XCTAssertEqual(try connection.copy("COPY \(table) (id, price, note) FROM STDIN", rows: rows), 10_000)
        let answer = try connection.query("SELECT count(*), sum(price), count(note) FROM \(table)")
        XCTAssertEqual(answer.first?[0], "10000")
        XCTAssertEqual(answer.first?[1], "25002500", "sum of id/2 for 1...10000")
        XCTAssertEqual(answer.first?[2], String(10_000 - 10_000 / 7), "\\N is NULL")
    }

    func testABadRowFailsTheWholeCopyNamingTheServer() throws {
        let connection = try connect()
        let table = "copy_bad_\(getpid())"
        try connection.execute("DROP TABLE IF EXISTS \(table); CREATE TABLE \(table) (id bigint)")
        defer { try? connection.execute("DROP TABLE \(table)") }
        XCTAssertThrowsError(try connection.copy("COPY \(table) (id) FROM STDIN", rows: "1\n2\nnot-a-number\n4\n")) {
            XCTAssertTrue("\($0)".contains("127.0.0.1:55432/tape"), "\($0)")
            XCTAssertTrue("\($0)".contains("not-a-number"), "\($0)")
        }
        XCTAssertEqual(try connection.query("SELECT count(*) FROM \(table)").first?[0], "0", "nothing half-written")
    }

    func testAnUnreachableServerIsAnErrorNamingItWithoutThePassword() throws {
        XCTAssertThrowsError(try PostgresConnection(url: "postgres://tape:secret-pw@127.0.0.1:1/tape")) {
            XCTAssertTrue("\($0)".contains("127.0.0.1:1"), "\($0)")
            XCTAssertFalse("\($0)".contains("secret-pw"), "\($0)")
        }
    }
}
