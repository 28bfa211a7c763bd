import Foundation
import XCTest
import TapeTestSupport

/// Locations of the package and of the shared real data (../shared/data beside the package).
enum Paths {
    static let packageRoot: URL = {
        var u = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: u.appendingPathComponent("Package.swift").path) {
            u = u.deletingLastPathComponent()
        }
        return u
    }()

    static var sharedData: URL { packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data") }

    static func requireSharedData() throws -> URL {
        let d = sharedData
        try requireOrSkip(FileManager.default.fileExists(atPath: d.appendingPathComponent("binance-feed").path),
                          "real data at \(d.path)")
        return d
    }

    static func captures() throws -> [String] {
        let d = try requireSharedData().appendingPathComponent("binance-feed")
        return try FileManager.default.contentsOfDirectory(atPath: d.path).filter { $0.hasSuffix(".gz") }.sorted()
            .map { d.appendingPathComponent($0).path }
    }

    static func barFiles() throws -> [String] {
        let d = try requireSharedData().appendingPathComponent("bars")
        return try FileManager.default.contentsOfDirectory(atPath: d.path).filter { $0.hasSuffix(".gz") }.sorted()
            .map { d.appendingPathComponent($0).path }
    }

    static func tempDir(_ name: String) -> String {
        let p = NSTemporaryDirectory() + "tape-tests-\(getpid())/\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}

/// Runs a shell command, returns (exit code, stdout, stderr).
@discardableResult
func sh(_ command: String, cwd: URL = Paths.packageRoot) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", command]
    p.currentDirectoryURL = cwd
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}
