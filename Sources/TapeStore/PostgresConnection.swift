import Foundation
import CLibPQ
import TapeCore

/// A PostgreSQL failure, naming the server (host:port/database, never a password) and what it said.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let peer: String
    public let detail: String
    public var description: String { "postgres \(peer): \(detail)" }
}

/// One libpq connection: the only code that touches libpq (the store's sinks build on it).
///
///     let connection = try PostgresConnection(url: "postgres://postgres@127.0.0.1:55432/tape")
///     try connection.execute("CREATE TABLE t (a bigint, b text)")
///     try connection.copy("COPY t (a, b) FROM STDIN", rows: "1\tone\n2\ttwo\n")
///
/// Bulk writes go through `COPY … FROM STDIN` (text format: tab-separated, `\N` for null), the fastest
/// path libpq offers; statements run one at a time. Not thread-safe: one owner.
public final class PostgresConnection {
    /// `host:port/database` of the server, for messages (no user, no password).
    public let peer: String
    private let connection: OpaquePointer

    public init(url: String) throws {
        guard let opened = PQconnectdb(url) else {
            throw PostgresError(peer: Self.redacted(url), detail: "out of memory")
        }
        connection = opened
        // After a failed connection these may be NULL: name what the URL said then.
        let host = PQhost(opened).map { String(cString: $0) } ?? "?"
        let port = PQport(opened).map { String(cString: $0) } ?? "?"
        let database = PQdb(opened).map { String(cString: $0) } ?? "?"
        peer = host == "?" ? Self.redacted(url) : "\(host):\(port)/\(database)"
        guard PQstatus(opened) == CONNECTION_OK else {
            // Every stored property is set: deinit runs and calls PQfinish once.
            throw PostgresError(peer: peer, detail: Self.lastError(opened))
        }
    }

    deinit { PQfinish(connection) }

    /// Runs one or more statements without results. Throws the server's error.
    public func execute(_ sql: String) throws {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw PostgresError(peer: peer, detail: Self.lastError(connection))
        }
    }

    /// Runs a query; returns its rows as text (nil for SQL NULL).
    public func query(_ sql: String) throws -> [[String?]] {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else {
            throw PostgresError(peer: peer, detail: Self.lastError(connection))
        }
        let rows = Int(PQntuples(result)), columns = Int(PQnfields(result))
        return (0..<rows).map { row in
            (0..<columns).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) == 1
                    ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
        }
    }

    /// `COPY … FROM STDIN` with `rows` in COPY text format (one line per row). Returns the rows the server
    /// took (its command tag). Throws the server's error (the whole COPY is then rolled back).
    @discardableResult
    public func copy(_ statement: String, rows: String) throws -> Int {
        let started = PQexec(connection, statement)
        let status = PQresultStatus(started)
        PQclear(started)
        guard status == PGRES_COPY_IN else { throw PostgresError(peer: peer, detail: Self.lastError(connection)) }
        var text = rows
        let sent = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(connection, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1, PQputCopyEnd(connection, nil) == 1 else {
            throw PostgresError(peer: peer, detail: Self.lastError(connection))
        }
        var taken = 0
        var failure: String? = nil
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                taken = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else {
                failure = Self.lastError(connection)
            }
            PQclear(result)
        }
        if let failure { throw PostgresError(peer: peer, detail: failure) }
        return taken
    }

    private static func lastError(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A connection URL without its password (`postgres://user:secret@h` → `postgres://user@h`).
    static func redacted(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
        let credentials = url[scheme.upperBound..<at]
        let user = credentials.split(separator: ":").first.map(String.init) ?? ""
        return String(url[..<scheme.upperBound]) + user + String(url[at...])
    }
}
