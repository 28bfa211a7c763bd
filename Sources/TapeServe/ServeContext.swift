import Foundation
import Hummingbird
import Logging
import NIOCore
import TapeCore

/// The request context of `tape serve`: Hummingbird's core storage, the client's IP (rate limits) and a
/// box the router fills with the matched route (the outer responder labels its metrics with it).
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address, `unknown` when the channel does not say.
    public let clientAddress: String
    /// The matched route, as in the OpenAPI spec; set by `RouteRecorder`, read after the response.
    public let matched: MatchedRoute

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
        matched = MatchedRoute()
    }
}

/// The route a request matched (nil: none). One per request, written once by the router's middleware on
/// the request's task and read by the same task after the response: no lock needed.
public final class MatchedRoute: @unchecked Sendable {
    public var path: String?
    init() {}
}

/// Router middleware: records `context.endpointPath` (the route as registered, `/api/v1/bars/{symbol}`) for
/// the metrics, then checks access (API keys, rate limits). Hummingbird also runs it in front of its
/// not-found responder (path or method unknown; `endpointPath` nil), so a flood of unknown paths under
/// `/api/v1` is rate-limited too, and a method no route serves needs a key like any write (401 without one,
/// 404 with one).
struct RouteGate: RouterMiddleware {
    typealias Context = ServeContext
    let access: AccessControl

    func handle(_ request: Request, context: ServeContext,
                next: (Request, ServeContext) async throws -> Response) async throws -> Response {
        context.matched.path = context.endpointPath
        try access.check(request, clientAddress: context.clientAddress)
        return try await next(request, context)
    }
}

/// The outermost responder: every error as problem+json, and the request counted and timed by route, method
/// and status.
struct ServeResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == ServeContext {
    let inner: Inner
    let metrics: ServeMetrics

    func respond(to request: Request, context: ServeContext) async throws -> Response {
        let started = Stores.monotonicNanoseconds()
        var response: Response
        do {
            response = try await inner.respond(to: request, context: context)
            if context.matched.path == nil && response.status == .notFound {
                // The router's own answer for a path no route serves: the same problem shape as every error.
                response = Problem.notFound("no route serves \(request.method) \(request.uri.path)").response()
            }
        } catch {
            let problem = Problem.from(error)
            if problem.status == .internalServerError {
                context.logger.error("\(request.method) \(request.uri.path): \(error)")
            }
            response = problem.response()
        }
        metrics.request(route: context.matched.path ?? "unmatched", method: request.method.rawValue,
                        status: Int(response.status.code), nanoseconds: Stores.monotonicNanoseconds() - started)
        return response
    }
}

/// Who may call what, and how often (config/serve.yaml; docs/serving.md):
/// - `/api/v1/admin/…` and every method but GET/HEAD under `/api/v1`: a key with the `admin` scope (none or a
///   wrong one: 401; a read-only key: 403);
/// - other `/api/v1` reads: open, or a key when `auth.read: key`; a wrong key is 401 even where reads are open;
/// - rate limits on `/api/v1` only (monitoring — `/health`, `/ready`, `/metrics` — and the docs are not
///   limited): a request with a valid key takes a token of its key's bucket, any other one of its IP's.
public struct AccessControl: Sendable {
    public static let keyHeader = HTTPFields.Element.Name("X-API-Key")!
    public let config: ServeConfig
    let keysByHash: [String: ServeConfig.APIKey]
    let perKey: RateLimiter
    let perIP: RateLimiter

    public init(config: ServeConfig) {
        self.config = config
        keysByHash = Dictionary(config.keys.map { ($0.sha256, $0) }, uniquingKeysWith: { first, _ in first })
        perKey = RateLimiter(limit: config.perKey)
        perIP = RateLimiter(limit: config.perIP)
    }

    public func check(_ request: Request, clientAddress: String) throws {
        let path = request.uri.path
        guard path == "/api/v1" || path.hasPrefix("/api/v1/") else { return }
        let isWrite = path.hasPrefix("/api/v1/admin/") || !(request.method == .get || request.method == .head)
        try check(presented: request.headers[Self.keyHeader], isWrite: isWrite, clientAddress: clientAddress)
    }

    /// A read outside `/api/v1` under the same keys and limits: the WebSocket upgrade at `/ws`.
    public func checkRead(presented: String?, clientAddress: String) throws {
        try check(presented: presented, isWrite: false, clientAddress: clientAddress)
    }

    private func check(presented: String?, isWrite: Bool, clientAddress: String) throws {
        let key = presented.flatMap { keysByHash[ServeConfig.hash(key: $0)] }
        if presented != nil && key == nil { throw Problem.unauthorized("the X-API-Key given is not a known key") }
        if isWrite {
            guard let key else {
                throw Problem.unauthorized("this endpoint needs an API key with the admin scope (X-API-Key)")
            }
            guard key.admin else { throw Problem.forbidden("the key '\(key.name)' may read only (no admin scope)") }
        } else if config.read == .key && key == nil {
            throw Problem.unauthorized("reads need an API key here (X-API-Key)")
        }
        let now = Stores.monotonicNanoseconds()
        if let key {
            if let wait = perKey.take("key:" + key.name, now: now) {
                throw Problem.tooManyRequests("the key '\(key.name)' is over its rate limit "
                                              + "(\(Numbers.format(config.perKey.ratePerSecond))/s, burst "
                                              + "\(Numbers.format(config.perKey.burst)))", retryAfterSeconds: wait)
            }
        } else if let wait = perIP.take(clientAddress, now: now) {
            throw Problem.tooManyRequests("\(clientAddress) is over its rate limit "
                                          + "(\(Numbers.format(config.perIP.ratePerSecond))/s, burst "
                                          + "\(Numbers.format(config.perIP.burst)))", retryAfterSeconds: wait)
        }
    }
}
