import Foundation
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket
import Synchronization
import TapeCore

/// Counts data messages over the whole server, for `--garble-every N`.
final class GarbleSchedule: Sendable {
    private let every: Int?
    private let sent = Mutex(0)
    init(every: Int?) { self.every = every }

    /// Whether the next data message is to be garbled.
    func next() -> Bool {
        guard let every, every > 0 else { return false }
        return sent.withLock { count in
            count += 1
            return count % every == 0
        }
    }
}

/// Everything a connection shares with the server.
struct SessionEnvironment: Sendable {
    let wire: any WebSocketWire
    let recording: SimRecording
    let timeline: SimTimeline
    let stats: SimStats
    let faults: FaultSettings
    let garble: GarbleSchedule
    let done: @Sendable () -> Void
    let stopping: StopFlag
}

/// Set when the server begins to shut down (SIGTERM): the sessions stop sending and flush what they counted
/// as served, before the server closes the connections (`DrainService`). Otherwise the frames written after
/// the server's close frame are counted but never read by the client.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}

/// One WebSocket connection: the handshake and the client's control messages (this task), and the data
/// (a child task): the recording from where the timeline stands, paced, filtered by the subscription,
/// with the faults applied. Returns the reason the connection ended.
final class WebSocketSession: Sendable {
    /// Largest client message read (subscribe lists are small).
    static let clientMessageBytesMaximum = 1 << 20
    /// Sleeps shorter than this are skipped (pacing granularity).
    static let pacingGranularity = Duration.microseconds(200)
    /// How long a forced disconnect waits for the messages already written to leave.
    static let dropDrain = Duration.milliseconds(20)
    /// Data frames written between two flushes (each flush awaited).
    static let flushEvery = 128
    /// How often a `max`-speed session looks for its client's subscription.
    static let readinessPoll = Duration.milliseconds(5)

    let environment: SessionEnvironment
    let channel: any Channel
    let identifier: Int
    let peer: String
    let openInstant = ContinuousClock.now
    private let subscription = Mutex(Subscription())

    init(environment: SessionEnvironment, channel: any Channel, identifier: Int, peer: String) {
        self.environment = environment
        self.channel = channel
        self.identifier = identifier
        self.peer = peer
    }

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, query: [String: String])
        async -> String
    {
        let wire = environment.wire
        var initial = Subscription()
        let greeting = wire.open(query: query, subscription: &initial)
        subscription.withLock { $0 = initial }
        do {
            for text in greeting.messages { try await outbound.write(.text(text)) }
        } catch { return "write_failed" }
        if let reason = greeting.closeReason {
            if greeting.authFailed { environment.stats.authFailed() }
            return reason
        }
        let startIndex = environment.timeline.connectionOpened()
        defer { environment.timeline.connectionClosed() }
        return await withTaskGroup(of: String.self) { group in
            group.addTask { await self.sendData(outbound: outbound, from: startIndex) }
            var reason = "client"
            do {
                for try await message in inbound.messages(maxSize: Self.clientMessageBytesMaximum) {
                    guard case .text(let text) = message else { continue }
                    // Only this task changes the subscription: the reply goes out before data under the new one.
                    var changed = subscription.withLock { $0 }
                    let before = wire.isReady(changed)
                    let reply = wire.reply(to: text, subscription: &changed)
                    for answer in reply.messages { try await outbound.write(.text(answer)) }
                    subscription.withLock { [changed] in $0 = changed }
                    if let closeReason = reply.closeReason {
                        if reply.authFailed { environment.stats.authFailed() }
                        reason = closeReason
                        break
                    }
                    if wire.isReady(changed) && !before {
                        environment.stats.note(identifier, peer: peer, "subscribed: \(text)")
                    }
                }
            } catch {
                reason = "client_error"
            }
            group.cancelAll()
            if let senderReason = await group.next(), senderReason == "drop" { reason = "drop" }
            return reason
        }
    }

    /// The data: returns "drop" after a forced disconnect, otherwise runs until cancelled.
    private func sendData(outbound: WebSocketOutboundWriter, from startIndex: Int) async -> String {
        let messages = environment.recording.messages
        let timeline = environment.timeline
        let faults = environment.faults
        let paced = timeline.speed != nil
        var index = startIndex
        var sentOnConnection = 0
        var firstSimulatedTime: Nanos? = nil
        var nextStall: ContinuousClock.Instant? = faults.stallEverySeconds.map { openInstant + .seconds($0) }
        do {
            if !paced {
                while !subscription.withLock({ environment.wire.isReady($0) }) {
                    try await Task.sleep(for: Self.readinessPoll)
                }
            }
            // Frames go to the channel without a flush and are flushed in batches of `flushEvery` (awaiting
            // that write: back-pressure), and before any wait, fault or end, so that pacing is not delayed.
            var unflushed = 0
            func flushPending() {
                if unflushed > 0 { channel.flush(); unflushed = 0 }
            }
            while index < messages.count {
                if environment.stopping.isSet {
                    flushPending()
                    while true { try await Task.sleep(for: .seconds(3600)) }
                }
                let message = messages[index]
                if paced {
                    let due = timeline.dueInstant(for: message.receiveTime)
                    if due > .now { flushPending() }
                    try await waitUntil(due, stall: &nextStall)
                } else {
                    if let stall = nextStall, stall <= .now { flushPending() }
                    try await waitUntil(.now, stall: &nextStall)
                }
                let current = subscription.withLock { $0 }
                let outgoing = environment.wire.isReady(current) ? environment.wire.encode(message, for: current) : []
                for wireMessage in outgoing {
                    let garbled = environment.garble.next()
                    var bytes = wireMessage.bytes
                    if garbled { bytes = Array(bytes.prefix(bytes.count / 2)) + Array("#garbled".utf8) }
                    // The bytes as one text frame, without a round trip through String (one copy, no
                    // UTF-8 validation: the simulator sends what the recording holds, garbled or not).
                    // Written on the channel itself (the pipeline's frame encoder), not through the
                    // per-frame awaited `outbound.write`, which flushes and awaits every frame: that
                    // capped the simulator at ~170k messages/s. Only this task writes data frames.
                    let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: bytes))
                    unflushed += 1
                    if unflushed >= Self.flushEvery {
                        unflushed = 0
                        try await channel.writeAndFlush(frame).get()
                    } else {
                        channel.write(frame, promise: nil)
                    }
                    environment.stats.served(identifier, events: garbled ? 0 : wireMessage.eventCount, garbled: garbled)
                    sentOnConnection += 1
                    if let limit = faults.dropAfterMessages, sentOnConnection >= limit {
                        flushPending()
                        timeline.passed(upTo: index + 1)
                        return await drop("after \(sentOnConnection) messages")
                    }
                }
                index += 1
                timeline.passed(upTo: index)
                if firstSimulatedTime == nil { firstSimulatedTime = message.receiveTime }
                if let seconds = faults.dropEverySeconds, let first = firstSimulatedTime,
                   Double(message.receiveTime - first) / 1e9 >= seconds {
                    flushPending()
                    return await drop("after \(seconds) s of simulated time")
                }
            }
            flushPending()
            environment.stats.note(identifier, peer: peer, "served the whole recording")
            environment.done()
            while true { try await Task.sleep(for: .seconds(3600)) }
        } catch {
            // Stopped (the client left, or the server shuts down): frames written but not yet flushed are
            // counted as served, so they go out too.
            channel.flush()
            return "cancelled"
        }
    }

    /// Sleeps until `instant`, taking any stall that falls due first (no data, nothing read).
    private func waitUntil(_ instant: ContinuousClock.Instant, stall nextStall: inout ContinuousClock.Instant?)
        async throws
    {
        while true {
            if let stallStart = nextStall, stallStart <= .now {
                environment.stats.stalled(identifier)
                environment.stats.note(identifier, peer: peer, "stalled for \(environment.faults.stallForSeconds) s")
                try? await channel.setOption(ChannelOptions.autoRead, value: false).get()
                let stallEnd = stallStart + .seconds(environment.faults.stallForSeconds)
                try await Task.sleep(until: stallEnd)
                try? await channel.setOption(ChannelOptions.autoRead, value: true).get()
                environment.stats.note(identifier, peer: peer, "resumed")
                nextStall = stallEnd + .seconds(environment.faults.stallEverySeconds ?? 0)
                continue
            }
            let target = nextStall.map { min($0, instant) } ?? instant
            if target - .now > Self.pacingGranularity {
                try await Task.sleep(until: target)
                continue
            }
            if target == instant || instant <= .now { return }
        }
    }

    /// A forced disconnect: the TCP connection is closed without a WebSocket close frame.
    private func drop(_ what: String) async -> String {
        environment.stats.note(identifier, peer: peer, "dropped (fault) \(what)")
        // Let the writes already handed to the channel reach the socket before it closes.
        try? await Task.sleep(for: Self.dropDrain)
        try? await channel.close().get()
        return "drop"
    }
}
