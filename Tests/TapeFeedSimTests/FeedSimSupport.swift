import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HummingbirdWSClient
import Logging
import Synchronization
import TapeTestSupport
import XCTest

/// Where the package, the built `tape` and the shared data are.
enum FeedSimPaths {
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url = url.deletingLastPathComponent()
        }
        return url
    }()

    static var sharedData: URL { packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data") }

    static func tape() throws -> String {
        let path = ProcessInfo.processInfo.environment["TAPE_BINARY"]
            ?? packageRoot.appendingPathComponent(".build/release/tape").path
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: path), "built tape at \(path)")
        return path
    }

    static func data(_ relative: String) throws -> String {
        let path = sharedData.appendingPathComponent(relative).path
        try requireOrSkip(FileManager.default.fileExists(atPath: path), "real data at \(path)")
        return path
    }

    static func temporary(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "tape-feedsim-tests-\(getpid())/\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// JSON printed by facts.py (independent of Tape's readers).
    static func facts(_ arguments: [String]) throws -> Any {
        let script = packageRoot.appendingPathComponent("Tests/TapeFeedSimTests/facts.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try requireOrSkip(process.terminationStatus == 0, "python3 to read the data independently")
        return try JSONSerialization.jsonObject(with: data)
    }
}

/// A running `tape feed-sim`, stopped with SIGTERM when the test is done.
final class FeedSimProcess {
    let process = Process()
    let port: Int
    let statsPath: String
    private let errorPipe = Pipe()

    init(_ arguments: [String]) throws {
        statsPath = FeedSimPaths.temporary("stats") + "/stats.json"
        process.executableURL = URL(fileURLWithPath: try FeedSimPaths.tape())
        process.arguments = ["feed-sim"] + arguments + ["--port", "0", "--stats", statsPath]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errorPipe
        try process.run()
        var line = Data()
        let reader = output.fileHandleForReading
        while true {
            let byte = reader.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening "), let port = text.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.terminate()
            let errors = String(decoding: errorPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw MissingRequirement(description: "feed-sim did not start: '\(text)' \(errors)")
        }
        self.port = port
    }

    var base: String { "127.0.0.1:\(port)" }

    /// Stops the simulator (SIGTERM) and returns its statistics JSON and its standard error.
    @discardableResult
    func stop() -> (stats: [String: Any], log: String) {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let log = String(decoding: errorPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let data = (try? Data(contentsOf: URL(fileURLWithPath: statsPath))) ?? Data()
        let stats = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (stats, log)
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// A value shared between tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}

/// What a WebSocket client saw on one connection.
struct Received: Sendable {
    var messages: [String] = []
    var arrivals: [ContinuousClock.Instant] = []
    var closedByServer = false
}

/// A small WebSocket client (HummingbirdWSClient): connects, sends `send`, collects text messages until
/// `stop` (given the latest message and the count so far) says so, the server closes, or `timeout` passes.
enum TestClient {
    static func collect(url: String, send: [String] = [], timeout: Duration = .seconds(60),
                        stop: @escaping @Sendable (_ latest: String, _ count: Int) -> Bool) async throws -> Received {
        let box = Locked(Received())
        let timedOut = Locked(false)
        let logger = Logger(label: "feed-sim-test")
        let work = Task {
            try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 22),
                                              logger: logger) { inbound, outbound, _ in
                for text in send { try await outbound.write(.text(text)) }
                do {
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case .text(let text) = message else { continue }
                        let finished = box.withLock { received -> Bool in
                            received.messages.append(text)
                            received.arrivals.append(.now)
                            return stop(text, received.messages.count)
                        }
                        if finished { return }
                    }
                } catch {}
                // The stream ended without the test stopping it: the server closed (unless time ran out).
                let ranOut = timedOut.withLock { $0 }
                box.withLock { $0.closedByServer = !ranOut }
            }
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            timedOut.withLock { $0 = true }
            work.cancel()
        }
        _ = try? await work.value
        timer.cancel()
        return box.withLock { $0 }
    }
}

/// Plain HTTP GET against the simulator.
func httpGet(_ url: String) async throws -> (status: Int, body: Data) {
    let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}
