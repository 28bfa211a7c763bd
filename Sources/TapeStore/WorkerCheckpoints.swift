/// Which partition's checkpoint a `PostgresSink` commits with its batches (`tape work`): the consumer
/// group, topic and partition, and the epoch this worker was given when it took the partition.
public struct CheckpointTarget: Sendable, Equatable {
    public var group: String
    public var topic: String
    public var partition: Int32
    public var epoch: Int64
    public init(group: String, topic: String, partition: Int32, epoch: Int64) {
        self.group = group; self.topic = topic; self.partition = partition; self.epoch = epoch
    }
    public var description: String { "\(topic)[\(partition)] of group \(group)" }
}

/// A checkpoint as `tape work` commits it: the next offset to read and the engine checkpoint taken there
/// (nil: a fresh graph, e.g. after the end of a session).
public struct WorkerCheckpoint: Sendable, Equatable {
    public var nextOffset: Int64
    public var checkpoint: [UInt8]?
    public init(nextOffset: Int64, checkpoint: [UInt8]?) { self.nextOffset = nextOffset; self.checkpoint = checkpoint }
}

/// A commit under an epoch that is no longer the partition's: another worker took it (this one is a
/// zombie of an earlier assignment). Nothing of the transaction is kept.
public struct CheckpointFenced: Error, CustomStringConvertible, Sendable {
    public let target: CheckpointTarget
    public var description: String {
        "\(target.description): another worker took the partition (epoch \(target.epoch) is no longer current); "
            + "this worker's uncommitted work for it is dropped"
    }
}

/// `tape_worker_checkpoints` (migration 2): what a worker reads when it is assigned a partition.
public enum WorkerCheckpoints {
    /// The layout version of the `checkpoint` column: `Engine.checkpoint()` bytes as they are.
    public static let formatVersion = 1

    /// What an assignment finds: the epoch it now holds, and the last committed checkpoint (if any).
    public struct Acquired: Sendable {
        public var target: CheckpointTarget
        /// nil: never committed (start from the consumer's reset policy).
        public var committed: WorkerCheckpoint?
        public var formatVersion: Int?
        public var configHash: String?
    }

    /// Takes the partition for `worker`: bumps its epoch (fencing any earlier holder) and returns the
    /// last committed checkpoint.
    public static func acquire(_ connection: PostgresConnection, group: String, topic: String, partition: Int32,
                               worker: String) throws -> Acquired {
        let rows = try connection.query("""
            INSERT INTO tape_worker_checkpoints (consumer_group, topic, partition, epoch, worker)
            VALUES (\(StoreSchema.quote(group)), \(StoreSchema.quote(topic)), \(partition), 1, \(StoreSchema.quote(worker)))
            ON CONFLICT (consumer_group, topic, partition) DO UPDATE
            SET epoch = tape_worker_checkpoints.epoch + 1, worker = excluded.worker, assigned_at = now()
            RETURNING epoch, next_offset, encode(checkpoint, 'hex'), format_version, config_hash
            """)
        guard let row = rows.first, let epochText = row[0], let epoch = Int64(epochText) else {
            throw PostgresError(peer: connection.peer, detail: "acquiring \(topic)[\(partition)]: no row returned")
        }
        let target = CheckpointTarget(group: group, topic: topic, partition: partition, epoch: epoch)
        var committed: WorkerCheckpoint? = nil
        if let offsetText = row[1], let offset = Int64(offsetText) {
            committed = WorkerCheckpoint(nextOffset: offset, checkpoint: row[2].flatMap(hexBytes))
        }
        return Acquired(target: target, committed: committed, formatVersion: row[3].flatMap { Int($0) }, configHash: row[4])
    }

    /// Every committed checkpoint of a group (operations, tests): partition → next offset.
    public static func offsets(_ connection: PostgresConnection, group: String, topic: String) throws -> [Int32: Int64] {
        var result: [Int32: Int64] = [:]
        for row in try connection.query("""
            SELECT partition, next_offset FROM tape_worker_checkpoints
            WHERE consumer_group = \(StoreSchema.quote(group)) AND topic = \(StoreSchema.quote(topic)) AND next_offset IS NOT NULL
            """) {
            if let p = row[0].flatMap({ Int32($0) }), let o = row[1].flatMap({ Int64($0) }) { result[p] = o }
        }
        return result
    }

    /// The statement that commits `checkpoint` under `target`'s epoch (inside the batch's transaction).
    static func commitStatement(_ target: CheckpointTarget, _ checkpoint: WorkerCheckpoint, configHash: String) -> String {
        """
        UPDATE tape_worker_checkpoints SET next_offset = \(checkpoint.nextOffset),
            checkpoint = \(checkpoint.checkpoint.map(StoreSchema.bytea) ?? "NULL"),
            format_version = \(formatVersion), config_hash = \(StoreSchema.quote(configHash)),
            commits = commits + 1, committed_at = now()
        WHERE consumer_group = \(StoreSchema.quote(target.group)) AND topic = \(StoreSchema.quote(target.topic))
            AND partition = \(target.partition) AND epoch = \(target.epoch)
        """
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
