import CHiredis
import Foundation
import TapeCore
#if canImport(Glibc)
import Glibc
#endif

/// A Redis failure, naming the server (`host:port`, never a password) and what went wrong.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The URL is not `redis://[user[:password]@]host[:port][/db]`.
        case badURL
        /// The connection is gone or never came up (refused, reset, closed, timed out): reconnect.
        case connection
        /// The server answered a command with an error reply (`-ERR …`, `-WRONGTYPE …`, `-LOADING …`).
        case server
    }
    /// `host:port` of the server (for a bad URL: the URL without its password).
    public let peer: String
    public let kind: Kind
    public let detail: String
    public init(peer: String, kind: Kind, detail: String) {
        self.peer = peer
        self.kind = kind
        self.detail = detail
    }
    public var description: String { "redis \(peer): \(detail)" }
}

/// Where a Redis server is: `redis://[user[:password]@]host[:port][/db]` (port 6379 and database 0 by
/// default). `rediss://` (TLS) and query parameters are refused. Printing it never shows the password.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public static let defaultPort = 6379
    public let host: String
    public let port: Int
    public let database: Int
    public let user: String?
    /// Sent with `AUTH` only; never printed, never part of an error.
    let password: String?

    /// Parses the URL; throws `RedisError.Kind.badURL` naming the URL without its password.
    public init(url: String) throws(RedisError) {
        let shown = RedisEndpoint.withoutPassword(url)
        func bad(_ why: String) -> RedisError {
            RedisError(peer: shown, kind: .badURL, detail: "\(why) (want redis://[user[:password]@]host[:port][/db])")
        }
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased() else {
            throw bad("not a URL")
        }
        guard scheme == "redis" else {
            throw bad(scheme == "rediss" ? "TLS (rediss://) is not supported" : "scheme \(scheme):// is not redis://")
        }
        guard let host = parts.host, !host.isEmpty else { throw bad("no host") }
        guard parts.query == nil, parts.fragment == nil else { throw bad("query parameters are not supported") }
        let port = parts.port ?? RedisEndpoint.defaultPort
        guard (1...65_535).contains(port) else { throw bad("port \(port) out of range") }
        var database = 0
        let path = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        if !path.isEmpty {
            guard let number = Int(path), number >= 0 else { throw bad("database '\(path)' is not a number") }
            database = number
        }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = port
        self.database = database
        self.user = parts.user.flatMap { $0.isEmpty ? nil : $0 }
        self.password = parts.password.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `host:port`, how every message names the server.
    public var peer: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `redis://user@host:port/db`, without the password.
    public var description: String { "redis://\(user.map { $0 + "@" } ?? "")\(peer)/\(database)" }

    /// The URL with whatever stands between `://` and the last `@` reduced to the user name.
    static func withoutPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.lastIndex(of: "@"), at > scheme.upperBound else {
            return url
        }
        let user = url[scheme.upperBound..<at].split(separator: ":", omittingEmptySubsequences: false).first ?? ""
        return String(url[..<scheme.upperBound]) + user + String(url[at...])
    }
}

/// One reply of the server (RESP2, what hiredis 0.14 speaks).
public enum RedisReply: Sendable, Equatable {
    /// `+OK`, `+PONG`.
    case status(String)
    /// `-ERR …`: the server refused the command (the connection is fine).
    case error(String)
    case integer(Int64)
    /// A bulk string, binary safe.
    case bulk([UInt8])
    /// A nil bulk or nil array (a missing key).
    case null
    case array([RedisReply])

    /// The text of a status or bulk reply (bulk bytes decoded as UTF-8), else nil.
    public var string: String? {
        switch self {
        case .status(let text): return text
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// A flat `[field, value, field, value…]` array (`HGETALL`) as a dictionary; nil for other replies.
    public var fieldValues: [String: String]? {
        guard let elements = array, elements.count % 2 == 0 else { return nil }
        var result: [String: String] = [:]
        var index = 0
        while index < elements.count {
            guard let field = elements[index].string, let value = elements[index + 1].string else { return nil }
            result[field] = value
            index += 2
        }
        return result
    }
}

/// One hiredis connection (blocking, with timeouts): the only code that touches hiredis.
///
///     let redis = try RedisConnection(url: "redis://127.0.0.1:56379/0")
///     _ = try redis.command(["SET", "tape:k", "1"])
///     for key in keys { try redis.append(["HSET", key, "f", "v"]) }   // pipelined:
///     let replies = try redis.readReplies(keys.count)                 // one round trip
///
/// Contract:
/// - Arguments go through `redisAppendCommandArgv`: binary safe, never formatted or quoted.
/// - A connection failure (refused, reset, closed by the server, a connect or command timeout) throws
///   `RedisError` of kind `.connection` naming `host:port`; the connection is then closed and every call
///   throws until `reconnect()` succeeds. An error *reply* is not a connection failure: `command` throws it
///   as kind `.server` (the connection stays up); `readReplies` returns it as `.error` for the caller.
/// - hiredis writes with write(2): a server that went away would raise SIGPIPE, which kills the process.
///   Every call that writes blocks SIGPIPE on the calling thread and discards one it raised, so the
///   failure comes back as an error instead; nothing process-wide is changed.
/// - Not thread-safe: one owner at a time (it may be handed to another thread between calls).
public final class RedisConnection: @unchecked Sendable {
    public let endpoint: RedisEndpoint
    /// `host:port`, for messages.
    public var peer: String { endpoint.peer }
    public let connectTimeoutNanoseconds: Int64
    public let commandTimeoutNanoseconds: Int64
    /// Sent as `CLIENT SETNAME` on every connect (seen in `CLIENT LIST`), if set.
    public let clientName: String?

    private var context: UnsafeMutablePointer<redisContext>?
    /// Commands appended and not yet answered (`readReplies` takes them).
    public private(set) var unansweredCommands = 0
    // Reused for every command: the arguments' bytes, where each starts, and their lengths.
    private var argumentBytes: [UInt8] = []
    private var argumentStarts: [Int] = []
    private var argumentLengths: [Int] = []

    /// Parses the URL (a bad one throws `.badURL`) and connects: TCP within `connectTimeoutNanoseconds`,
    /// then `AUTH`, `SELECT` and `CLIENT SETNAME` as needed. Every later read or write waits at most
    /// `commandTimeoutNanoseconds`.
    public convenience init(url: String, connectTimeoutNanoseconds: Int64 = 2_000_000_000,
                            commandTimeoutNanoseconds: Int64 = 5_000_000_000, clientName: String? = nil) throws {
        self.init(endpoint: try RedisEndpoint(url: url), connectTimeoutNanoseconds: connectTimeoutNanoseconds,
                  commandTimeoutNanoseconds: commandTimeoutNanoseconds, clientName: clientName)
        try reconnect()
    }

    /// A connection to `endpoint` that is not connected yet: call `reconnect()`.
    public init(endpoint: RedisEndpoint, connectTimeoutNanoseconds: Int64 = 2_000_000_000,
                commandTimeoutNanoseconds: Int64 = 5_000_000_000, clientName: String? = nil) {
        precondition(connectTimeoutNanoseconds > 0 && commandTimeoutNanoseconds > 0, "Redis timeouts are positive")
        self.endpoint = endpoint
        self.connectTimeoutNanoseconds = connectTimeoutNanoseconds
        self.commandTimeoutNanoseconds = commandTimeoutNanoseconds
        self.clientName = clientName
    }

    deinit { close() }

    public var isConnected: Bool { context != nil }

    /// Closes the current connection (if any) and opens a new one, authenticated and on the database of
    /// the URL. Unanswered commands are forgotten. Throws `.connection` (or `.server` if `AUTH` or
    /// `SELECT` is refused), leaving the connection closed.
    public func reconnect() throws {
        close()
        guard let opened = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port),
                                                   Self.timeval(connectTimeoutNanoseconds)) else {
            throw RedisError(peer: peer, kind: .connection, detail: "cannot allocate a hiredis context")
        }
        if opened.pointee.err != 0 {
            let detail = Self.errorText(opened)
            redisFree(opened)
            throw RedisError(peer: peer, kind: .connection, detail: "cannot connect: \(detail)")
        }
        guard redisSetTimeout(opened, Self.timeval(commandTimeoutNanoseconds)) == REDIS_OK else {
            let detail = Self.errorText(opened)
            redisFree(opened)
            throw RedisError(peer: peer, kind: .connection, detail: "cannot set the command timeout: \(detail)")
        }
        context = opened
        do {
            if let password = endpoint.password {
                _ = try command(endpoint.user.map { ["AUTH", $0, password] } ?? ["AUTH", password], name: "AUTH")
            }
            if endpoint.database != 0 { _ = try command(["SELECT", String(endpoint.database)]) }
            if let clientName { _ = try command(["CLIENT", "SETNAME", clientName]) }
        } catch {
            close()
            throw error
        }
    }

    /// Closes the connection; idempotent. Unanswered commands are forgotten.
    public func close() {
        if let context { redisFree(context) }
        context = nil
        unansweredCommands = 0
    }

    /// Sends one command and waits for its reply. An error reply throws `.server` naming the command.
    public func command(_ arguments: [String]) throws -> RedisReply {
        try command(arguments, name: nil)
    }

    /// Queues one command in the output buffer (no I/O): pipelining. `readReplies` sends what is queued
    /// and reads the replies in order.
    public func append(_ arguments: [String]) throws {
        precondition(!arguments.isEmpty, "a Redis command has a name")
        guard let context else { throw notConnected() }
        let status = withArgv(arguments) { count, argv, lengths in
            redisAppendCommandArgv(context, count, argv, lengths)
        }
        guard status == REDIS_OK else { throw failed(context, doing: "queueing \(arguments[0])") }
        unansweredCommands += 1
    }

    /// Sends everything queued and reads `count` replies, in command order (error replies included, as
    /// `.error`). On a subscribed connection, reads pushed messages (`count` of them, nothing appended).
    public func readReplies(_ count: Int) throws -> [RedisReply] {
        precondition(count >= 0, "a count of replies")
        guard let context else { throw notConnected() }
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        try Self.withoutSIGPIPE {
            for _ in 0..<count {
                var raw: UnsafeMutableRawPointer? = nil
                guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                    throw failed(context, doing: "reading a reply")
                }
                replies.append(Self.convert(raw.assumingMemoryBound(to: redisReply.self)))
                freeReplyObject(raw)
            }
        }
        unansweredCommands = max(0, unansweredCommands - count)
        return replies
    }

    /// On a subscribed connection: the next pushed message if one arrives within `timeoutMilliseconds`,
    /// nil otherwise. Unlike a read that times out (after which hiredis cannot go on), a quiet channel
    /// leaves the connection usable: it waits for the socket with `poll` and reads only what is there.
    public func nextPush(timeoutMilliseconds: Int32) throws -> RedisReply? {
        guard let context else { throw notConnected() }
        var raw: UnsafeMutableRawPointer? = nil
        // A message already read into hiredis's buffer with an earlier one.
        guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { throw failed(context, doing: "reading a message") }
        if raw == nil {
            var socket = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&socket, 1, timeoutMilliseconds)
            if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
            guard ready > 0 else {
                let detail = String(cString: strerror(errno))
                close()
                throw RedisError(peer: peer, kind: .connection, detail: "waiting for a message: \(detail)")
            }
            // Readable, or closed by the server (then the read fails and says so).
            guard redisBufferRead(context) == REDIS_OK else { throw failed(context, doing: "reading a message") }
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
                throw failed(context, doing: "reading a message")
            }
        }
        guard let raw else { return nil }   // part of a message so far
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    // MARK: private

    private func command(_ arguments: [String], name: String?) throws -> RedisReply {
        precondition(unansweredCommands == 0, "command() with pipelined commands unanswered: readReplies first")
        try append(arguments)
        let reply = try readReplies(1)[0]
        if case .error(let message) = reply {
            throw RedisError(peer: peer, kind: .server, detail: "\(name ?? arguments[0]): \(message)")
        }
        return reply
    }

    /// Calls `body` with argc, argv and argvlen for `arguments`, from buffers reused across calls.
    private func withArgv<T>(
        _ arguments: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        argumentBytes.removeAll(keepingCapacity: true)
        argumentStarts.removeAll(keepingCapacity: true)
        argumentLengths.removeAll(keepingCapacity: true)
        for argument in arguments {
            argumentStarts.append(argumentBytes.count)
            argumentBytes.append(contentsOf: argument.utf8)
            argumentLengths.append(argumentBytes.count - argumentStarts[argumentStarts.count - 1])
        }
        argumentBytes.append(0)  // never an empty buffer: the base address exists
        return argumentBytes.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers = argumentStarts.map { Optional(base + $0) }
            return pointers.withUnsafeMutableBufferPointer { argv in
                argumentLengths.withUnsafeBufferPointer { lengths in
                    body(Int32(arguments.count), argv.baseAddress!, lengths.baseAddress!)
                }
            }
        }
    }

    /// The context's error as a `.connection` failure; closes the connection (hiredis cannot go on).
    private func failed(_ context: UnsafeMutablePointer<redisContext>, doing what: String) -> RedisError {
        let detail = context.pointee.err != 0 ? Self.errorText(context) : "unknown hiredis error"
        close()
        return RedisError(peer: peer, kind: .connection, detail: "\(what): \(detail)")
    }

    private func notConnected() -> RedisError {
        RedisError(peer: peer, kind: .connection, detail: "not connected")
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        var text = withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if text.isEmpty { text = "error \(context.pointee.err)" }
        // hiredis says "Resource temporarily unavailable" when a read times out.
        if context.pointee.err == REDIS_ERR_IO && text.contains("temporarily unavailable") { text += " (timed out)" }
        return text
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        func text() -> String {
            guard let start = value.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: start, count: value.len), as: UTF8.self)
        }
        switch value.type {
        case REDIS_REPLY_STRING:
            guard let start = value.str else { return .bulk([]) }
            return .bulk(Array(UnsafeRawBufferPointer(start: start, count: value.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_STATUS:
            return .status(text())
        case REDIS_REPLY_ERROR:
            return .error(text())
        case REDIS_REPLY_ARRAY:
            return .array((0..<value.elements).map { convert(value.element[$0]!) })
        default:
            preconditionFailure("hiredis reply type \(value.type) is not RESP2")
        }
    }

    private static func timeval(_ nanoseconds: Int64) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1_000))
    }

    /// Runs `body` with SIGPIPE blocked on this thread; a SIGPIPE that `body` raised is taken off the
    /// thread's pending set before the mask is restored, so it is never delivered.
    private static func withoutSIGPIPE<T>(_ body: () throws -> T) rethrows -> T {
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipe, &previous)
        var pendingBefore = sigset_t()
        sigpending(&pendingBefore)
        let wasPending = sigismember(&pendingBefore, SIGPIPE) == 1
        defer {
            var pendingAfter = sigset_t()
            sigpending(&pendingAfter)
            if !wasPending && sigismember(&pendingAfter, SIGPIPE) == 1 {
                var immediately = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipe, nil, &immediately)
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        return try body()
    }
}
