import Kafka
import Storage
import Synchronization

/// The bookkeeping behind the exactly-once effect of Kafka ingestion.
///
/// Protocol (migration 003 stores its result):
/// - The consumer thread handles a partition's records in order. An event for a user in shard
///   `s` is added to the buffer, and the partition's *consumed position* moved past it, both
///   while holding worker `w(s)`'s ingest lock. A record that never reaches the buffer
///   (undecodable, already applied) moves the position without the lock: it has no entry.
/// - A flush worker drains its shards while holding its own ingest lock and, under the same
///   lock, takes a snapshot of every assigned partition's consumed position. Every event of that
///   partition below the snapshot whose user lives in one of the drained shards was added before
///   the drain, so it is in these entries or in rows already committed. The worker writes the
///   snapshot, for each of its shards, in the transaction that commits the entries.
/// - On assignment the consumer starts a partition at the smallest of its shards' stored
///   positions and skips, per shard, the records below that shard's own position: they are in
///   committed rows already. Nothing is applied twice, and whatever was not committed is read
///   again.
final class KafkaPositions: Sendable {
    let group: String
    let shardCount: Int
    private let workerCount: Int
    private let ingestLocks: [IngestLock]

    private final class IngestLock: Sendable {
        let mutex = Mutex(())
    }

    private struct State {
        /// Consumed position of each assigned partition.
        var consumed: [TopicPartition: Int64] = [:]
        /// Per assigned partition, per shard: records below are committed already.
        var floors: [TopicPartition: [Int64]] = [:]
    }

    private let state = Mutex(State())

    init(group: String, shardCount: Int, workerCount: Int) {
        self.group = group
        self.shardCount = shardCount
        self.workerCount = workerCount
        ingestLocks = (0..<workerCount).map { _ in IngestLock() }
    }

    /// The flush worker that owns `shard`.
    func worker(ofShard shard: Int) -> Int { shard % workerCount }

    /// Runs `body` holding worker `worker`'s ingest lock (an add on the consumer side, a drain
    /// and snapshot on the flush side).
    func withIngestLock<T>(worker: Int, _ body: () throws -> T) rethrows -> T {
        try ingestLocks[worker].mutex.withLock { _ in try body() }
    }

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

    /// Consumed positions of the assigned partitions; call it under the worker's ingest lock.
    func snapshot() -> [TopicPartition: Int64] {
        state.withLock { $0.consumed }
    }

    /// The rows of a checkpoint: the snapshot for each of the worker's shards.
    func checkpoint(_ snapshot: [TopicPartition: Int64], shards: [Int]) -> [KafkaCheckpoints.Position] {
        var positions: [KafkaCheckpoints.Position] = []
        positions.reserveCapacity(snapshot.count * shards.count)
        for (partition, offset) in snapshot {
            for shard in shards {
                positions.append(
                    .init(topic: partition.topic, partition: partition.partition, shard: Int16(shard), nextOffset: offset))
            }
        }
        return positions
    }

    /// Partitions assigned, with the stored positions: returns where to start each (the smallest
    /// shard position; a shard without one has applied nothing of that partition: 0).
    func assign(_ partitions: [TopicPartition], stored: [String: [Int32: [Int16: Int64]]]) -> [TopicPartition: Int64] {
        var starts: [TopicPartition: Int64] = [:]
        state.withLock { state in
            for partition in partitions {
                let shards = stored[partition.topic]?[partition.partition] ?? [:]
                let floors = (0..<shardCount).map { shards[Int16($0)] ?? 0 }
                state.floors[partition] = floors
                let start = floors.min() ?? 0
                state.consumed[partition] = start
                starts[partition] = start
            }
        }
        return starts
    }

    /// Partitions taken away (after their final flush): forget them.
    func revoke(_ partitions: [TopicPartition]) {
        state.withLock { state in
            for partition in partitions {
                state.consumed[partition] = nil
                state.floors[partition] = nil
            }
        }
    }
}
