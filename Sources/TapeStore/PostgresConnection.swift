import Foundation
import CLibPQ
import TapeCore
import TapeLogging

/// A PostgreSQL failure, naming the server (host:port/database, never a password) and what it said.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let peer: String
    public let detail: String
    /// The server's SQLSTATE (`23505` unique violation, ...) when it answered; nil for a lost connection.
    public var sqlState: String? = nil
    /// True when the connection itself is gone (server down, network): reconnect, keep the data.
    public var connectionLost = false
    public init(peer: String, detail: String, sqlState: String? = nil, connectionLost: Bool = false) {
        self.peer = peer; self.detail = detail; self.sqlState = sqlState; self.connectionLost = connectionLost
    }
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
    /// What the server's notices and warnings are logged with (retained here: libpq holds a raw pointer).
    private let notices: NoticeLog

    public init(url: String) throws {
        guard let opened = PQconnectdb(url) else {
            throw PostgresError(peer: urlWithoutPassword(url), detail: "out of memory")
        }
        connection = opened
        // After a failed connection these may be NULL: name what the URL said then.
        let host = PQhost(opened).map { String(cString: $0) } ?? "?"
        let port = PQport(opened).map { String(cString: $0) } ?? "?"
        let database = PQdb(opened).map { String(cString: $0) } ?? "?"
        peer = host == "?" ? urlWithoutPassword(url) : "\(host):\(port)/\(database)"
        // The server's WARNINGs (`terminating connection due to immediate shutdown command`) go through swift-log
        // like every other line, not straight to stderr (libpq's default).
        notices = NoticeLog(peer: peer)
        PQsetNoticeProcessor(opened, { context, message in
            guard let context, let message else { return }
            Unmanaged<NoticeLog>.fromOpaque(context).takeUnretainedValue().log(String(cString: message))
        }, Unmanaged.passUnretained(notices).toOpaque())
        guard PQstatus(opened) == CONNECTION_OK else {
            // Every stored property is set: deinit runs and calls PQfinish once. A connection that cannot
            // be made counts as lost (the server is away, or refuses it for now): a reconnecting caller retries.
            throw PostgresError(peer: peer, detail: Self.lastError(opened), connectionLost: true)
        }
        // Server NOTICEs ("already exists, skipping") are not the user's business; warnings and errors are.
        PQclear(PQexec(opened, "SET client_min_messages TO warning"))
    }

    deinit { PQfinish(connection) }

    /// Runs one or more statements without results. Throws the server's error.
    public func execute(_ sql: String) throws {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw error(result) }
    }

    /// Runs one statement; returns the rows it affected (its command tag: INSERT, UPDATE, DELETE).
    @discardableResult
    public func executeCounting(_ sql: String) throws -> Int {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else { throw error(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// True while libpq holds a working connection (false after the server went away).
    public var isConnected: Bool { PQstatus(connection) == CONNECTION_OK }

    /// The error of a failed result: the server's message and SQLSTATE, or a lost connection.
    private func error(_ result: OpaquePointer?) -> PostgresError {
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        return PostgresError(peer: peer, detail: Self.lastError(connection), sqlState: state,
                             connectionLost: PQstatus(connection) != CONNECTION_OK || Self.meansGone(state))
    }

    /// SQLSTATEs that mean the server is going or gone, whatever libpq's connection status still says:
    /// class 08 (connection exception), 57P01 admin shutdown (`pg_ctl stop -m fast`/`immediate`), 57P02 crash
    /// shutdown, 57P03 cannot connect now (starting up, in recovery).
    static func meansGone(_ sqlState: String?) -> Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    /// Runs a query; returns its rows as text (nil for SQL NULL).
    public func query(_ sql: String) throws -> [[String?]] {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else { throw error(result) }
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
        var text = rows
        return try text.withUTF8 { try copy(statement, bytes: UnsafeRawBufferPointer($0)) }
    }

    /// `COPY … FROM STDIN` with `bytes` as the whole input (text rows, or a whole binary COPY stream
    /// with `(FORMAT binary)` — see `CopyBinaryRows`). Returns the rows the server took.
    @discardableResult
    public func copy(_ statement: String, bytes: UnsafeRawBufferPointer) throws -> Int {
        let started = PQexec(connection, statement)
        guard PQresultStatus(started) == PGRES_COPY_IN else {
            defer { PQclear(started) }
            throw error(started)
        }
        PQclear(started)
        // libpq takes at most Int32.max bytes per call.
        var offset = 0
        let chunk = 1 << 20
        while offset < bytes.count {
            let length = min(chunk, bytes.count - offset)
            let sent = PQputCopyData(connection, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self),
                                     Int32(length))
            guard sent == 1 else { break }
            offset += length
        }
        let ended = offset == bytes.count ? PQputCopyEnd(connection, nil) : PQputCopyEnd(connection, "send failed")
        var taken = 0
        var failure: PostgresError? = ended == 1 ? nil : error(nil)
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                taken = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = error(result)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        if PQstatus(connection) != CONNECTION_OK { throw error(nil) }
        return taken
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws (then rethrows).
    public func transaction<Result>(_ body: () throws -> Result) throws -> Result {
        try execute("BEGIN")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if isConnected { try? execute("ROLLBACK") }
            throw error
        }
    }

    private static func lastError(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

}

/// A server URL without its password (`postgres://user:secret@h` → `postgres://user@h`; any scheme), for
/// messages: every store names its server this way.
public func urlWithoutPassword(_ url: String) -> String {
    guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at else { return url }
    let user = url[scheme.upperBound..<at].split(separator: ":").first.map(String.init) ?? ""
    return String(url[..<scheme.upperBound]) + user + String(url[at...])
}

/// A connection's server notices, logged (`tape.store.postgres`, warning) naming the server.
final class NoticeLog {
    static let logger = Logger(label: "tape.store.postgres")
    let peer: String

    init(peer: String) { self.peer = peer }

    func log(_ message: String) {
        let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        Self.logger.warning("tape: postgres \(peer): server says: \(text)",
                            metadata: ["peer": .string(peer), "event": "notice", "detail": .string(text)])
    }
}
