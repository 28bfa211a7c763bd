import TapeCore
import TapeGraph

/// A checkpoint is the engine's input position and counters together with the graph's snapshot
/// (docs/snapshot.md), taken between two items: enough to continue the run as if it had never stopped.
///
///     let bytes = engine.checkpoint()                 // at the end of a run that did not finish()
///     try fresh.restore(checkpoint: bytes)            // before any item; then skip fresh.positions
///
/// The input position is, per source index (`MarketEvent.source`: the input's place in the merge), the
/// number of items the engine has pulled from it — delivered and filtered alike. A replay skips that
/// many items of each input; a Kafka worker stores its partition offsets instead.
extension Engine {
    /// "TAPECKPT" in ASCII.
    public static let checkpointMagic: [UInt8] = Array("TAPECKPT".utf8)
    /// Version of the envelope layout (the graph payload has its own version).
    public static let checkpointVersion: UInt64 = 1
    /// No checkpoint names more inputs than this.
    public static let checkpointSourcesMaximum = 1 << 20

    /// The checkpoint bytes: magic, version, positions, engine counters, then the graph snapshot as a
    /// block. Not after `finish()`: the open windows belong in it.
    public func checkpoint() -> [UInt8] {
        var writer = SnapshotWriter()
        for byte in Engine.checkpointMagic { writer.appendByte(byte) }
        writer.append(Engine.checkpointVersion)
        writer.appendCount(positions.count)
        for position in positions { writer.append(position) }
        writer.appendCount(counters.delivered)
        writer.appendCount(counters.filtered)
        writer.appendCount(counters.clockTicks)
        for value in [counters.firstReceive, counters.lastReceive, counters.firstEvent, counters.lastEvent] {
            writer.append(value != nil)
            writer.append(value ?? 0)
        }
        writer.appendBlock(graph.snapshot())
        return writer.bytes
    }

    /// Continues from a checkpoint: restores the graph (symbol names in id order, clock, timers, every
    /// node), the counters and `positions`. Call on a fresh engine, before any item and before readers
    /// intern names. Throws `SnapshotError` on bytes that are not a checkpoint of this version, are
    /// truncated or damaged, or were taken under another config or with other nodes; after an error the
    /// engine must be discarded.
    public func restore(checkpoint bytes: [UInt8]) throws {
        precondition(positions.isEmpty && counters == EngineCounters(), "restore(checkpoint:) needs a fresh engine")
        var reader = SnapshotReader(bytes: bytes)
        let magic = try reader.readBytes(Engine.checkpointMagic.count)
        guard magic == Engine.checkpointMagic else { throw reader.error("not a Tape checkpoint (bad magic)") }
        let version = try reader.readUInt64()
        guard version == Engine.checkpointVersion else {
            throw reader.error("checkpoint version \(version), this build reads version \(Engine.checkpointVersion)")
        }
        let sourceCount = try reader.readCount(minimumElementBytes: 8, limit: Engine.checkpointSourcesMaximum)
        var restoredPositions: [UInt64] = []
        for _ in 0..<sourceCount { restoredPositions.append(try reader.readUInt64()) }
        var restored = EngineCounters()
        restored.delivered = try reader.readCount(minimumElementBytes: 0)
        restored.filtered = try reader.readCount(minimumElementBytes: 0)
        restored.clockTicks = try reader.readCount(minimumElementBytes: 0)
        var times: [Nanos?] = []
        for _ in 0..<4 {
            let present = try reader.readBool()
            let value = try reader.readInt64()
            times.append(present ? value : nil)
        }
        restored.firstReceive = times[0]; restored.lastReceive = times[1]
        restored.firstEvent = times[2]; restored.lastEvent = times[3]
        let graphBytes = try reader.readBlock()
        try reader.expectEnd("checkpoint")
        try graph.restore(from: graphBytes)
        positions = restoredPositions
        counted = restored
        eventTimeMinimum = restored.firstEvent ?? .max
        eventTimeMaximum = restored.lastEvent ?? .min
    }
}
