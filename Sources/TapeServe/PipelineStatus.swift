import Foundation
import TapeCore
import TapeHTTP

/// `GET /api/v1/pipeline`: the pipeline processes' health as the dashboard shows it — ticks/s, lag, latency —
/// read from their Prometheus endpoints (`tape live|ingest|work --metrics-listen`), given to `tape serve` with
/// `--pipeline-metrics URL` (repeatable). Each source is fetched on a store thread (libcurl blocks) with a
/// 1 s timeout; one that does not answer is `up: false` with the reason, never an error of the route.
struct PipelineStatus: Sendable {
    let urls: [String]

    /// The figures of one scrape: sums over feeds and partitions, the worst lag and latency.
    struct Figures: Equatable {
        var ticksTotal: Double?
        var ticksPerSecond: Double?
        var lagNanoseconds: Double?
        var latencyP50Nanoseconds: Double?
        var latencyP99Nanoseconds: Double?
        var workLag: Double?
    }

    func json(stores: Stores) async throws -> JSONValue {
        var sources: [JSONValue] = []
        for url in urls {
            let scraped: Result<String, HTTPError> = try await stores.runBlocking {
                do {
                    let response = try HTTPClient(timeoutMilliseconds: 1_000).get(url)
                    guard response.status == 200 else {
                        return .failure(HTTPError(method: "GET", host: url, message: "HTTP \(response.status)"))
                    }
                    return .success(String(decoding: response.body, as: UTF8.self))
                } catch let error as HTTPError {
                    return .failure(error)
                } catch {
                    return .failure(HTTPError(method: "GET", host: url, message: "\(error)"))
                }
            }
            switch scraped {
            case .failure(let error):
                sources.append(.object([("url", .string(url)), ("up", .bool(false)), ("error", .string(error.description))]))
            case .success(let text):
                let figures = Self.figures(text)
                func value(_ number: Double?) -> JSONValue { number.map { JSONValue.number($0) } ?? .null }
                sources.append(.object([
                    ("url", .string(url)), ("up", .bool(true)),
                    ("ticks_total", value(figures.ticksTotal)), ("ticks_per_second", value(figures.ticksPerSecond)),
                    ("lag_ns", value(figures.lagNanoseconds)), ("latency_p50_ns", value(figures.latencyP50Nanoseconds)),
                    ("latency_p99_ns", value(figures.latencyP99Nanoseconds)), ("work_lag", value(figures.workLag)),
                ]))
            }
        }
        return .object([("sources", .array(sources))])
    }

    /// Reads the bridge's names (docs/serving.md) out of Prometheus text: sums of `tape_feed_ticks_total`,
    /// `tape_feed_ticks_rate` and `tape_work_lag`, the largest `tape_pipeline_lag_ns` and
    /// `tape_latency_p50_ns`/`_p99_ns` across series.
    static func figures(_ text: String) -> Figures {
        var figures = Figures()
        func add(_ slot: inout Double?, _ value: Double) { slot = (slot ?? 0) + value }
        func most(_ slot: inout Double?, _ value: Double) { slot = max(slot ?? value, value) }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]),
                  value.isFinite else { continue }
            let series = line[..<space]
            let name = series.prefix { $0 != "{" && $0 != " " }
            switch name {
            case "tape_feed_ticks_total": add(&figures.ticksTotal, value)
            case "tape_feed_ticks_rate": add(&figures.ticksPerSecond, value)
            case "tape_pipeline_lag_ns": most(&figures.lagNanoseconds, value)
            case "tape_latency_p50_ns": most(&figures.latencyP50Nanoseconds, value)
            case "tape_latency_p99_ns": most(&figures.latencyP99Nanoseconds, value)
            case "tape_work_lag": add(&figures.workLag, value)
            default: continue
            }
        }
        return figures
    }
}
