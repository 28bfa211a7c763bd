import Foundation
import TapeCore
import TapeClock
import TapeGraph
import TapeHTTP
import TapeSinks
import TapeLogging
import TapeMetrics

/// What the alerts did, per channel (a consistent snapshot at any time).
public struct AlertChannelCounters: Sendable, Equatable {
    /// Messages delivered (alerts and summaries).
    public var sent = 0
    /// Of `sent`, summaries.
    public var summariesSent = 0
    /// Alerts under this channel's threshold for their rule (or the rule is off here).
    public var belowThreshold = 0
    /// Alerts counted instead of sent: same rule and subject inside the window.
    public var deduplicated = 0
    /// Alerts held back by the rate limit (told later in a summary).
    public var suppressed = 0
    /// Messages dropped because the queue was full (the pipeline never waits).
    public var dropped = 0
    /// Messages still queued when the close wait ran out.
    public var droppedAtClose = 0
    /// Messages given up after their last attempt, or refused for good.
    public var failed = 0
    /// Attempts after the first.
    public var retries = 0
    public init() {}
}

/// Alerts to Slack and email, never in the pipeline's way (docs/alerts.md).
///
/// ```swift
/// let service = try AlertService(config: AlertConfig.load(path: "config/alerts.yaml"), log: printer)
/// service.submit(Alert(anomaly: anomaly, symbol: "spot:BTCUSDT"))   // any thread; returns at once
/// service.close()                                                   // bounded wait
/// ```
///
/// Contract:
/// - `submit` (any thread) decides under one lock, per channel, threshold → de-duplication → rate limit
///   (`ChannelPolicy`), and queues what is to be sent. It never waits on the network: when the queue
///   (`queueCapacity`, all channels) is full, the message is dropped and counted.
/// - One sender thread delivers queued messages in order, each with up to `attemptsMax` attempts for
///   5xx, 429 and connection errors, waiting a jittered exponential backoff between them (or the
///   server's `Retry-After`, capped by the backoff maximum). It also sends each channel's rate-limit
///   summary as soon as the bucket has a token.
/// - `close` stops taking alerts, queues every channel's closing summary (rate-limited counts and
///   repeats not yet told; no token needed), and waits at most `closeWaitNanoseconds` for the queue to
///   empty; what is left is counted as dropped at close. While closing, failed messages are not retried.
/// - Delivery is at least once per message sent (a timeout after the server took it repeats it), and
///   alerts raised again after a worker restarts are de-duplicated only within the window.
/// - Time: de-duplication uses each alert's own `time`; the rate limit and the backoff use the monotonic
///   clock. Nothing here reaches the graph.
public final class AlertService: FaultListener, @unchecked Sendable {
    public let config: AlertConfig
    /// Channel names, in the config's order.
    public let channelNames: [String]

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var policies: [ChannelPolicy]
    private var counters: [AlertChannelCounters]
    private var alertsRaised = 0
    private var queue: [(channel: Int, message: AlertMessage)] = []
    private var queueHead = 0
    private var busy = false
    private var closing = false
    private var finished = false
    private var thread: Thread?
    private var channelDown: [Bool]

    private let channels: [AlertChannel]
    private let logger: Logger
    private let monotonic: @Sendable () -> Int64

    /// `log` gets the text lines of `init(config:logger:)`'s events (a test's capture).
    public convenience init(config: AlertConfig, log: @escaping @Sendable (String) -> Void) {
        self.init(config: config, logger: TapeLogging.logger(label: "tape.alerts", log))
    }

    /// `logger` gets one event per alert sent (info) or refused, and per change of a channel's state
    /// (delivering / failing), naming the host (metadata `channel`, `peer`, `rule`, `subject`, `error`).
    public convenience init(config: AlertConfig, logger: Logger) {
        let timeout = Int(max(1, config.requestTimeoutNanoseconds / 1_000_000))
        let channels: [AlertChannel] = config.channels.map { channel in
            switch channel {
            case .slack(let url):
                return SlackChannel(webhookURL: url, timeoutMilliseconds: timeout)
            case .email(let server, let from, let to):
                let mailServer = MailServer(url: server.url, username: server.username, password: server.password)
                return EmailChannel(server: mailServer, from: from, to: to, timeoutMilliseconds: timeout)
            }
        }
        self.init(config: config, channels: channels, logger: logger, monotonic: { AlertService.monotonicNanos() })
    }

    init(config: AlertConfig, channels: [AlertChannel], logger: Logger, monotonic: @escaping @Sendable () -> Int64) {
        precondition(channels.count == config.channels.count, "one channel per configured channel")
        self.config = config
        self.channels = channels
        channelNames = channels.map(\.name)
        policies = channels.map { ChannelPolicy(channel: $0.name, config: config) }
        counters = Array(repeating: AlertChannelCounters(), count: channels.count)
        channelDown = Array(repeating: false, count: channels.count)
        self.logger = logger
        self.monotonic = monotonic
        let thread = Thread { [self] in self.sendLoop() }
        thread.name = "tape-alerts"
        self.thread = thread
        thread.start()
    }

    // MARK: any thread

    /// Decides and queues; never waits on the network (see the contract).
    public func submit(_ alert: Alert) {
        let now = monotonic()
        condition.lock()
        defer { condition.unlock() }
        alertsRaised += 1
        guard !closing else {
            for index in channels.indices { counters[index].dropped += 1 }
            return
        }
        var queued = false
        for index in channels.indices {
            switch policies[index].decide(alert, now: now) {
            case .belowThreshold: counters[index].belowThreshold += 1
            case .deduplicated: counters[index].deduplicated += 1
            case .suppressed: counters[index].suppressed += 1
            case .send(let repeats):
                let message = AlertMessage(.alert(alert, repeatsBefore: repeats), source: config.source)
                queued = enqueue(index, message) || queued
            }
        }
        if queued { condition.broadcast() }
    }

    /// A pipeline fault (connectors, stores, workers): an alert at the wall time it was seen.
    public func fault(_ fault: PipelineFault) {
        submit(Alert(fault: fault, time: WallClock.nanos()))
    }

    /// Counters of one channel (by index in `channelNames`).
    public func counters(channel index: Int) -> AlertChannelCounters {
        condition.lock()
        defer { condition.unlock() }
        return counters[index]
    }

    /// Alerts submitted so far.
    public var raised: Int {
        condition.lock()
        defer { condition.unlock() }
        return alertsRaised
    }

    /// Stops taking alerts, queues the closing summaries and waits at most `closeWaitNanoseconds` (or
    /// `waitNanoseconds`) for the sender. Idempotent.
    public func close(waitNanoseconds: Int64? = nil) {
        let wait = waitNanoseconds ?? config.closeWaitNanoseconds
        condition.lock()
        if !closing {
            closing = true
            let now = monotonic()
            for index in channels.indices {
                if let summary = policies[index].summary(now: now, closing: true) {
                    _ = enqueue(index, AlertMessage(summary, source: config.source))
                }
            }
            condition.broadcast()
        }
        let deadline = Date(timeIntervalSinceNow: Double(max(0, wait)) / 1e9)
        while !finished && (busy || queueHead < queue.count) {
            if !condition.wait(until: deadline) { break }
        }
        if queueHead < queue.count {
            for item in queue[queueHead...] { counters[item.channel].droppedAtClose += 1 }
            queue.removeAll()
            queueHead = 0
        }
        condition.broadcast()
        condition.unlock()
    }

    /// `tape_alerts` points, one per channel (tag `channel`): the counters since the start.
    public func metricPoints() -> [MetricPoint] {
        condition.lock()
        let snapshot = counters
        let raised = alertsRaised
        condition.unlock()
        return channelNames.enumerated().map { index, name in
            let counts = snapshot[index]
            let fields: [(String, Int)] = [
                ("raised", raised), ("sent", counts.sent), ("summaries_sent", counts.summariesSent),
                ("below_threshold", counts.belowThreshold), ("deduplicated", counts.deduplicated),
                ("suppressed", counts.suppressed), ("dropped", counts.dropped + counts.droppedAtClose),
                ("failed", counts.failed), ("retries", counts.retries),
            ]
            return MetricPoint(measurement: "tape_alerts", tags: [MetricTag("channel", name)],
                               fields: fields.map { MetricField($0.0, .integer(Int64($0.1))) }, time: nil)
        }
    }

    /// summary.json `stores.alerts`: per channel, its peer and counters.
    public var report: JSONValue {
        condition.lock()
        let snapshot = counters
        let raised = alertsRaised
        condition.unlock()
        var members: [(String, JSONValue)] = [("raised", .int(Int64(raised)))]
        for (index, channel) in channels.enumerated() {
            let counts = snapshot[index]
            let numbers: [(String, Int)] = [
                ("sent", counts.sent), ("summaries_sent", counts.summariesSent),
                ("below_threshold", counts.belowThreshold), ("deduplicated", counts.deduplicated),
                ("suppressed", counts.suppressed), ("dropped", counts.dropped),
                ("dropped_at_close", counts.droppedAtClose), ("failed", counts.failed), ("retries", counts.retries),
            ]
            members.append((channel.name, .object([("peer", .string(channel.peer))]
                                                  + numbers.map { ($0.0, JSONValue.int(Int64($0.1))) })))
        }
        return .object(members)
    }

    // MARK: the sender thread

    /// Queues one message (lock held); false when the queue is full (counted).
    private func enqueue(_ channel: Int, _ message: AlertMessage) -> Bool {
        if queue.count - queueHead >= config.queueCapacity {
            counters[channel].dropped += 1
            return false
        }
        if queueHead > 0 && queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
        queue.append((channel, message))
        return true
    }

    /// Waits for the next message (lock held on entry and exit); nil when closing and nothing is left.
    private func next() -> (channel: Int, message: AlertMessage)? {
        while true {
            if queueHead < queue.count {
                let item = queue[queueHead]
                queueHead += 1
                return item
            }
            if closing { return nil }
            // Rate-limit summaries go as soon as a token is free.
            let now = monotonic()
            for index in channels.indices {
                if let summary = policies[index].summary(now: now, closing: false) {
                    _ = enqueue(index, AlertMessage(summary, source: config.source))
                }
            }
            if queueHead < queue.count { continue }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 1))
        }
    }

    private func sendLoop() {
        var backoff = Backoff(initialNanoseconds: config.backoffInitialNanoseconds,
                              maxNanoseconds: config.backoffMaxNanoseconds,
                              seed: UInt64(truncatingIfNeeded: monotonic()))
        condition.lock()
        while let item = next() {
            busy = true
            condition.unlock()
            let outcome = deliver(item, backoff: &backoff)
            condition.lock()
            busy = false
            switch outcome {
            case .delivered:
                counters[item.channel].sent += 1
                if case .summary = item.message.content { counters[item.channel].summariesSent += 1 }
            default:
                counters[item.channel].failed += 1
            }
            condition.broadcast()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Up to `attemptsMax` attempts with backoff (no lock held while sending or waiting).
    private func deliver(_ item: (channel: Int, message: AlertMessage), backoff: inout Backoff) -> DeliveryOutcome {
        let channel = channels[item.channel]
        backoff.reset()
        var attempt = 1
        while true {
            let outcome = channel.deliver(item.message)
            switch outcome {
            case .delivered:
                noteState(item.channel, down: false, detail: "")
                logger.info("tape: alerts: \(channel.name) \(channel.peer): sent \(item.message.title)",
                            metadata: metadata(channel, item.message, ["event": "sent"]))
                return outcome
            case .permanent(let detail):
                logger.error("tape: alerts: \(channel.name) \(channel.peer): refused (\(detail)); message dropped",
                             metadata: metadata(channel, item.message, ["event": "refused", "error": .string(detail)]))
                return outcome
            case .retryable(let detail, let retryAfter):
                noteState(item.channel, down: true, detail: detail)
                condition.lock()
                let stop = closing || attempt >= config.attemptsMax
                if !stop { counters[item.channel].retries += 1 }
                condition.unlock()
                if stop { return outcome }
                var wait = backoff.nextDelay()
                if let retryAfter { wait = min(max(wait, retryAfter), config.backoffMaxNanoseconds) }
                // Waits on the condition so that `close` cuts it short.
                condition.lock()
                let until = Date(timeIntervalSinceNow: Double(wait) / 1e9)
                while !closing && Date() < until { _ = condition.wait(until: until) }
                let interrupted = closing
                condition.unlock()
                if interrupted { return outcome }
                attempt += 1
            }
        }
    }

    /// One log line per change of a channel's state.
    private func noteState(_ channel: Int, down: Bool, detail: String) {
        condition.lock()
        let changed = channelDown[channel] != down
        channelDown[channel] = down
        condition.unlock()
        guard changed else { return }
        let name = channels[channel].name, peer = channels[channel].peer
        var fields: Logger.Metadata = ["channel": .string(name), "peer": .string(peer), "event": down ? "failing" : "delivering"]
        if down {
            fields["error"] = .string(detail)
            logger.warning("tape: alerts: \(name) \(peer): not delivered (\(detail)); retrying with backoff, the run goes on",
                           metadata: fields)
        } else {
            logger.notice("tape: alerts: \(name) \(peer): delivering again", metadata: fields)
        }
    }

    /// A message's channel, peer and (for one alert) rule, subject and severity, and `extra`.
    private func metadata(_ channel: AlertChannel, _ message: AlertMessage, _ extra: Logger.Metadata) -> Logger.Metadata {
        var fields: Logger.Metadata = ["channel": .string(channel.name), "peer": .string(channel.peer)]
        if case .alert(let alert, _) = message.content {
            fields["rule"] = .string(alert.rule)
            fields["subject"] = .string(alert.subject)
            fields["severity"] = .string(alert.severity.rawValue)
        }
        fields.merge(extra) { _, new in new }
        return fields
    }

    static func monotonicNanos() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
