import Hummingbird
import NIOCore
import TapeCore

/// An error answered as RFC 9457 `application/problem+json`: `type`, `title`, `status`, `detail`.
///
/// ```swift
/// throw Problem.notFound("unknown symbol 'spot:NOPE'")
/// // 404 {"type":"urn:tape:problem:not-found","title":"Not Found","status":404,
/// //      "detail":"unknown symbol 'spot:NOPE'"}
/// ```
///
/// Every error of the API is one (the outer responder turns any other error into a 500 problem), so a
/// client reads one shape. `type` is a stable URI per kind of problem (docs/serving.md lists them); it
/// names the kind, it is not fetched. `retryAfterSeconds` becomes a `Retry-After` header (429, 503).
public struct Problem: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let kind: String
    public let title: String
    public let detail: String
    public var retryAfterSeconds: Int?

    /// The base of every `type` URI.
    public static let typeBase = "urn:tape:problem:"

    public init(status: HTTPResponse.Status, kind: String, title: String, detail: String,
                retryAfterSeconds: Int? = nil) {
        precondition(!kind.isEmpty && status.code >= 400, "a problem is an error status with a kind")
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status.code) \(title): \(detail)" }

    public static func badRequest(_ detail: String) -> Problem {
        Problem(status: .badRequest, kind: "bad-request", title: "Bad Request", detail: detail)
    }
    public static func notFound(_ detail: String) -> Problem {
        Problem(status: .notFound, kind: "not-found", title: "Not Found", detail: detail)
    }
    public static func unauthorized(_ detail: String) -> Problem {
        Problem(status: .unauthorized, kind: "unauthorized", title: "Unauthorized", detail: detail)
    }
    public static func forbidden(_ detail: String) -> Problem {
        Problem(status: .forbidden, kind: "forbidden", title: "Forbidden", detail: detail)
    }
    public static func tooManyRequests(_ detail: String, retryAfterSeconds: Int) -> Problem {
        Problem(status: .tooManyRequests, kind: "rate-limited", title: "Too Many Requests", detail: detail,
                retryAfterSeconds: retryAfterSeconds)
    }
    public static func unavailable(_ detail: String) -> Problem {
        Problem(status: .serviceUnavailable, kind: "unavailable", title: "Service Unavailable", detail: detail,
                retryAfterSeconds: 1)
    }
    public static func methodNotAllowed(_ detail: String) -> Problem {
        Problem(status: .methodNotAllowed, kind: "method-not-allowed", title: "Method Not Allowed", detail: detail)
    }
    public static func internalError(_ detail: String) -> Problem {
        Problem(status: .internalServerError, kind: "internal", title: "Internal Server Error", detail: detail)
    }

    /// The problem for any error a handler threw: itself, Hummingbird's own errors by status (a path
    /// that matches no route is 404), anything else a 500 naming the error.
    public static func from(_ error: any Error) -> Problem {
        if let problem = error as? Problem { return problem }
        if let http = error as? HTTPError {
            switch http.status {
            case .notFound: return .notFound(http.body ?? "no such resource")
            case .methodNotAllowed: return .methodNotAllowed(http.body ?? "method not allowed here")
            case .badRequest: return .badRequest(http.body ?? "bad request")
            default:
                return Problem(status: http.status, kind: "http-\(http.status.code)", title: http.status.reasonPhrase,
                               detail: http.body ?? http.status.reasonPhrase)
            }
        }
        return .internalError("\(error)")
    }

    /// The `application/problem+json` body.
    public var json: JSONValue {
        .object([("type", .string(Problem.typeBase + kind)), ("title", .string(title)),
                 ("status", .int(Int64(status.code))), ("detail", .string(detail))])
    }

    public func response() -> Response {
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if status == .unauthorized { headers[.wwwAuthenticate] = "APIKey header=\"X-API-Key\"" }
        return Response(status: status, headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(string: json.renderCompact())))
    }
}
