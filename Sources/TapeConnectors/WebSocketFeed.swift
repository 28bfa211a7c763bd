import Foundation
import Logging
import NIOCore
import NIOSSL
import HummingbirdWSClient
import Synchronization
import TapeCore
import TapeLive

/// What differs between WebSocket vendors: the URL, what to send after connecting (auth, subscribe),
/// and which inbound messages drive that handshake. Everything else — reconnects, backoff, the read
/// timeout, handing messages to the inbox — is `WebSocketFeed`'s.
public protocol WebSocketVendor: Sendable {
    /// The full URL to connect to (credentials in it are never logged: see `peer`).
    func url(base: String) -> String
    /// Messages to send right after the connection opens.
    func openingMessages() -> [String]
    /// Looks at an inbound message while the handshake is not complete (`handshakeDone` false):
    /// messages to send now, and whether the handshake is complete or failed for good.
    func inspect(_ message: UnsafeRawBufferPointer) -> HandshakeStep
    /// True if the vendor needs a handshake after the opening messages (Polygon: auth then subscribe).
    var needsHandshake: Bool { get }
}

public enum HandshakeStep: Sendable, Equatable {
    case waiting
    case send([String])
    case done(send: [String])
    /// Bad credentials or a refused subscription: no reconnect helps. The text names what the peer said.
    case fatal(String)
}

/// Connection settings shared by the WebSocket connectors.
public struct WebSocketSettings: Sendable {
    /// No message within this long: the connection is silent, closed and reconnected.
    public var readTimeoutNanos: Int64 = 10_000_000_000
    /// Ping period (the vendor must answer; Binance and Polygon do).
    public var pingPeriodNanos: Int64 = 5_000_000_000
    /// The largest message accepted (bytes).
    public var maxMessageBytes: Int = 4 << 20
    /// 250 ms doubling to 30 s, jittered (`Backoff`, shared with the REST pollers).
    public var backoff = Backoff(initialNanoseconds: 250_000_000, maxNanoseconds: 30_000_000_000,
                                 seed: 0x9E37_79B9)
    public init() {}
}

/// A WebSocket market-data connector (Hummingbird's WebSocket client; TLS for `wss://`).
public struct WebSocketFeed<Vendor: WebSocketVendor>: FeedConnector {
    public let spec: FeedSpec
    public let vendor: Vendor
    public let baseURL: String
    public let settings: WebSocketSettings

    public init(spec: FeedSpec, vendor: Vendor, baseURL: String, settings: WebSocketSettings = WebSocketSettings()) {
        self.spec = spec
        self.vendor = vendor
        self.baseURL = baseURL
        self.settings = settings
    }

    /// scheme://host[:port] of the base URL: what messages name (no path, no query, no key).
    public var peer: String { Self.redacted(baseURL) }

    static func redacted(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return "<url>" }
        let port = components.port.map { ":\($0)" } ?? ""
        return "\(components.scheme ?? "ws")://\(host)\(port)"
    }

    public func run(feedIndex: Int, inbox: Inbox, report: ConnectorReport) async {
        var backoff = settings.backoff
        let logger = Logger(label: "tape.feed.\(spec.name)")
        while !Task.isCancelled {
            report.state(feedIndex, spec.name, peer: peer, "connecting")
            let outcome = ConnectionOutcome()
            do {
                var configuration = WebSocketClientConfiguration()
                configuration.maxFrameSize = settings.maxMessageBytes
                configuration.autoPing = .enabled(timePeriod: .nanoseconds(settings.pingPeriodNanos))
                configuration.validateUTF8 = false
                let url = vendor.url(base: baseURL)
                let tls: TLSConfiguration? = url.hasPrefix("wss://") ? TLSConfiguration.makeClientConfiguration() : nil
                let close = try await WebSocketClient.connect(url: url, configuration: configuration,
                                                              tlsConfiguration: tls, logger: logger) {
                    inbound, outbound, _ in
                    try await session(inbound: inbound, outbound: outbound, feedIndex: feedIndex, inbox: inbox,
                                      report: report, outcome: outcome)
                }
                if let fatal = outcome.fatal {
                    report.fail(ConnectorReport.Fatal(feed: spec.name, peer: peer, detail: fatal))
                    return
                }
                let reason = close.map { "closed by peer (\($0.closeCode)\($0.reason.map { ": " + $0 } ?? ""))" }
                let text = outcome.timedOut ? "silent: read timeout" : reason ?? "closed"
                // Closed because the session is stopping: a state, not a fault.
                if Task.isCancelled {
                    report.state(feedIndex, spec.name, peer: peer, text)
                } else {
                    report.disconnected(feedIndex, spec.name, peer: peer, text)
                }
            } catch is CancellationError {
                break
            } catch {
                if let fatal = outcome.fatal {
                    report.fail(ConnectorReport.Fatal(feed: spec.name, peer: peer, detail: fatal))
                    return
                }
                report.error(feedIndex)
                let text = "error: \(Self.scrub("\(error)", baseURL: baseURL))"
                if Task.isCancelled {
                    report.state(feedIndex, spec.name, peer: peer, text)
                } else {
                    report.disconnected(feedIndex, spec.name, peer: peer, text)
                }
            }
            if Task.isCancelled { break }
            if outcome.receivedAny { backoff.reset() }
            let wait = backoff.nextDelay()
            report.state(feedIndex, spec.name, peer: peer,
                         "reconnecting in \(Numbers.format(Double(wait / 1_000_000))) ms (attempt \(backoff.attempt))")
            do { try await Task.sleep(nanoseconds: UInt64(wait)) } catch { break }
        }
        report.state(feedIndex, spec.name, peer: peer, "stopped")
    }

    /// One connection: handshake, then every message to the inbox; a watchdog closes a silent one.
    private func session(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, feedIndex: Int,
                         inbox: Inbox, report: ConnectorReport, outcome: ConnectionOutcome) async throws {
        report.connected(feedIndex)
        report.state(feedIndex, spec.name, peer: peer, "connected")
        for message in vendor.openingMessages() { try await outbound.write(.text(message)) }
        var handshakeDone = !vendor.needsHandshake
        if handshakeDone { report.state(feedIndex, spec.name, peer: peer, "subscribed") }
        outcome.lastMessage.store(WallTime.nanos(), ordering: .relaxed)
        let timeout = settings.readTimeoutNanos
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // The watchdog: a connection with no message within the read timeout is closed.
                while !Task.isCancelled {
                    try await Task.sleep(nanoseconds: UInt64(max(timeout / 4, 1_000_000)))
                    if WallTime.nanos() - outcome.lastMessage.load(ordering: .relaxed) > timeout {
                        outcome.markTimedOut()
                        report.error(feedIndex, timeout: true)
                        try? await outbound.close(.goingAway, reason: "read timeout")
                        return
                    }
                }
            }
            var assembled: [UInt8] = []
            assembled.reserveCapacity(1 << 16)
            var iterator = inbound.makeAsyncIterator()
            while let frame = try await iterator.next() {
                outcome.lastMessage.store(WallTime.nanos(), ordering: .relaxed)
                outcome.markReceived()
                var data = frame.data
                let complete: Bool
                switch frame.opcode {
                case .text, .binary:
                    if frame.fin {
                        complete = true
                    } else {
                        assembled.removeAll(keepingCapacity: true)
                        data.withUnsafeReadableBytes { assembled.append(contentsOf: $0) }
                        continue
                    }
                case .continuation:
                    data.withUnsafeReadableBytes { assembled.append(contentsOf: $0) }
                    guard frame.fin else { continue }
                    data = ByteBuffer(bytes: assembled)
                    complete = true
                default:
                    continue
                }
                guard complete else { continue }
                var step = HandshakeStep.waiting
                data.withUnsafeReadableBytes { bytes in
                    inbox.push(feed: feedIndex, message: bytes)
                    if !handshakeDone { step = vendor.inspect(bytes) }
                }
                switch step {
                case .waiting: break
                case .send(let messages):
                    for message in messages { try await outbound.write(.text(message)) }
                case .done(let messages):
                    for message in messages { try await outbound.write(.text(message)) }
                    handshakeDone = true
                    report.state(feedIndex, spec.name, peer: peer, "subscribed")
                case .fatal(let detail):
                    outcome.setFatal(detail)
                    try? await outbound.close(.normalClosure, reason: nil)
                    group.cancelAll()
                    return
                }
            }
            group.cancelAll()
        }
    }

    /// An error text with the base URL's query (where keys live) removed.
    static func scrub(_ text: String, baseURL: String) -> String {
        var result = text
        for marker in ["apiKey=", "apikey=", "token=", "key="] {
            while let range = result.range(of: marker) {
                let end = result[range.upperBound...].firstIndex(where: { "&\" )".contains($0) }) ?? result.endIndex
                result.replaceSubrange(range.lowerBound..<end, with: "<redacted>")
            }
        }
        return result
    }
}

/// What one connection ended with (shared with its watchdog).
final class ConnectionOutcome: Sendable {
    let lastMessage = Atomic<Int64>(0)
    private let flags = Atomic<Int>(0)
    private let fatalText = Mutex<String?>(nil)

    func markReceived() { if flags.load(ordering: .relaxed) & 1 == 0 { flags.bitwiseOr(1, ordering: .relaxed) } }
    func markTimedOut() { flags.bitwiseOr(2, ordering: .relaxed) }
    func setFatal(_ text: String) { fatalText.withLock { $0 = text } }
    var receivedAny: Bool { flags.load(ordering: .relaxed) & 1 != 0 }
    var timedOut: Bool { flags.load(ordering: .relaxed) & 2 != 0 }
    var fatal: String? { fatalText.withLock { $0 } }
}

/// Wall time for the connectors' timeouts (never stream time).
enum WallTime {
    static func nanos() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
