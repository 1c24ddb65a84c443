import Kafka
import ProgressStore
import Storage
import Synchronization

/// The bookkeeping behind the exactly-once effect of Kafka ingestion.
///
/// Protocol (migrations 003 and 004 store its result):
/// - The consumer thread handles a partition's records in order. An event for a user in shard
///   `s` is added to the buffer, and the partition's *consumed position* moved past it, both
///   while holding worker `w(s)`'s drain lock (`DrainLocks`). A record that never reaches the buffer
///   (undecodable, already applied) moves the position without the lock: it has no entry.
/// - A flush worker drains its shards while holding its own drain lock and, under the same
///   lock, takes a snapshot of every assigned partition's consumed position. Every event of that
///   partition below the snapshot whose user lives in one of the drained shards was added before
///   the drain, so it is in these entries or in rows already committed. The worker writes the
///   snapshot, for each of its shards, in the transaction that commits the entries.
/// - On assignment the consumer starts a partition at the smallest of its shards' stored
///   positions and skips, per shard, the records below that shard's own position: they are in
///   committed rows already. Nothing is applied twice, and whatever was not committed is read
///   again.
/// - Fencing (migration 004): assignment claims each partition with a new owner epoch; a
///   checkpoint is written only after checking, under share locks, that the epochs are still
///   this member's. A partition revoked before its final flush could commit stays in the
///   snapshots of every worker, with its epoch, until each worker has committed a drain taken
///   after the revocation: that commit either lands before the next owner's claim (which then
///   reads it) or is fenced.
/// - Dead letters: a bad record is handed to the dead-letter topic before its position moves,
///   and a checkpoint is written only once everything handed over is delivered.
final class KafkaPositions: Sendable {
    /// A partition's consumed position in a snapshot, with the owner epoch it was read under.
    struct Position: Equatable, Sendable {
        var offset: Int64
        var epoch: Int64
    }

    let group: String
    let shardCount: Int
    private let workerCount: Int
    /// The flush workers' drain locks: a record's add and position move happen under the lock
    /// of the worker owning its user's shard (`KafkaRecordSettlement`).
    let locks: DrainLocks

    private struct State {
        /// Consumed position of each assigned partition.
        var consumed: [TopicPartition: Int64] = [:]
        /// Owner epoch of each assigned partition.
        var epochs: [TopicPartition: Int64] = [:]
        /// Per assigned partition, per shard: records below are committed already.
        var floors: [TopicPartition: [Int64]] = [:]
        /// Per worker: partitions revoked before their final flush committed, still to be
        /// committed (or fenced) by that worker.
        var departed: [[TopicPartition: Position]]
    }

    private let state: Mutex<State>
    /// Where bad records go, when `KAFKA_DLQ_TOPIC` is set.
    let deadLetters: KafkaDeadLetters?

    init(group: String, shardCount: Int, locks: DrainLocks, deadLetters: KafkaDeadLetters? = nil) {
        self.group = group
        self.shardCount = shardCount
        self.locks = locks
        workerCount = locks.workerCount
        self.deadLetters = deadLetters
        state = Mutex(State(departed: Array(repeating: [:], count: locks.workerCount)))
    }

    convenience init(group: String, shardCount: Int, workerCount: Int, deadLetters: KafkaDeadLetters? = nil) {
        self.init(group: group, shardCount: shardCount, locks: DrainLocks(workerCount: workerCount), deadLetters: deadLetters)
    }

    /// The flush worker that owns `shard`.
    func worker(ofShard shard: Int) -> Int { locks.worker(ofShard: shard) }

    /// True when `offset` of `partition` is committed already for users of `shard`.
    func isCommitted(_ partition: TopicPartition, offset: Int64, shard: Int) -> Bool {
        state.withLock { state in
            guard let floors = state.floors[partition] else { return false }
            return offset < floors[shard]
        }
    }

    /// The record at `offset` of `partition` is handled: the consumed position moves past it.
    func markConsumed(_ partition: TopicPartition, offset: Int64) {
        state.withLock { state in
            if offset + 1 > state.consumed[partition] ?? -1 { state.consumed[partition] = offset + 1 }
        }
    }

    /// What worker `worker` must checkpoint: the consumed positions of the assigned partitions
    /// and its departed ones. Call it under the worker's drain lock.
    func snapshot(worker: Int) -> [TopicPartition: Position] {
        state.withLock { state in
            var snapshot: [TopicPartition: Position] = [:]
            for (partition, offset) in state.consumed {
                snapshot[partition] = Position(offset: offset, epoch: state.epochs[partition] ?? 0)
            }
            // A departed partition assigned again keeps its old epoch here: entries read under
            // it are still buffered, so the commit must be fenced, not re-labelled.
            snapshot.merge(state.departed[worker]) { _, departed in departed }
            return snapshot
        }
    }

    /// Before a flush transaction that records a checkpoint: every bad record below the
    /// snapshot was handed to the dead-letter topic; this waits until it is delivered.
    func awaitDeadLetters() throws {
        try deadLetters?.awaitDelivery()
    }

    /// Inside worker `worker`'s flush transaction, after its rows: checks ownership
    /// (share-locking the partitions until the commit), and records the snapshot once per
    /// partition for all of the worker's shards (those with shard % workerCount = worker).
    func recordCheckpoint(_ snapshot: [TopicPartition: Position], worker: Int, on connection: PostgresConnection) throws {
        try KafkaCheckpoints.verifyOwnership(
            snapshot.map { .init(topic: $0.key.topic, partition: $0.key.partition, epoch: $0.value.epoch) },
            group: group, on: connection)
        var positions: [KafkaCheckpoints.Position] = []
        positions.reserveCapacity(snapshot.count)
        for (partition, position) in snapshot {
            positions.append(
                .init(
                    topic: partition.topic, partition: partition.partition, shard: Int16(worker),
                    shardModulus: Int16(workerCount), nextOffset: position.offset))
        }
        try KafkaCheckpoints.record(positions, group: group, on: connection)
    }

    /// Worker `worker` committed `snapshot`: the departed partitions in it are done with.
    func committed(_ snapshot: [TopicPartition: Position], worker: Int) {
        state.withLock { state in
            for (partition, position) in snapshot where state.departed[worker][partition] == position {
                state.departed[worker][partition] = nil
            }
        }
    }

    /// Partitions assigned, with their claim: returns where to start each (the smallest shard
    /// position; a shard without one has applied nothing of that partition: 0).
    ///
    /// A partition with no stored position at all gets no start: the consumer starts it where
    /// its group committed in Kafka (the incumbent's offsets, when it takes over that group), or
    /// at the beginning. Its consumed position is unknown until its first record, and until then
    /// it stays out of the snapshots: a checkpoint of 0 would send a restart back before those
    /// offsets, applying again what the incumbent applied.
    func assign(_ partitions: [TopicPartition], claim: KafkaCheckpoints.Claim) -> [TopicPartition: Int64] {
        var starts: [TopicPartition: Int64] = [:]
        var epochs: [TopicPartition: Int64] = [:]
        for o in claim.epochs { epochs[TopicPartition(topic: o.topic, partition: o.partition)] = o.epoch }
        state.withLock { state in
            for partition in partitions {
                let shards = claim.positions[partition.topic]?[partition.partition] ?? [:]
                let floors = (0..<shardCount).map { shards[Int16($0)] ?? 0 }
                state.floors[partition] = floors
                state.epochs[partition] = epochs[partition] ?? 0
                guard !shards.isEmpty else {
                    state.consumed[partition] = nil
                    continue
                }
                let start = floors.min() ?? 0
                state.consumed[partition] = start
                starts[partition] = start
            }
        }
        return starts
    }

    /// Partitions taken away. `flushed`: everything read from them is committed, so they are
    /// forgotten; otherwise each worker keeps them in its snapshots until it commits them, or is
    /// fenced by the next owner's claim.
    func revoke(_ partitions: [TopicPartition], flushed: Bool) {
        state.withLock { state in
            for partition in partitions {
                if !flushed, let offset = state.consumed[partition] {
                    let position = Position(offset: offset, epoch: state.epochs[partition] ?? 0)
                    for w in 0..<workerCount { state.departed[w][partition] = position }
                }
                state.consumed[partition] = nil
                state.floors[partition] = nil
                state.epochs[partition] = nil
            }
        }
    }
}
