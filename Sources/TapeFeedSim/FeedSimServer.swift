import Foundation
import TapeLogging
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TapeCore

/// `tape feed-sim`: serves a recording over loopback in one vendor's protocol until SIGINT/SIGTERM (or,
/// with `exitWhenDone`, until the whole recording was served to a connected client).
///
///     let server = try FeedSimServer(configuration: configuration)   // loads the recording
///     try await server.run { address in print("listening \(address)") }
public final class FeedSimServer: Sendable {
    /// How often `--stats` is rewritten.
    public static let statsInterval = Duration.seconds(1)
    /// Largest WebSocket frame sent or received.
    public static let frameBytesMaximum = 1 << 22

    public let configuration: FeedSimConfiguration
    public let recording: SimRecording
    public let timeline: SimTimeline
    public let stats: SimStats
    private let doneSignal: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)

    /// Loads the recording and fixes the shift (the simulator's start is now).
    public init(configuration: FeedSimConfiguration) throws {
        self.configuration = configuration
        let loaded = try SimRecording.load(paths: configuration.inputs, feedProtocol: configuration.feedProtocol,
                                           symbol: configuration.symbol)
        var shift: Nanos = 0
        if configuration.shift == .now, let first = loaded.firstReceiveTime {
            let unit: Nanos = configuration.feedProtocol.servesBarsOnly ? 60_000_000_000 : 1_000_000
            let wallNow = SimStats.wallNanos()
            shift = Self.floor(wallNow - first, unit: unit)
        }
        recording = loaded.shifted(by: shift)
        timeline = SimTimeline(receiveTimes: recording.messages.map(\.receiveTime), speed: configuration.speed)
        stats = SimStats(feedProtocol: configuration.feedProtocol, speed: configuration.speed, recording: recording,
                         timeline: timeline)
        doneSignal = AsyncStream<Void>.makeStream()
    }

    static func floor(_ value: Nanos, unit: Nanos) -> Nanos {
        value >= 0 ? value / unit * unit : -((-value + unit - 1) / unit * unit)
    }

    /// Runs until a signal (SIGINT, SIGTERM) or, with `exitWhenDone`, until done; `onListening` gets
    /// `host:port` once the socket is bound. Statistics are written a last time before returning.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        var logger = Logger(label: "tape.feed-sim")
        logger.logLevel = .warning
        let router = Router()
        addRestRoutes(to: router)
        let wsConfiguration = WebSocketServerConfiguration(maxFrameSize: Self.frameBytesMaximum)
        let stopping = StopFlag()
        let environment = SessionEnvironment(
            wire: makeWire(), recording: recording, timeline: timeline, stats: stats, faults: configuration.faults,
            garble: GarbleSchedule(every: configuration.faults.garbleEvery),
            done: { [doneSignal] in doneSignal.continuation.yield() }, stopping: stopping)
        let isWebSocket = configuration.feedProtocol.isWebSocket
        let stats = self.stats
        let application = Application(
            router: router,
            server: .http1WebSocketUpgrade(configuration: .init(ws: wsConfiguration)) { request, channel, _ in
                let target = request.path ?? "/"
                let path = String(target.prefix { $0 != "?" })
                guard isWebSocket, environment.wire.serves(path: path) else { return .dontUpgrade }
                let query = Self.queryParameters(target)
                let peer = Self.peerText(channel)
                return .upgrade([:]) { inbound, outbound, _ in
                    if let maximum = environment.faults.maxConnections, stats.totals.connectionsOpen >= maximum {
                        stats.refused(peer: peer)
                        for text in environment.wire.tooManyConnections().messages {
                            try await outbound.write(.text(text))
                        }
                        return
                    }
                    let identifier = stats.opened(peer: peer, path: Self.redacted(target))
                    let session = WebSocketSession(environment: environment, channel: channel,
                                                   identifier: identifier, peer: peer)
                    let reason = await session.run(inbound: inbound, outbound: outbound, query: query)
                    stats.closed(identifier, peer: peer, reason: reason)
                }
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                 serverName: "tape-feed-sim"),
            onServerRunning: { channel in
                let address = "\(self.configuration.host):\(channel.localAddress?.port ?? 0)"
                stats.setListening(address)
                if let portFile = self.configuration.portFile {
                    try? Data("\(channel.localAddress?.port ?? 0)\n".utf8)
                        .write(to: URL(fileURLWithPath: portFile), options: .atomic)
                }
                onListening(address)
            },
            logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: application),
            .init(service: StatsWriterService(server: self), successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if configuration.exitWhenDone {
            services.append(.init(service: DoneService(signal: doneSignal.stream),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        }
        // Shut down in reverse order: the sessions stop sending first, then the server closes the connections.
        services.append(.init(service: DrainService(stopping: stopping)))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        defer { writeFinalStats() }
        try await group.run()
    }

    func writeFinalStats() {
        // A REST client polls history; only a stream has messages that go by unseen.
        if configuration.feedProtocol.isWebSocket { timeline.finishAccounting() }
        if timeline.finished { stats.setDone() }
        guard let path = configuration.statsPath else { return }
        do { try stats.write(to: path) } catch {
            SimStats.logger.error("feed-sim: cannot write --stats \(path): \(error)", metadata: ["error": "\(error)"])
        }
    }

    func makeWire() -> any WebSocketWire {
        switch configuration.feedProtocol {
        case .binance: return BinanceWire()
        case .polygon: return PolygonWire(apiKey: configuration.faults.apiKey)
        case .finage, .alphavantage, .fmp: return FinageWire(apiKey: configuration.faults.apiKey)
        }
    }

    private func addRestRoutes(to router: Router<BasicRequestContext>) {
        guard !configuration.feedProtocol.isWebSocket else { return }
        let history = BarHistory(recording: recording)
        let gate = RestGate(faults: configuration.faults)
        let timeline = self.timeline
        let stats = self.stats
        @Sendable func respond(_ answer: RestAnswer, _ verdict: RestGate.Verdict) -> Response {
            switch verdict {
            case .serve: stats.httpRequest(.served)
            case .badKey: stats.httpRequest(.authFailed)
            case .injected429: stats.httpRequest(.tooManyRequests)
            case .dailyLimit, .minuteLimit: stats.httpRequest(answer.status == 429 ? .tooManyRequests : .throttled)
            }
            return Response(status: .init(code: answer.status), headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        @Sendable func query(_ request: Request) -> [String: String] {
            Self.queryParameters(request.uri.description)
        }
        switch configuration.feedProtocol {
        case .alphavantage:
            let alphaVantage = AlphaVantageREST(history: history, faults: configuration.faults)
            router.get("/query") { request, _ -> Response in
                let parameters = query(request)
                let verdict = gate.check(apiKey: parameters["apikey"])
                return respond(alphaVantage.answer(query: parameters, verdict: verdict, now: timeline.restNow()),
                               verdict)
            }
        case .fmp:
            let fmp = FinancialModelingPrepREST(history: history)
            @Sendable func handle(_ endpoint: FinancialModelingPrepREST.Endpoint, _ symbol: String?,
                                  _ parameters: [String: String]) -> Response {
                let verdict = gate.check(apiKey: parameters["apikey"])
                return respond(fmp.answer(endpoint: endpoint, symbol: symbol ?? "", query: parameters,
                                          verdict: verdict, now: timeline.restNow()), verdict)
            }
            router.get("/api/v3/quote/:symbol") { request, context -> Response in
                handle(.quote(stable: false), context.parameters.get("symbol"), query(request))
            }
            router.get("/api/v3/historical-chart/1min/:symbol") { request, context -> Response in
                handle(.chart, context.parameters.get("symbol"), query(request))
            }
            router.get("/stable/quote") { request, _ -> Response in
                let parameters = query(request)
                return handle(.quote(stable: true), parameters["symbol"], parameters)
            }
            router.get("/stable/historical-chart/1min") { request, _ -> Response in
                let parameters = query(request)
                return handle(.chart, parameters["symbol"], parameters)
            }
        case .binance, .polygon, .finage:
            break
        }
    }

    /// `a=1&b=2` of a request target, percent-decoded.
    static func queryParameters(_ target: String) -> [String: String] {
        guard let mark = target.firstIndex(of: "?") else { return [:] }
        var parameters: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first else { continue }
            let value = parts.count > 1 ? String(parts[1]) : ""
            let decodedName = String(name).removingPercentEncoding ?? String(name)
            parameters[decodedName] = value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? value
        }
        return parameters
    }

    /// A request target for the log, with key-like parameters (`token`, `apikey`) hidden.
    static func redacted(_ target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let pairs = target[target.index(after: mark)...].split(separator: "&").map { pair -> String in
            let name = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return ["token", "apikey", "apiKey", "key"].contains(name) ? name + "=***" : String(pair)
        }
        return String(target[..<mark]) + "?" + pairs.joined(separator: "&")
    }

    static func peerText(_ channel: any Channel) -> String {
        guard let remote = channel.remoteAddress else { return "unknown" }
        return "\(remote.ipAddress ?? "?"):\(remote.port ?? 0)"
    }
}

extension SimTimeline {
    /// The REST protocols' now: the simulated now, or at `max` speed the end of the recording (every bar).
    func restNow() -> Nanos {
        speed == nil ? (receiveTimes.last ?? 0) : simulatedNow()
    }
}

/// Rewrites `--stats` every second until shutdown.
struct StatsWriterService: Service {
    let server: FeedSimServer

    func run() async throws {
        guard let path = server.configuration.statsPath else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if server.timeline.finished { server.stats.setDone() }
            try? server.stats.write(to: path)
            try? await Task.sleep(for: FeedSimServer.statsInterval)
        }
    }
}

/// At shutdown, before the server closes the connections: the sessions stop sending, flush what they
/// counted as served, and get a moment to hand it to the sockets.
struct DrainService: Service {
    static let drain = Duration.milliseconds(200)
    let stopping: StopFlag

    func run() async throws {
        try? await gracefulShutdown()
        stopping.set()
        try? await Task.sleep(for: Self.drain)
    }
}

/// Ends the run once the recording was served (`--exit-when-done`).
struct DoneService: Service {
    let signal: AsyncStream<Void>

    func run() async throws {
        for await _ in signal.cancelOnGracefulShutdown() { return }
    }
}
