import Foundation
import TapeKafka
import TapeTestSupport
import XCTest

/// The broker of `make services` (tansu on config/services.env's TAPE_KAFKA_PORT), the independent
/// client (scripts/kafka_client.py, confluent-kafka), and unique names so tests never share topics.
enum KafkaTestSupport {
    static let port = 59092
    static let bootstrap = "127.0.0.1:\(port)"

    static func packageRoot(_ file: String = #filePath) -> URL { TapeTestSupport.packageRoot(containing: file) }

    /// The broker's config, or the test is skipped (failed under CI=true) when nothing listens.
    static func config(clientID: String = "tape-test") throws -> KafkaConfig {
        try requireOrSkip(listening(port: port),
                          "the Kafka broker of `make services` at \(bootstrap) (scripts/services.sh start kafka)")
        return KafkaConfig(bootstrapServers: bootstrap, clientID: clientID)
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` (TapeTestSupport's `Loopback`).
    static func listening(port: Int) -> Bool { Loopback.isListening(port: port) }

    /// A loopback port nothing listens on (bound, then released).
    static func unusedPort() -> Int { Loopback.unusedPort() }

    /// A topic name of this process and test.
    static func topic(_ test: String) -> String {
        "tape-test-\(getpid())-\(test)-\(UUID().uuidString.prefix(8))"
    }

    static func createTopic(_ config: KafkaConfig, _ name: String, partitions: Int) throws {
        let admin = try KafkaAdmin(config: config)
        defer { admin.close() }
        XCTAssertEqual(try admin.createTopic(name, partitions: partitions), .created)
    }

    /// The small intervals tests use, so a group forms and re-forms in seconds.
    static func groupSettings(_ group: String) -> KafkaConsumerSettings {
        var settings = KafkaConsumerSettings(groupID: group)
        settings.sessionTimeoutMilliseconds = 6_000
        settings.maxPollIntervalMilliseconds = 6_000
        return settings
    }

    // MARK: the independent client

    /// `python3 scripts/kafka_client.py ARGUMENTS…`: its JSON lines; skipped (failed under CI) when
    /// confluent-kafka is not installed.
    static func python(_ arguments: [String]) throws -> [PythonRecord] {
        let check = try run(["python3", "-c", "import confluent_kafka"])
        try requireOrSkip(check.status == 0, "python3 with confluent-kafka (scripts/setup.sh): \(check.output)")
        let script = packageRoot().appendingPathComponent("scripts/kafka_client.py").path
        let result = try run(["python3", script] + arguments + ["--bootstrap", bootstrap])
        guard result.status == 0 else {
            throw MissingRequirement(description: "kafka_client.py \(arguments) exited \(result.status): \(result.output)")
        }
        let decoder = JSONDecoder()
        return try result.stdout.split(separator: "\n").map { line in
            try decoder.decode(PythonRecord.self, from: Data(line.utf8))
        }
    }

    /// Runs a command; its exit status, standard output, and both outputs together (for messages).
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, output: String) {
        let directory = FileManager.default.temporaryDirectory
        let stdoutFile = directory.appendingPathComponent("tape-kafka-test-\(UUID().uuidString).out")
        let stderrFile = directory.appendingPathComponent("tape-kafka-test-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: stdoutFile)
            try? FileManager.default.removeItem(at: stderrFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        process.waitUntilExit()
        let stdout = (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
        return (process.terminationStatus, stdout, stdout + stderr)
    }
}

/// One record as scripts/kafka_client.py prints it (text is latin-1, so bytes map one to one).
struct PythonRecord: Decodable, Equatable {
    var partition: Int32
    var offset: Int64
    var key: String?
    var value: String?
    var headers: [[String?]]
    var timestamp: Int64
}

/// A record as a test compares it, whoever read it.
struct Record: Hashable, CustomStringConvertible {
    var partition: Int32
    var offset: Int64
    var key: String
    var value: String
    var headers: [KafkaHeader]
    var timestampMilliseconds: Int64

    init(_ message: KafkaMessage) {
        partition = message.partition
        offset = message.offset
        key = Record.latin1(message.key)
        value = Record.latin1(message.value)
        headers = message.headers
        timestampMilliseconds = message.timestamp?.milliseconds ?? -1
    }

    init(_ record: PythonRecord) {
        partition = record.partition
        offset = record.offset
        key = record.key ?? ""
        value = record.value ?? ""
        headers = record.headers.map { pair in
            KafkaHeader(name: pair[0] ?? "", value: (pair[1] ?? "").unicodeScalars.map { UInt8($0.value) })
        }
        timestampMilliseconds = record.timestamp
    }

    static func latin1(_ bytes: UnsafeRawBufferPointer?) -> String {
        guard let bytes else { return "" }
        return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    var description: String {
        let headerText = headers.map { "\($0.name)=\(String(decoding: $0.value, as: UTF8.self))" }.joined(separator: ",")
        return "[\(partition)]@\(offset) \(key)=\(value) \(timestampMilliseconds) {\(headerText)}"
    }
}

/// Polls `consumer` until `count` records came or `seconds` passed.
func consume(_ consumer: KafkaConsumer, count: Int, seconds: Double = 20) throws -> [Record] {
    var records: [Record] = []
    let deadline = Date().addingTimeInterval(seconds)
    while records.count < count && Date() < deadline {
        if let message = try consumer.poll(timeoutMilliseconds: 100) { records.append(Record(message)) }
    }
    return records
}
