import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket
import TapeCore
import TapeRedis
import TapeUpdates

/// `/ws`: live updates over WebSocket (docs/serving.md, "WebSocket"). The pipeline's Redis sink publishes
/// every update on `<prefix>updates`; each `tape serve` subscribes (`RedisSubscriber`) and fans them out to
/// its clients through an `UpdateHub`, so several serve processes behind a load balancer serve one stream.
///
/// - A client subscribes per symbol and channel, gets a snapshot (from the stores) and then the updates.
/// - Each client has a bounded queue; one that does not read — its queue full, or an update waiting over a
///   second — is closed with code 4008 (its socket cut when it does not take the close frame within
///   `slowCloseGraceNanoseconds`), the others untouched. Pings every 30 s (Hummingbird's auto-ping) find dead peers.
/// - Redis away: clients stay connected; when the subscription is back every client gets a fresh snapshot
///   of each subscription (the updates published meanwhile are not kept by pub/sub).
/// - Access: where reads need a key (`auth.read: key`), the upgrade needs one too, as `X-API-Key` or
///   `?key=` (browsers cannot set headers on a WebSocket); a connection takes a token of the key's or IP's
///   rate limit.
final class UpdatesEndpoint: Sendable {
    static let path = "/ws"
    static let clientMessageBytesMaximum = 1 << 16
    static let socketSendBufferBytes = 256 * 1024
    let hub: UpdateHub
    let subscriber: RedisSubscriber
    /// The latest state from the same stream, for `/api/v1/latest` (`liveMemory`).
    let memory: LatestMemory
    let metrics: ServeMetrics
    let access: AccessControl
    let slowCloseGraceNanoseconds: UInt64 = 2_000_000_000
    private let fanoutLock = NSLock()
    nonisolated(unsafe) private var fanouts: [ObjectIdentifier: LoopFanout] = [:]   // guarded by fanoutLock

    init(stores: Stores, redisURL: String, queueCapacity: Int, metrics: ServeMetrics, access: AccessControl,
         log: @escaping @Sendable (String) -> Void) throws {
        let hub = UpdateHub(queueCapacity: queueCapacity) { key in
            UpdateHub.snapshotMessage(key, data: (try? await stores.run { session in try session.updateSnapshot(key) }) ?? "[]")
        }
        self.hub = hub
        self.metrics = metrics
        self.access = access
        let memory = LatestMemory()
        self.memory = memory
        subscriber = try RedisSubscriber(
            url: redisURL, channel: stores.layout.updatesChannel, log: log,
            onSubscribed: {
                memory.clear()   // what was published while away is not replayed
                Task { await hub.resync() }
            },
            onMessage: { message in
                memory.apply(message)
                hub.publish(message)
            })
    }

    func start() { subscriber.start() }

    /// The in-process latest state while the subscription is live; nil during a gap.
    var liveMemory: LatestMemory? { subscriber.isSubscribed ? memory : nil }

    func stop() {
        hub.closeAll()
        subscriber.stop()
    }

    /// Whether the upgrade request at `target` (path and query) with `headers` may connect: nil, or why not.
    func refusal(target: String, headers: HTTPFields, clientAddress: String) -> Problem? {
        var fields = headers
        if fields[AccessControl.keyHeader] == nil, let key = Self.queryValue(target, "key") {
            fields[AccessControl.keyHeader] = key
        }
        do {
            try access.checkRead(presented: fields[AccessControl.keyHeader], clientAddress: clientAddress)
            return nil
        } catch let problem as Problem {
            return problem
        } catch {
            return Problem.internalError("\(error)")
        }
    }

    /// One client's connection, until it closes or is closed.
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel) async {
        // A bounded kernel send buffer (no autotuning up to 4 MB per socket): a peer that stops reading is
        // seen as slow after a few hundred KB rather than megabytes.
        try? await channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: Self.socketSendBufferBytes).get()
        let client = hub.connect()
        metrics.webSocketClients.increment()
        defer {
            hub.disconnect(client)
            metrics.webSocketClients.decrement()
        }
        let hub = self.hub, grace = slowCloseGraceNanoseconds, metrics = self.metrics
        await withTaskGroup(of: Void.self) { group in
            // Updates are written on the channel's own event loop, rung straight from the thread that queued
            // them (the Redis subscriber's): no hop through a task. This task only sends the close, if any.
            let writer = LoopWriter(channel: channel, client: client, fanout: fanout(for: channel.eventLoop))
            client.setRinger { writer.ring() }
            writer.ring()
            group.addTask {
                for await _ in client.wakeups {
                    if let close = client.closeReason {
                        try? await outbound.close(.init(codeNumber: Int(close.code)), reason: close.text)
                        return
                    }
                }
            }
            group.addTask {   // reader: requests
                do {
                    for try await message in inbound.messages(maxSize: Self.clientMessageBytesMaximum) {
                        if case .text(let text) = message { await hub.handle(text, from: client) }
                    }
                } catch {}
            }
            group.addTask {   // watchdog: updates waiting too long close the client; one closed as too slow whose
                              // socket does not take the close frame is cut
                while !Task.isCancelled {
                    do { try await Task.sleep(nanoseconds: 100_000_000) } catch { return }
                    client.checkLag(now: UpdateHub.monotonicNanoseconds())
                    guard client.closeReason?.code == 4008 else { continue }
                    metrics.webSocketDropped.increment()
                    do { try await Task.sleep(nanoseconds: grace) } catch { return }
                    channel.close(mode: .all, promise: nil)
                    return
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// The fan-out of `loop` (one per event loop, made on first use).
    private func fanout(for loop: any EventLoop) -> LoopFanout {
        fanoutLock.lock()
        defer { fanoutLock.unlock() }
        let key = ObjectIdentifier(loop)
        if let existing = fanouts[key] { return existing }
        let made = LoopFanout(loop: loop)
        fanouts[key] = made
        return made
    }

    static func queryValue(_ target: String, _ name: String) -> String? {
        guard let start = target.firstIndex(of: "?") else { return nil }
        for pair in target[target.index(after: start)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == name { return String(parts[1]).removingPercentEncoding }
        }
        return nil
    }
}

/// The bytes `/ws` sends for a text message: one whole server-to-client frame (FIN, opcode 1, no mask; RFC 6455
/// §5.2), as `LoopFanout` makes them once for every client.
public enum WebSocketTextFrame {
    public static func bytes(_ text: String) -> [UInt8] {
        Array(LoopFanout.textFrame(text, allocator: ByteBufferAllocator()).readableBytesView)
    }
}

/// The clients of one event loop that have updates waiting: rung from any thread (the Redis subscriber's, per
/// update and client), it schedules one task on the loop for all of them, not one per client. An update for
/// 100 clients on 2 loops is 2 hops, not 100. Within a pass each message is framed once (`frame(_:)`) and the
/// same bytes go to every client that waits for it.
final class LoopFanout: @unchecked Sendable {
    let loop: any EventLoop
    private let lock = NSLock()
    private var waiting: [LoopWriter] = []   // guarded by lock
    private var scheduled = false            // guarded by lock
    private var spare: [LoopWriter] = []     // event loop only
    /// The messages framed in this pass (event loop only; a pass holds a few: the updates of one hand-over).
    private var framed: [(text: String, frame: ByteBuffer)] = []
    private let allocator = ByteBufferAllocator()

    init(loop: any EventLoop) { self.loop = loop }

    func ring(_ writer: LoopWriter) {
        lock.lock()
        waiting.append(writer)
        let already = scheduled
        scheduled = true
        lock.unlock()
        if !already { loop.execute { self.run() } }
    }

    private func run() {
        lock.lock()
        swap(&waiting, &spare)
        scheduled = false
        lock.unlock()
        for writer in spare { writer.write() }
        spare.removeAll(keepingCapacity: true)
        framed.removeAll(keepingCapacity: true)
    }

    /// On the event loop: `text` as a whole WebSocket text frame (server to client: FIN, opcode 1, no mask,
    /// RFC 6455 §5.2), made once per pass. Every client's queue holds the same String for one update, so the
    /// look-up is a comparison of two references first.
    func frame(_ text: String) -> ByteBuffer {
        for entry in framed where entry.text == text { return entry.frame }
        let frame = Self.textFrame(text, allocator: allocator)
        if framed.count < 64 { framed.append((text, frame)) }
        return frame
    }

    static func textFrame(_ text: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let length = text.utf8.count
        var buffer = allocator.buffer(capacity: length + 10)
        buffer.writeInteger(UInt8(0x81))
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeString(text)
        return buffer
    }
}

/// Writes one client's queued updates on its channel's event loop: every waiting message as a frame, one
/// flush for all of them; while that flush is not taken by the socket nothing more is written (a client
/// that does not read keeps its batch in flight while its queue fills: then it is closed as too slow).
/// The frames are the fan-out's ready-made bytes, written below the pipeline's `WebSocketFrameEncoder`
/// (through its context: in order with the frames the encoder writes, e.g. the close), so the same bytes
/// serve every client and nothing is encoded per client.
/// `ring()` may be called from any thread; everything else runs on the event loop.
final class LoopWriter: @unchecked Sendable {
    let channel: any Channel
    let client: UpdateClient
    let fanout: LoopFanout
    private let lock = NSLock()
    private var scheduled = false   // guarded by lock
    private var inFlight = false    // event loop only
    /// The frame encoder's context (event loop only; looked up at the first write). nil: not found, so
    /// frames go through the pipeline as `WebSocketFrame`s.
    private var encoder: ChannelHandlerContext?? = .none

    init(channel: any Channel, client: UpdateClient, fanout: LoopFanout) {
        precondition(fanout.loop === channel.eventLoop, "a client is written on its channel's loop")
        self.channel = channel
        self.client = client
        self.fanout = fanout
    }

    /// Schedules a write on the event loop (at most one scheduled at a time), through the loop's fan-out.
    func ring() {
        lock.lock()
        let already = scheduled
        scheduled = true
        lock.unlock()
        if !already { fanout.ring(self) }
    }

    /// On the event loop: writes what waits, unless a flush is still in flight (its completion writes again).
    func write() {
        lock.lock()
        scheduled = false
        lock.unlock()
        guard !inFlight, channel.isActive else { return }
        let messages = client.drainMessages()
        guard !messages.isEmpty else { return }
        if encoder == nil {
            encoder = .some(try? channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self))
        }
        inFlight = true
        let promise = channel.eventLoop.makePromise(of: Void.self)
        if case .some(.some(let context)) = encoder {
            for (index, message) in messages.enumerated() {
                let frame = NIOAny(fanout.frame(message))
                if index == messages.count - 1 { context.writeAndFlush(frame, promise: promise) } else { context.write(frame, promise: nil) }
            }
        } else {
            for (index, message) in messages.enumerated() {
                let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: message))
                if index == messages.count - 1 { channel.writeAndFlush(frame, promise: promise) } else { channel.write(frame, promise: nil) }
            }
        }
        promise.futureResult.whenComplete { result in
            self.inFlight = false
            guard case .success = result else { return }
            self.client.delivered()
            self.write()
        }
    }
}
