import Buffer
import EventRules
import GameEvents
import Kafka
import Logging
import Testing

@testable import EventHandler
@testable import ProgressStore

/// Kafka records through the ingest pipeline, in process: `KafkaIngest` as the consumer calls
/// it, over the ingestor and flusher of IngestPipelineTests (a scripted store where PostgreSQL
/// is) and real `KafkaPositions`. What a broker and a database add is KafkaIngestionTests'.
@Suite("Kafka ingest: records settled by their positions, without a broker")
struct KafkaIngestTests {
    static let logins = "prod.iam.account.v1.userLoggedIn"
    static let gdpr = "prod.iam.account.v1.gdprRequestDataDeletionResponse"
    static let partition = TopicPartition(topic: logins, partition: 0)

    /// Assigns partitions with a claim the test writes: the stored positions a database would hold.
    final class ClaimHandoff: KafkaPartitionHandoff {
        let positions: KafkaPositions
        let claim: KafkaCheckpoints.Claim

        init(positions: KafkaPositions, claim: KafkaCheckpoints.Claim) {
            self.positions = positions
            self.claim = claim
        }

        func assigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] { positions.assign(partitions, claim: claim) }
        func revoked(_ partitions: [TopicPartition]) { positions.revoke(partitions, flushed: true) }
    }

    /// A member holding `logins`[0] (and the GDPR topic's partition 0), from `committed` on
    /// for every shard (nil: no stored position).
    struct Member {
        let pipeline: IngestPipelineTests.Pipeline
        let positions: KafkaPositions
        let ingest: KafkaIngest

        init(committed: Int64? = nil, bufferLimit: Int = 10_000, deduplicate: Bool = false) {
            positions = KafkaPositions(group: "g", shardCount: 4, workerCount: 1)
            pipeline = IngestPipelineTests.Pipeline(deduplicate: deduplicate, bufferLimit: bufferLimit, positions: positions)
            let stored: [String: [Int32: [Int16: Int64]]] =
                committed.map { offset in [KafkaIngestTests.logins: [0: [0: offset, 1: offset, 2: offset, 3: offset]]] } ?? [:]
            let claim = KafkaCheckpoints.Claim(
                epochs: [.init(topic: KafkaIngestTests.logins, partition: 0, epoch: 1), .init(topic: KafkaIngestTests.gdpr, partition: 0, epoch: 1)],
                positions: stored)
            ingest = KafkaIngest(
                ingestor: pipeline.ingestor, positions: positions, handoff: ClaimHandoff(positions: positions, claim: claim),
                gdprTopic: KafkaIngestTests.gdpr, logger: Logger(label: "kafka-ingest-test"))
            _ = ingest.partitionsAssigned([KafkaIngestTests.partition, TopicPartition(topic: KafkaIngestTests.gdpr, partition: 0)])
        }

        /// The position the last flush checkpointed for `logins`[0].
        var checkpointed: Int64? { pipeline.rig.store.snapshot.checkpoints.last?[KafkaIngestTests.partition]?.offset }
    }

    static func login(_ offset: Int64, user: String, id: String = "") throws -> KafkaRecord {
        let message = Accelbyte_Iam_Account_V1_UserLoggedIn.with {
            $0.id = id
            $0.namespace = IngestPipelineTests.namespace
            $0.userID = user
        }
        return KafkaRecord(
            topic: logins, partition: 0, offset: offset, key: nil, value: Array(try message.jsonString().utf8), contentType: nil)
    }

    static func raw(_ offset: Int64, _ value: String) -> KafkaRecord {
        KafkaRecord(topic: logins, partition: 0, offset: offset, key: nil, value: Array(value.utf8), contentType: nil)
    }

    @Test("records are applied once and counted under kafka; the flush checkpoints their position; a member starting from it skips them")
    func appliedAndCheckpointed() throws {
        let records = try (0..<6).map { try Self.login(Int64($0), user: "u\($0 % 3)") }
        let first = Member()
        defer { first.pipeline.stop() }
        #expect(first.ingest.consume(batch: records) == 6)
        #expect(first.pipeline.ingestor.counters.snapshot(.kafka, .login).accepted == 6)
        #expect(first.pipeline.ingestor.counters.snapshot(.grpc, .login).received == 0)
        #expect(first.pipeline.rig.flush())
        #expect(first.checkpointed == 6)
        for user in 0..<3 { #expect(first.pipeline.applied("u\(user)", "logins") == 2) }

        // The next owner of the partition, from the stored position: nothing is applied twice.
        let next = Member(committed: 6)
        defer { next.pipeline.stop() }
        #expect(next.ingest.consume(batch: records) == 6)
        #expect(next.ingest.skippedCount(.alreadyApplied) == 6)
        #expect(next.pipeline.ingestor.counters.snapshot(.kafka, .login).received == 0)
        #expect(next.pipeline.rig.buffer.pendingCount == 0)
    }

    @Test("a full buffer: the batch is taken up to the first record with no room, whose position does not move; after a flush the rest is applied once")
    func fullBufferPauses() throws {
        // Each user is an entry: room for three.
        let member = Member(bufferLimit: 3)
        defer { member.pipeline.stop() }
        let records = try (0..<5).map { try Self.login(Int64($0), user: "u\($0)") }
        #expect(member.ingest.consume(batch: records) == 3)
        #expect(!member.ingest.hasRoom())
        #expect(member.pipeline.ingestor.counters.snapshot(.kafka, .login)[.rejected(.bufferFull)] == 1)
        #expect(member.pipeline.rig.flush())
        #expect(member.checkpointed == 3, "the refused record is read again: its position did not move")
        #expect(member.ingest.hasRoom())
        #expect(member.ingest.consume(batch: Array(records[3...])) == 2)
        #expect(member.pipeline.rig.flush())
        #expect(member.checkpointed == 5)
        for user in 0..<5 { #expect(member.pipeline.applied("u\(user)", "logins") == 1) }
    }

    @Test("undecodable and invalid records are skipped and counted, and their position moves past them")
    func badRecords() throws {
        let member = Member()
        defer { member.pipeline.stop() }
        let records = [
            try Self.login(0, user: "u0"),
            Self.raw(1, "not json"),
            try Self.login(2, user: ""),  // invalid: no user
            KafkaRecord(topic: "prod.other.topic", partition: 0, offset: 0, key: nil, value: [], contentType: nil),
            try Self.login(3, user: "u1"),
        ]
        #expect(member.ingest.consume(batch: records) == 5)
        #expect(member.ingest.skippedCount(.malformed) == 1)
        #expect(member.ingest.skippedCount(.unknownTopic) == 1)
        #expect(member.pipeline.ingestor.counters.snapshot(.kafka, .login)[.rejected(.invalidUserID)] == 1)
        #expect(member.pipeline.rig.flush())
        #expect(member.checkpointed == 4)
        #expect(member.pipeline.applied("u0", "logins") == 1)
        #expect(member.pipeline.applied("u1", "logins") == 1)
    }

    @Test("a repeated id is applied once; its position moves as for any record taken")
    func repeatedID() throws {
        let member = Member(deduplicate: true)
        defer { member.pipeline.stop() }
        let records = try [Self.login(0, user: "u0", id: "e-1"), Self.login(1, user: "u0", id: "e-1"), Self.login(2, user: "u0", id: "e-2")]
        #expect(member.ingest.consume(batch: records) == 3)
        #expect(member.pipeline.ingestor.counters.snapshot(.kafka, .login)[.ignored(.duplicate)] == 1)
        #expect(member.pipeline.rig.flush())
        #expect(member.checkpointed == 3)
        #expect(member.pipeline.applied("u0", "logins") == 2)
    }

    @Test("a GDPR deletion record drops the user's buffered events and is committed by the flush with its position")
    func deletion() throws {
        let member = Member()
        defer { member.pipeline.stop() }
        #expect(member.ingest.consume(batch: [try Self.login(0, user: "gone"), try Self.login(1, user: "kept")]) == 2)
        let request = Accelbyte_Iam_Account_V1_GdprRequestDataDeletionResponse.with {
            $0.userID = "gone"
            $0.namespace = IngestPipelineTests.namespace
        }
        let record = KafkaRecord(
            topic: Self.gdpr, partition: 0, offset: 0, key: nil, value: Array(try request.jsonString().utf8), contentType: nil)
        #expect(member.ingest.consume(record) == .taken)
        #expect(member.pipeline.rig.flush())
        let store = member.pipeline.rig.store.snapshot
        #expect(store.deletedUsers == ["gone"])
        #expect(member.pipeline.applied("gone", "logins") == nil)
        #expect(member.pipeline.applied("kept", "logins") == 1)
        #expect(store.checkpoints.last?[TopicPartition(topic: Self.gdpr, partition: 0)]?.offset == 1)
    }
}
