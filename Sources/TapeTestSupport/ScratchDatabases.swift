import Foundation
import TapeStore

/// Empty PostgreSQL databases for tests, one per call, each dropped by `dropAll()` (a test's `tearDown`).
///
/// ```swift
/// let databases = ScratchDatabases(namePrefix: "tape_serve_test")
/// let url = try databases.fresh("ws")      // postgres://postgres@127.0.0.1:55432/tape_serve_test_<pid>_ws_0
/// databases.dropAll()
/// ```
///
/// The server is the one of `make services` (config/services.env); without it `fresh` skips, or fails
/// under CI=true (`skipOrFail`). Names carry the process id, so two test processes never share one.
public final class ScratchDatabases: @unchecked Sendable {
    /// The PostgreSQL of `make services`, without a database.
    public static let localServer = "postgres://postgres@127.0.0.1:55432"
    /// Databases one object creates at most (a runaway loop fails instead of filling the server).
    public static let databasesMax = 100

    public let server: String
    public let namePrefix: String
    private let lock = NSLock()
    private var names: [String] = []

    public init(server: String = ScratchDatabases.localServer, namePrefix: String) {
        precondition(namePrefix.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "a plain SQL name prefix")
        self.server = server
        self.namePrefix = namePrefix
    }

    /// A new empty database (dropped first if a crashed run left one of the same name); its URL.
    public func fresh(_ label: String) throws -> String {
        precondition(label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "a plain SQL name label")
        let admin: PostgresConnection
        do { admin = try PostgresConnection(url: server + "/postgres") } catch {
            try skipOrFail(missing: "PostgreSQL of `make services` at \(server): \(error)")
        }
        let name = lock.withLock { () -> String in
            precondition(names.count < Self.databasesMax, "at most \(Self.databasesMax) scratch databases")
            let name = "\(namePrefix)_\(getpid())_\(label)_\(names.count)".lowercased()
            names.append(name)
            return name
        }
        try admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        try admin.execute("CREATE DATABASE \(name)")
        return "\(server)/\(name)"
    }

    /// Drops every database `fresh` made (forcing out connections left open).
    public func dropAll() {
        let created = lock.withLock { () -> [String] in
            defer { names.removeAll() }
            return names
        }
        guard !created.isEmpty, let admin = try? PostgresConnection(url: server + "/postgres") else { return }
        for name in created { try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }
}
