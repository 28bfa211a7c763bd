/// Shared by every test target (one copy, not one per target).
import Foundation
import XCTest

/// Something a test needs is missing here: the real data (../shared/data), a Python module, chromium
/// or the built `tape` binary.
public struct MissingRequirement: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Whether this is a CI run (`CI=true`): there, a missing requirement fails the test.
public var runningUnderCI: Bool {
    let value = ProcessInfo.processInfo.environment["CI"]?.lowercased()
    return value == "true" || value == "1"
}

/// Goes on when `available`; otherwise skips the test locally and fails it under CI (`CI=true`), so
/// that a CI run never passes by skipping what it was meant to check.
public func requireOrSkip(_ available: Bool, _ missing: @autoclosure () -> String) throws {
    if available { return }
    try skipOrFail(missing: missing())
}

/// Skips the test locally, fails it under CI: `what` is missing.
public func skipOrFail(missing what: String) throws -> Never {
    if runningUnderCI { throw MissingRequirement(description: "required under CI=true: \(what)") }
    throw XCTSkip(what)
}

/// The folder holding Package.swift, found upwards from `file` (a test's own `#filePath`).
public func packageRoot(containing file: String = #filePath) -> URL {
    var directory = URL(fileURLWithPath: file).deletingLastPathComponent()
    while directory.path != "/" {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            return directory
        }
        directory = directory.deletingLastPathComponent()
    }
    fatalError("no Package.swift above \(file)")
}
