import Foundation
import TapeHTTP
import TapeTestSupport
import TapeLogging
import XCTest

/// The InfluxDB 1.x that `make services` starts (scripts/services.sh, port from config/services.env),
/// spoken to with Tape's own HTTP client. Each test writes to a database of its own and drops it.
enum InfluxServer {
    static let port = Int(ProcessInfo.processInfo.environment["TAPE_INFLUX_PORT"] ?? "") ?? 58086
    static var baseURL: String { "http://127.0.0.1:\(port)" }

    /// One series of a query's answer (`epoch=ns`: times are integers).
    struct Series {
        var name: String
        var tags: [String: String]
        var columns: [String]
        var values: [[Any]]

        /// The values of one column, as numbers (nil where the column is absent or null).
        func numbers(_ column: String) -> [Double?] {
            guard let index = columns.firstIndex(of: column) else { return [] }
            return values.map { ($0[index] as? NSNumber)?.doubleValue }
        }
    }

    /// Goes on when the server answers `/ping` with 204; otherwise skips locally and fails under CI=true.
    static func require() throws {
        let client = try HTTPClient(timeoutMilliseconds: 2_000)
        let status: Int
        do { status = try client.get(baseURL + "/ping").status } catch {
            try skipOrFail(missing: "InfluxDB of `make services` at \(baseURL) (scripts/services.sh start): \(error)")
        }
        if status != 204 { try skipOrFail(missing: "InfluxDB at \(baseURL): /ping answered HTTP \(status)") }
    }

    /// A database name for one test.
    static func freshDatabase(_ label: String) -> String {
        "tape_test_\(label)_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
    }

    static func drop(_ database: String) {
        do { try statement("DROP DATABASE \"\(database)\"", database: nil) } catch {
            print("note: could not drop the test database \(database): \(error)")
        }
    }

    /// Runs an InfluxQL statement (`POST /query`, `epoch=ns`) and returns the series of its first result.
    @discardableResult
    static func statement(_ text: String, database: String?) throws -> [Series] {
        var form = "q=\(encoded(text))&epoch=ns"
        if let database { form += "&db=\(encoded(database))" }
        let client = try HTTPClient(timeoutMilliseconds: 10_000)
        let response = try client.post(baseURL + "/query", body: Array(form.utf8),
                                       headers: ["Content-Type: application/x-www-form-urlencoded"])
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200,
              let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let results = json["results"] as? [[String: Any]], let first = results.first else {
            throw QueryFailed(description: "\(text) (HTTP \(response.status))")
        }
        if let error = first["error"] as? String { throw QueryFailed(description: error) }
        let series = first["series"] as? [[String: Any]] ?? []
        return series.map {
            Series(name: $0["name"] as? String ?? "", tags: $0["tags"] as? [String: String] ?? [:],
                   columns: $0["columns"] as? [String] ?? [], values: $0["values"] as? [[Any]] ?? [])
        }
    }

    /// `SELECT <aggregate> FROM <measurement> GROUP BY <tag>` as tag value → number.
    static func grouped(_ aggregate: String, from measurement: String, by tag: String,
                        database: String) throws -> [String: Double] {
        let series = try statement("SELECT \(aggregate) FROM \"\(measurement)\" GROUP BY \"\(tag)\"",
                                   database: database)
        var answer: [String: Double] = [:]
        for one in series {
            guard let key = one.tags[tag], let value = one.values.first.flatMap({ $0.last as? NSNumber }) else {
                continue
            }
            answer[key] = value.doubleValue
        }
        return answer
    }

    struct QueryFailed: Error, CustomStringConvertible { var description: String }

    private static func encoded(_ text: String) -> String {
        let unreserved = CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: unreserved)!
    }
}

/// A port on loopback that nothing listens on: bound to find a free one, then closed.
func closedLoopbackPort() -> Int {
    let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(socketDescriptor >= 0, "socket()")
    defer { close(socketDescriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
            bind(socketDescriptor, pointer, length) == 0 && getsockname(socketDescriptor, pointer, &length) == 0
        }
    }
    precondition(bound, "bind() to a free loopback port")
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Log lines collected from a writer's logger or a run's printer (any thread).
final class CollectedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
    var printer: @Sendable (String) -> Void { { [self] in self.append($0) } }
    /// A logger whose text lines (the lines the process would print) are collected here.
    var logger: Logger { TapeLogging.logger(label: "tape.test") { [self] in self.append($0) } }
}

/// Polls `condition` every 10 ms until it holds or `seconds` have passed.
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { return false }
        usleep(10_000)
    }
    return true
}
