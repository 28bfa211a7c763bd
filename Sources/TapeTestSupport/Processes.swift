import Foundation
import XCTest

/// Runs `argv` (absolute path first) with its standard streams on /dev/null and waits for it alone
/// (posix_spawn + waitpid); its exit code, or 128 + signal. Not Foundation's Process: a command that starts
/// a server leaves a daemon behind that Process would wait for.
public func spawnAndWait(_ argv: [String]) -> Int32 {
    guard let pid = spawnInBackground(argv, stdout: "/dev/null", stderr: "/dev/null") else { return -1 }
    return waitForExit(pid)
}

/// Starts `argv` (absolute path first) in the background, stdin on /dev/null and stdout/stderr appended to the
/// files given (created if missing); its pid, or nil (and a test failure) when it cannot be started.
public func spawnInBackground(_ argv: [String], stdout: String, stderr: String) -> pid_t? {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ) == 0 else {
        XCTFail("spawn \(argv[0])")
        return nil
    }
    return pid
}

/// Waits for `pid` (a child of this process): its exit code, or 128 + signal.
public func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Waits at most `seconds` for `pid` to exit: its exit code, or nil if it still runs.
public func waitForExit(_ pid: pid_t, seconds: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(seconds)
    var status: Int32 = 0
    while Date() < deadline {
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
        if result == -1 && errno != EINTR { return nil }
        usleep(20_000)
    }
    return nil
}

/// The port a helper server started with `process` (stdout on `output`) announces in its first line,
/// `PORT <n>`, read within 20 s; throws `MissingRequirement` naming `what` (and stops the process) when it
/// does not say.
public func announcedPort(_ output: Pipe, of process: Process, what: String) throws -> Int {
    var text = ""
    let deadline = Date().addingTimeInterval(20)
    while !text.contains("\n") && Date() < deadline {
        let data = output.fileHandleForReading.availableData
        if data.isEmpty { break }
        text += String(decoding: data, as: UTF8.self)
    }
    guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).prefix { $0.isNumber }) else {
        process.terminate()
        throw MissingRequirement(description: "\(what) did not start: \(text)")
    }
    return port
}
