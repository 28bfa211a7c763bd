import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import TapeLogging
import NIOCore
import Prometheus
import ServiceLifecycle
import TapeCore

/// The router of `tape serve`, recording every route it registers (method + path as in the OpenAPI spec),
/// so a test can hold the routes against the spec. Register with `{name}` parameters, as the spec writes
/// them (Hummingbird reads `{name}` as `:name`). Later parts (`/ws`, the dashboard at `/`) add routes here.
public final class RouteTable: @unchecked Sendable {
    public let router: Router<ServeContext>
    public private(set) var routes: [RouteKey] = []

    init(access: AccessControl) {
        router = Router(context: ServeContext.self)
        router.add(middleware: RouteGate(access: access))
    }

    public typealias Handler = @Sendable (Request, ServeContext) async throws -> Response

    func get(_ path: String, _ handler: @escaping Handler) { add(.get, path, handler) }
    func post(_ path: String, _ handler: @escaping Handler) { add(.post, path, handler) }

    private func add(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        let key = RouteKey(method: method.rawValue, path: path)
        precondition(!routes.contains(key), "one handler per route: \(key)")
        routes.append(key)
        router.on(RouterPath(path), method: method, use: handler)
    }
}

/// `tape serve`: the REST API, `/openapi.json`, Swagger UI at `/docs`, `/health`, `/ready`, `/metrics`
/// (docs/serving.md).
///
/// ```swift
/// let server = try ServeServer(settings: settings)
/// try await server.run { address in print("listening \(address)") }   // until SIGINT/SIGTERM
/// ```
public final class ServeServer: Sendable {
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 8000
        public var stores: Stores.Settings
        public var config = ServeConfig()
        /// The folder holding Swagger UI's static files (`scripts/setup.sh` puts them in `.tape/swagger-ui`).
        public var swaggerUIDirectory: String?
        /// Run folders to list (`/api/v1/run-folders`): `reports/` by default, as `tape replay --out`'s default.
        public var runsDirectory = "reports"
        /// Chart.js for the dashboard, from Debian's libjs-chart.js (no CDN).
        public var chartJSPath = "/usr/share/javascript/chart.js/chart.min.js"
        /// Messages a WebSocket client may have waiting before it is closed as too slow (code 4008).
        public var webSocketQueueCapacity = 4096
        /// The pipeline processes' Prometheus endpoints (`--metrics-listen`) read by `/api/v1/pipeline`.
        public var pipelineMetricsURLs: [String] = []
        /// A second port for `/ws` alone (nil: `/ws` on the main port only).
        public var webSocketListen: (host: String, port: Int)?
        public init(stores: Stores.Settings) { self.stores = stores }
    }

    public let settings: Settings
    public let registry: PrometheusCollectorRegistry
    public let metrics: ServeMetrics
    public let stores: Stores
    let access: AccessControl
    let swaggerUI: SwaggerUI
    let dashboard: Dashboard
    /// `/ws` (live updates through Redis pub/sub): only with a Redis store (`--redis`).
    let updates: UpdatesEndpoint?

    public init(settings: Settings, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) throws {
        self.settings = settings
        self.registry = registry
        let metrics = ServeMetrics(registry: registry)
        self.metrics = metrics
        let stores = try Stores(settings: settings.stores) { hits, misses in metrics.cache(hits: hits, misses: misses) }
        self.stores = stores
        swaggerUI = SwaggerUI(directory: settings.swaggerUIDirectory)
        dashboard = Dashboard(chartJSPath: settings.chartJSPath)
        let access = AccessControl(config: settings.config)
        self.access = access
        updates = try settings.stores.redisURL.map { url in
            try UpdatesEndpoint(stores: stores, redisURL: url, queueCapacity: settings.webSocketQueueCapacity,
                                metrics: metrics, access: access,
                                log: TapeLogging.lines(Logger(label: "tape.serve"), level: .warning,
                                                       metadata: ["store": "redis"]))
        }
    }

    /// Every route, registered on a new table (the server's own; tests read `routes`).
    public func makeRoutes() -> RouteTable {
        let table = RouteTable(access: access)
        table.get("/health") { _, _ in APIRoutes.json(.object([("status", .string("ok"))])) }
        table.get("/ready") { _, _ in try await self.ready() }
        table.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: self.registry.emitToBuffer())))
        }
        table.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPISpec.bytes)))
        }
        table.get("/") { _, _ in self.dashboard.page() }
        table.get("/assets/{asset}") { _, context in try self.dashboard.asset(context.parameters.get("asset") ?? "") }
        // Reached only when the request was not upgraded: say why (problem+json).
        registerWebSocketProblem(on: table)
        table.get("/docs") { _, _ in try self.swaggerUI.page() }
        table.get("/docs/{asset}") { _, context in try self.swaggerUI.asset(context.parameters.get("asset") ?? "") }
        var api = APIRoutes(stores: stores, runFolders: RunFolders(directory: settings.runsDirectory))
        let updates = self.updates, metrics = self.metrics
        api.memory = { updates?.liveMemory }
        api.onMemoryHits = { hits in metrics.cache(hits: hits, misses: 0) }
        api.register(on: table)
        let pipeline = PipelineStatus(urls: settings.pipelineMetricsURLs)
        table.get("/api/v1/pipeline") { _, _ in APIRoutes.json(try await pipeline.json(stores: self.stores)) }
        return table
    }

    /// Each dependency's state; 503 when one that is configured is down (a configured cache is part of the
    /// service: a load balancer should prefer an instance whose cache answers).
    func ready() async throws -> Response {
        let hasCache = stores.hasCache
        let (postgres, redis) = try await stores.run { session in
            (session.pingPostgres(), hasCache ? session.pingRedis() : nil)
        }
        func state(_ name: String, configured: Bool, failure: String?, peer: String?) -> (String, JSONValue) {
            let status = !configured ? "not_configured" : failure == nil ? "up" : "down"
            var members: [(String, JSONValue)] = [("status", .string(status)), ("required", .bool(configured))]
            if let peer { members.append(("server", .string(peer))) }
            if let failure, configured { members.append(("detail", .string(failure))) }
            return (name, .object(members))
        }
        let ready = postgres == nil && (!hasCache || redis == nil)
        var dependencies = [
            state("postgres", configured: true, failure: postgres, peer: stores.postgresPeer),
            state("redis", configured: hasCache, failure: redis, peer: stores.redisPeer),
        ]
        if let updates {
            // The updates subscription (`/ws`, the in-process latest copy): said, not required — without it
            // `/ws` clients wait for a resync and `/api/v1/latest` reads the stores.
            dependencies.append(("updates", .object([
                ("status", .string(updates.subscriber.isSubscribed ? "up" : "down")), ("required", .bool(false)),
                ("channel", .string(updates.subscriber.channel)),
            ])))
        }
        let body: JSONValue = .object([
            ("status", .string(ready ? "ready" : "not_ready")),
            ("dependencies", .object(dependencies)),
        ])
        return APIRoutes.json(body, status: ready ? .ok : .serviceUnavailable)
    }

    /// Runs until SIGINT or SIGTERM (graceful: open requests finish), then stops the store threads.
    /// `onListening` gets `host:port` once the socket is bound (port 0 picks a free one); with
    /// `settings.webSocketListen`, `onWebSocketListening` gets the WebSocket port's.
    public func run(onListening: @escaping @Sendable (String) -> Void,
                    onWebSocketListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        var logger = Logger(label: "tape.serve")
        logger.logLevel = .warning
        let table = makeRoutes()
        let responder = ServeResponder(inner: table.router.buildResponder(), metrics: metrics)
        updates?.start()
        defer { updates?.stop() }
        var services: [any Service] = [
            application(host: settings.host, port: settings.port, responder: responder, logger: logger,
                        onListening: onListening),
        ]
        if let (host, port) = settings.webSocketListen {
            // A port of its own for `/ws` (as the seed's 8001): the upgrade, `/health`, and problems for the rest.
            let wsTable = RouteTable(access: access)
            wsTable.get("/health") { _, _ in APIRoutes.json(.object([("status", .string("ok"))])) }
            registerWebSocketProblem(on: wsTable)
            let wsResponder = ServeResponder(inner: wsTable.router.buildResponder(), metrics: metrics)
            services.append(application(host: host, port: port, responder: wsResponder, logger: logger,
                                        onListening: onWebSocketListening))
        }
        let group = ServiceGroup(configuration: .init(services: services,
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await stores.shutdown()
            throw error
        }
        try await stores.shutdown()
    }

    /// An HTTP/1.1 server with the WebSocket upgrade at `/ws` (when updates are served); every other request
    /// goes to `responder`.
    private func application<Responder: HTTPResponder>(host: String, port: Int, responder: Responder, logger: Logger,
                                                       onListening: @escaping @Sendable (String) -> Void)
        -> some Service where Responder.Context == ServeContext {
        let updates = self.updates
        return Application(
            responder: responder,
            server: .http1WebSocketUpgrade(
                configuration: .init(ws: WebSocketServerConfiguration(maxFrameSize: 1 << 20))
            ) { request, channel, _ in
                let target = request.path ?? "/"
                guard let updates, target.prefix(while: { $0 != "?" }) == UpdatesEndpoint.path else { return .dontUpgrade }
                let client = channel.remoteAddress?.ipAddress ?? "unknown"
                // Refused (no key where reads need one, over the rate): the router's `/ws` answers the problem.
                if updates.refusal(target: target, headers: request.headerFields, clientAddress: client) != nil {
                    return .dontUpgrade
                }
                return .upgrade([:]) { inbound, outbound, _ in
                    await updates.serve(inbound: inbound, outbound: outbound, channel: channel)
                }
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "tape"),
            onServerRunning: { channel in onListening("\(host):\(channel.localAddress?.port ?? 0)") },
            logger: logger)
    }

    /// `GET /ws` that reached the router: the upgrade was refused or not asked for; say why.
    func registerWebSocketProblem(on table: RouteTable) {
        table.get("/ws") { request, context in
            guard let updates = self.updates else {
                throw Problem.unavailable("live updates need a Redis store: start tape serve with --redis")
            }
            if let problem = updates.refusal(target: request.uri.description, headers: request.headers,
                                             clientAddress: context.clientAddress) {
                throw problem
            }
            throw Problem.badRequest("expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        }
    }
}

/// The OpenAPI 3.1 document (`Sources/TapeServe/Resources/openapi.json`), compiled into the binary.
public enum OpenAPISpec {
    public static var bytes: [UInt8] { PackageResources.openapi_json }
}

/// Swagger UI at `/docs`: its static files (from the PyPI wheel `swagger-ui-bundle-v2`, copied by
/// `scripts/setup.sh`) read once at start into memory — nothing is read from disk on the event loop — and
/// a page of our own that points it at `/openapi.json`. Missing files: `/docs` is a 503 problem naming the
/// folder and the set-up step.
struct SwaggerUI: Sendable {
    static let assetNames = ["swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js",
                             "favicon-32x32.png", "favicon-16x16.png"]
    /// Bytes per file name, or nil when the folder lacks the bundle.
    let assets: [String: [UInt8]]?
    let directory: String?

    init(directory: String?) {
        self.directory = directory
        guard let directory else {
            assets = nil
            return
        }
        var loaded: [String: [UInt8]] = [:]
        for name in Self.assetNames {
            if let data = FileManager.default.contents(atPath: directory + "/" + name) { loaded[name] = [UInt8](data) }
        }
        assets = loaded["swagger-ui-bundle.js"] != nil && loaded["swagger-ui.css"] != nil ? loaded : nil
    }

    static let page = """
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <title>Tape API</title>
          <link rel="stylesheet" href="/docs/swagger-ui.css">
          <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
        </head>
        <body>
          <div id="swagger-ui"></div>
          <script src="/docs/swagger-ui-bundle.js"></script>
          <script>
            window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
          </script>
        </body>
        </html>

        """

    func page() throws -> Response {
        guard assets != nil else { throw missing() }
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: Self.page)))
    }

    func asset(_ name: String) throws -> Response {
        guard let assets else { throw missing() }
        guard let bytes = assets[name] else { throw Problem.notFound("no Swagger UI file '\(name)'") }
        let type = name.hasSuffix(".js") ? "text/javascript" : name.hasSuffix(".css") ? "text/css" : "image/png"
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func missing() -> Problem {
        Problem.unavailable("Swagger UI files are not in \(directory ?? "(no --swagger-ui folder)"): "
                            + "run scripts/setup.sh (it copies them from the PyPI wheel swagger-ui-bundle-v2)")
    }
}

/// The live dashboard at `/` (`Resources/dashboard.html`, compiled in) and its one asset, Chart.js from
/// Debian's libjs-chart.js, read once at start (no CDN; nothing read from disk on the event loop). Missing
/// Chart.js: `/assets/chart.min.js` is a 503 problem naming the file and the package.
struct Dashboard: Sendable {
    let chartJS: [UInt8]?
    let chartJSPath: String

    init(chartJSPath: String) {
        self.chartJSPath = chartJSPath
        chartJS = FileManager.default.contents(atPath: chartJSPath).map { [UInt8]($0) }
    }

    func page() -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: PackageResources.dashboard_html)))
    }

    func asset(_ name: String) throws -> Response {
        guard name == "chart.min.js" else { throw Problem.notFound("no dashboard asset '\(name)'") }
        guard let chartJS else {
            throw Problem.unavailable("\(chartJSPath) not found: install Debian's libjs-chart.js (scripts/setup.sh does)")
        }
        return Response(status: .ok, headers: [.contentType: "text/javascript", .cacheControl: "public, max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: chartJS)))
    }
}
