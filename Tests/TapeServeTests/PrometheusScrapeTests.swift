import Foundation
import TapeTestSupport
import XCTest

/// Debian's Prometheus with the shipped config (config/prometheus.yml and its rules; only the serve target's
/// address and the intervals changed for the test) scrapes a running `tape serve`: the target is up, Tape's
/// series are in Prometheus, and the alerting rules are loaded.
extension ServeTests {
    func testPrometheusScrapesServeWithTheShippedConfig() throws {
        let prometheus = "/usr/bin/prometheus"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: prometheus),
                          "Debian's prometheus at \(prometheus) (scripts/setup.sh installs it)")
        let url = try freshDatabase("prometheus")
        let (pid, base) = try startServe(["--store", url], label: "prometheus")
        let address = String(base.dropFirst("http://".count))
        _ = try request(base + "/api/v1/symbols")   // a request to count
        let folder = temporaryFolder("prometheus")
        let config = packageRoot().appendingPathComponent("config")
        var yaml = try String(contentsOf: config.appendingPathComponent("prometheus.yml"), encoding: .utf8)
        XCTAssertTrue(yaml.contains("\"127.0.0.1:8000\""), "the shipped config scrapes tape serve's default address")
        yaml = yaml.replacingOccurrences(of: "\"127.0.0.1:8000\"", with: "\"\(address)\"")
            .replacingOccurrences(of: "scrape_interval: 15s", with: "scrape_interval: 1s")
            .replacingOccurrences(of: "evaluation_interval: 15s", with: "evaluation_interval: 1s")
        try yaml.write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: config.appendingPathComponent("prometheus-rules.yml").path,
                                         toPath: folder + "/prometheus-rules.yml")
        let port = try freePort()
        guard let server = spawnInBackground([prometheus, "--config.file=\(folder)/prometheus.yml",
                                              "--storage.tsdb.path=\(folder)/data",
                                              "--web.listen-address=127.0.0.1:\(port)"],
                                             stdout: folder + "/prometheus.log", stderr: folder + "/prometheus.log")
        else { return XCTFail("cannot start prometheus") }
        defer { kill(server, SIGTERM); _ = waitForExit(server, seconds: 10) }
        let api = "http://127.0.0.1:\(port)/api/v1"
        func query(_ expression: String) -> [[String: Any]] {
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
            guard let reply = try? request(api + "/query?query=" + encoded), reply.status == 200,
                  let body = try? reply.json(), let data = body["data"] as? [String: Any] else { return [] }
            return data["result"] as? [[String: Any]] ?? []
        }
        let deadline = Date().addingTimeInterval(45)
        var up = false
        while !up && Date() < deadline {
            usleep(500_000)
            up = query("up{job=\"tape-serve\"}").contains { (($0["value"] as? [Any])?.last as? String) == "1" }
        }
        XCTAssertTrue(up, "Prometheus scrapes tape serve: \((try? String(contentsOfFile: folder + "/prometheus.log", encoding: .utf8)) ?? "")")
        XCTAssertFalse(query("tape_http_requests_total").isEmpty, "request counts are in Prometheus")
        XCTAssertFalse(query("tape_ws_clients").isEmpty, "the WebSocket gauge is in Prometheus")
        let rules = try request(api + "/rules").json()
        let groups = ((rules["data"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? []
        XCTAssertFalse(groups.isEmpty, "the shipped alerting rules are loaded")
        stopServe(pid)
    }

    /// A port that was free a moment ago (bound to 0, read, closed).
    func freePort() throws -> Int { freeLoopbackPort() }
}

/// Binds a TCP socket to 127.0.0.1:0 and returns the port the kernel gave (closing the socket).
private func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
