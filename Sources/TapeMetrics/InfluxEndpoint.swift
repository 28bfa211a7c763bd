import Foundation
import TapeHTTP

/// A metrics URL that cannot be used (names the problem, never the password).
public struct InfluxURLError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Where metrics go: an InfluxDB 1.x server and a database.
///
/// Accepted URLs (the port defaults to 8086, the database to `tape`):
///
///     influx://127.0.0.1:58086/tape          http, database `tape`
///     influxs://metrics.example:8086/tape    https
///     http://127.0.0.1:58086                 database `tape`
///     http://127.0.0.1:58086/?db=ops         database `ops`; https:// the same
///     influx://user:password@host:8086/tape  HTTP basic authentication (percent-encode `@`, `:`, `/`)
///
/// Credentials go in an `Authorization` header, never in a request URL; `description` and every
/// message name only `host:port` and the database.
public struct InfluxEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// `http://host:port` or `https://host:port`: no path, no credentials.
    public var baseURL: String
    /// `host:port`, for messages.
    public var host: String
    public var database: String
    public var username: String?
    public var password: String?

    public static let defaultPort = 8086
    public static let defaultDatabase = "tape"

    public init(baseURL: String, database: String = InfluxEndpoint.defaultDatabase, username: String? = nil,
                password: String? = nil) {
        precondition(!database.isEmpty, "an InfluxDB database name is not empty")
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.host = HTTPClient.host(of: self.baseURL)
        self.database = database
        self.username = username
        self.password = password
    }

    /// Parses one of the URLs above.
    public init(url: String) throws(InfluxURLError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw InfluxURLError(
                description: "metrics URL is not a URL (want influx://host:port/db or http://host:port)")
        }
        let httpScheme: String
        switch scheme {
        case "influx", "http": httpScheme = "http"
        case "influxs", "https": httpScheme = "https"
        default:
            throw InfluxURLError(description: "metrics URL scheme \(scheme): want influx, influxs, http or https")
        }
        guard let hostName = components.host, !hostName.isEmpty else {
            throw InfluxURLError(description: "metrics URL has no host")
        }
        let port = components.port ?? InfluxEndpoint.defaultPort
        guard (1...65_535).contains(port) else { throw InfluxURLError(description: "metrics URL port \(port)") }
        let path = components.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let queryDatabase = components.queryItems?.first(where: { $0.name == "db" })?.value
        var database = InfluxEndpoint.defaultDatabase
        if scheme.hasPrefix("influx") {
            guard path.count <= 1 else {
                throw InfluxURLError(description: "metrics URL path: want influx://host:port/database")
            }
            database = path.first ?? queryDatabase ?? database
        } else {
            guard path.isEmpty else {
                throw InfluxURLError(description: "metrics URL path \(components.path): want http://host:port/?db=name")
            }
            database = queryDatabase ?? database
        }
        guard !database.isEmpty, !database.contains(where: { $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
            throw InfluxURLError(description: "metrics database name is empty or holds a quote or a line break")
        }
        let bracketed = hostName.contains(":") ? "[\(hostName)]" : hostName
        self.init(baseURL: "\(httpScheme)://\(bracketed):\(port)", database: database,
                  username: components.user, password: components.password)
    }

    public var description: String { "influx \(host) (database \(database))" }

    /// `POST /write?db=…&precision=ns`.
    var writeURL: String { "\(baseURL)/write?db=\(InfluxEndpoint.percentEncoded(database))&precision=ns" }
    /// `POST /query` (the statement goes in the form body).
    var queryURL: String { "\(baseURL)/query" }

    /// Request headers every request carries: basic authentication when a user is given.
    var authorizationHeaders: [String] {
        guard let username else { return [] }
        let credentials = Data("\(username):\(password ?? "")".utf8).base64EncodedString()
        return ["Authorization: Basic \(credentials)"]
    }

    /// The form body of `CREATE DATABASE "<database>"` (idempotent on InfluxDB 1.x).
    var createDatabaseForm: [UInt8] {
        let statement = "CREATE DATABASE \"\(database)\""
        return Array("q=\(InfluxEndpoint.percentEncoded(statement))".utf8)
    }

    /// RFC 3986 unreserved characters (ASCII only): everything else is percent-encoded.
    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}
