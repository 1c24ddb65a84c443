import Kafka
import Testing

@testable import EventHandler
@testable import ProgressStore
@testable import Storage

/// The Kafka bookkeeping behind exactly-once ingestion, in process: where a partition starts,
/// which records are committed already, what each flush worker checkpoints, and what a
/// revocation leaves for the workers to commit (or be fenced on).
@Suite("Kafka positions: starts, skips, snapshots and departed partitions")
struct KafkaPositionsTests {
    let events0 = TopicPartition(topic: "events", partition: 0)
    let events1 = TopicPartition(topic: "events", partition: 1)

    func claim(epoch: Int64, shards: [Int16: Int64] = [:]) -> KafkaCheckpoints.Claim {
        .init(
            epochs: [.init(topic: "events", partition: 0, epoch: epoch), .init(topic: "events", partition: 1, epoch: epoch)],
            positions: shards.isEmpty ? [:] : ["events": [0: shards]])
    }

    @Test("a partition starts at its smallest shard position; a shard skips only the records it committed")
    func startsAndSkips() {
        let positions = KafkaPositions(group: "g", shardCount: 4, workerCount: 2)
        let starts = positions.assign([events0, events1], claim: claim(epoch: 3, shards: [0: 10, 1: 7, 2: 12, 3: 9]))
        #expect(starts == [events0: 7], "events1 has no stored position: the consumer starts it where the group committed")
        #expect(positions.isCommitted(events0, offset: 9, shard: 0))
        #expect(!positions.isCommitted(events0, offset: 10, shard: 0))
        #expect(!positions.isCommitted(events0, offset: 7, shard: 1))
        #expect(positions.isCommitted(events0, offset: 11, shard: 2))
        #expect(!positions.isCommitted(events1, offset: 0, shard: 0), "no stored position: nothing committed")
        #expect(!positions.isCommitted(TopicPartition(topic: "other", partition: 0), offset: 0, shard: 0))
        #expect(positions.worker(ofShard: 5) == 1)
    }

    @Test("a snapshot holds each assigned partition's consumed position under its epoch; positions only move forward")
    func snapshots() {
        let positions = KafkaPositions(group: "g", shardCount: 4, workerCount: 2)
        _ = positions.assign([events0, events1], claim: claim(epoch: 5, shards: [0: 4, 1: 4, 2: 4, 3: 4]))
        positions.markConsumed(events0, offset: 4)
        positions.markConsumed(events0, offset: 8)
        positions.markConsumed(events0, offset: 6)  // an earlier record handled late moves nothing back
        positions.markConsumed(events1, offset: 0)
        let expected: [TopicPartition: KafkaPositions.Position] = [
            events0: .init(offset: 9, epoch: 5), events1: .init(offset: 1, epoch: 5),
        ]
        #expect(positions.snapshot(worker: 0) == expected)
        #expect(positions.snapshot(worker: 1) == expected)
    }

    @Test("a partition revoked before its flush stays in every worker's snapshot, under its old epoch, until that worker commits it")
    func departed() {
        let positions = KafkaPositions(group: "g", shardCount: 4, workerCount: 2)
        _ = positions.assign([events0], claim: claim(epoch: 1))
        positions.markConsumed(events0, offset: 19)
        positions.revoke([events0], flushed: false)
        let departed: [TopicPartition: KafkaPositions.Position] = [events0: .init(offset: 20, epoch: 1)]
        #expect(positions.snapshot(worker: 0) == departed)
        #expect(positions.snapshot(worker: 1) == departed)

        // Assigned again under a new epoch before worker 1 committed: worker 1 keeps the old
        // epoch (its buffered entries were read under it, so its commit must be fenced).
        _ = positions.assign([events0], claim: claim(epoch: 2, shards: [0: 20, 1: 20, 2: 20, 3: 20]))
        positions.markConsumed(events0, offset: 25)
        positions.committed(departed, worker: 0)
        #expect(positions.snapshot(worker: 0) == [events0: .init(offset: 26, epoch: 2)])
        #expect(positions.snapshot(worker: 1) == departed)

        // A commit of another position does not release it; the departed one's does.
        positions.committed([events0: .init(offset: 26, epoch: 2)], worker: 1)
        #expect(positions.snapshot(worker: 1) == departed)
        positions.committed(departed, worker: 1)
        #expect(positions.snapshot(worker: 1) == [events0: .init(offset: 26, epoch: 2)])
    }

    @Test("a partition with no stored position has no start and stays out of every snapshot until its first record")
    func unpositioned() {
        let positions = KafkaPositions(group: "g", shardCount: 4, workerCount: 2)
        let starts = positions.assign([events0, events1], claim: claim(epoch: 2, shards: [0: 3, 1: 3, 2: 3, 3: 3]))
        #expect(starts == [events0: 3])
        // A checkpoint now must not record events1 at 0: a restart would read it from there,
        // before the offsets its group committed in Kafka.
        #expect(positions.snapshot(worker: 0) == [events0: .init(offset: 3, epoch: 2)])
        #expect(!positions.isCommitted(events1, offset: 0, shard: 0))
        positions.markConsumed(events1, offset: 500)  // the group had committed 500
        #expect(positions.snapshot(worker: 1) == [events0: .init(offset: 3, epoch: 2), events1: .init(offset: 501, epoch: 2)])
        // Revoked before any record: nothing of it is buffered, nothing departs.
        let fresh = TopicPartition(topic: "events", partition: 7)
        _ = positions.assign([fresh], claim: claim(epoch: 2))
        positions.revoke([fresh], flushed: false)
        #expect(positions.snapshot(worker: 0)[fresh] == nil)
    }

    @Test("a partition revoked after its final flush committed is forgotten")
    func revokedFlushed() {
        let positions = KafkaPositions(group: "g", shardCount: 4, workerCount: 2)
        _ = positions.assign([events0, events1], claim: claim(epoch: 1))
        positions.markConsumed(events0, offset: 3)
        positions.markConsumed(events1, offset: 3)
        positions.revoke([events0], flushed: true)
        #expect(positions.snapshot(worker: 0) == [events1: .init(offset: 4, epoch: 1)])
        #expect(!positions.isCommitted(events0, offset: 0, shard: 0))
    }
}
