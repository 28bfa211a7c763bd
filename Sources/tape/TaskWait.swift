import Dispatch
import Foundation

/// Runs `body` (a server's async `run`) on a task and blocks the calling thread — a synchronous
/// `ParsableCommand.run` — until it ends: the text of the error it threw, or nil when it ended normally.
///
/// ```swift
/// if let message = waitForTask({ try await server.run(onListening: announce) }) { fail(message, code: …) }
/// ```
func waitForTask(_ body: @escaping @Sendable () async throws -> Void) -> String? {
    let finished = DispatchSemaphore(value: 0)
    let failure = TaskFailure()
    Task {
        do { try await body() } catch { failure.set("\(error)") }
        finished.signal()
    }
    finished.wait()
    return failure.message
}

/// The task's error text, handed to the waiting thread (set once, read after the semaphore).
private final class TaskFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?

    func set(_ message: String) {
        lock.withLock { stored = message }
    }

    var message: String? { lock.withLock { stored } }
}
