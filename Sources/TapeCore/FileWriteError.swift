#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed operation on an output file: which file, which operation, and the system's reason.
/// Writers keep the first one they meet and report it from every later call (`flush`, `close`), so a
/// full disk ends the run with this message instead of leaving a silently short file.
public struct FileWriteError: Error, Equatable, CustomStringConvertible {
    public let path: String
    /// `create`, `write`, `fsync`, `close`, `deflate`.
    public let operation: String
    /// The `errno` value, 0 when the failure did not come from the system (a zlib error).
    public let errnoCode: Int32
    public let detail: String

    public init(path: String, operation: String, errnoCode: Int32) {
        self.path = path
        self.operation = operation
        self.errnoCode = errnoCode
        self.detail = String(cString: strerror(errnoCode))
    }

    public init(path: String, operation: String, detail: String) {
        self.path = path
        self.operation = operation
        self.errnoCode = 0
        self.detail = detail
    }

    public var description: String { "\(path): \(operation) failed: \(detail)" }

    /// Runs `fsync` on `fileDescriptor`. A file that cannot be synced by its nature (a pipe, a character
    /// device such as /dev/null) is not an error: there is nothing to make durable.
    public static func fsyncFailure(_ fileDescriptor: Int32, path: String) -> FileWriteError? {
        while fsync(fileDescriptor) != 0 {
            let code = errno
            if code == EINTR { continue }
            if code == EINVAL || code == EROFS || code == ENOTSUP { return nil }
            return FileWriteError(path: path, operation: "fsync", errnoCode: code)
        }
        return nil
    }
}
