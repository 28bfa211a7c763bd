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
            let writer = LoopWriter(channel: channel, client: client)
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

    static func queryValue(_ target: String, _ name: String) -> String? {
        guard let start = target.firstIndex(of: "?") else { return nil }
        for pair in target[target.index(after: start)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == name { return String(parts[1]).removingPercentEncoding }
        }
        return nil
    }
}

/// Writes one client's queued updates on its channel's event loop: every waiting message as a frame, one
/// flush for all of them; while that flush is not taken by the socket nothing more is written (a client
/// that does not read keeps its batch in flight while its queue fills: then it is closed as too slow).
/// `ring()` may be called from any thread; everything else runs on the event loop.
final class LoopWriter: @unchecked Sendable {
    let channel: any Channel
    let client: UpdateClient
    private let lock = NSLock()
    private var scheduled = false   // guarded by lock
    private var inFlight = false    // event loop only

    init(channel: any Channel, client: UpdateClient) {
        self.channel = channel
        self.client = client
    }

    /// Schedules a write on the event loop (at most one scheduled at a time).
    func ring() {
        lock.lock()
        let already = scheduled
        scheduled = true
        lock.unlock()
        if !already { channel.eventLoop.execute { self.write() } }
    }

    private func write() {
        lock.lock()
        scheduled = false
        lock.unlock()
        guard !inFlight, channel.isActive else { return }
        let messages = client.drainMessages()
        guard let last = messages.last else { return }
        for message in messages.dropLast() {
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: message)), promise: nil)
        }
        inFlight = true
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: last)), promise: promise)
        promise.futureResult.whenComplete { result in
            self.inFlight = false
            guard case .success = result else { return }
            self.client.delivered()
            self.write()
        }
    }
}
