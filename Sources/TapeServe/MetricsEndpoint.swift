import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import TapeMetrics
import TapeLogging
import TapeCore

/// `--metrics-listen HOST:PORT` of `tape live`, `tape ingest` and `tape work`: `/metrics` (Prometheus text
/// of the pipeline's `MetricPoint`s, through `PipelineMetricsExporter`), `/health` (200 while the process
/// runs) and `/ready` (200 when every required dependency of `readiness` is up, else 503; JSON of each
/// dependency's state, the shape of `tape serve`'s), on a small HTTP server of its own event loop. The
/// pipeline only feeds the `MetricsBoard` (a merge per sample); a scrape renders on the server's side, so a
/// slow or frequent scraper never blocks the pipeline.
///
/// ```swift
/// let board = MetricsBoard()
/// let endpoint = try MetricsEndpoint.start(listen: "127.0.0.1:9464", board: board, readiness: readiness)
/// // … run with MetricsSink(writer: nil, consumers: [board], …) …
/// endpoint.stop()
/// ```
public final class MetricsEndpoint: Sendable {
    /// `host:port` bound (the port chosen when 0 was asked).
    public let address: String
    private let group: ServiceGroup
    private let finished: DispatchSemaphore

    /// `host:port` → (host, port); nil when malformed.
    public static func parse(listen: String) -> (String, Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65_535).contains(port) else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Binds and starts serving; returns once bound, or throws when the address is malformed or cannot be bound.
    public static func start(listen: String, board: MetricsBoard, readiness: Readiness = Readiness(),
                             registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry())
        throws -> MetricsEndpoint {
        guard let (host, port) = parse(listen: listen) else {
            throw StartError(description: "--metrics-listen '\(listen)': expected HOST:PORT")
        }
        let exporter = PipelineMetricsExporter(board: board, registry: registry)
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: exporter.render())))
        }
        router.get("/health") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        router.get("/ready") { _, _ in
            let (ready, body) = readiness.report()
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: body.renderCompact())))
        }
        var logger = Logger(label: "tape.metrics-listen")
        logger.logLevel = .warning
        let bound = BoundAddress()
        let started = DispatchSemaphore(value: 0)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "tape"),
            onServerRunning: { channel in
                bound.set("\(host):\(channel.localAddress?.port ?? 0)")
                started.signal()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let finished = DispatchSemaphore(value: 0)
        Task {
            do { try await group.run() } catch { bound.fail("\(error)") }
            started.signal()
            finished.signal()
        }
        started.wait()
        guard let address = bound.address else {
            finished.wait()
            throw StartError(description: "--metrics-listen \(listen): \(bound.failure ?? "did not start")")
        }
        return MetricsEndpoint(address: address, group: group, finished: finished)
    }

    private init(address: String, group: ServiceGroup, finished: DispatchSemaphore) {
        self.address = address
        self.group = group
        self.finished = finished
    }

    /// Stops the server (waits at most 5 s for it).
    public func stop() {
        let group = self.group
        Task { await group.triggerGracefulShutdown() }
        _ = finished.wait(timeout: .now() + 5)
    }
}

private final class BoundAddress: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?
    private var error: String?

    func set(_ address: String) {
        lock.lock()
        stored = address
        lock.unlock()
    }

    func fail(_ message: String) {
        lock.lock()
        error = message
        lock.unlock()
    }

    var address: String? {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    var failure: String? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}
