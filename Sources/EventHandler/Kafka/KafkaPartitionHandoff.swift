import Foundation
import Kafka
import Logging
import ProgressStore
import Storage

/// What a rebalance does to this member's partitions: where an assigned one starts, and what
/// must be durable before a revoked one goes to its next owner.
protocol KafkaPartitionHandoff: Sendable {
    /// Claims the partitions and returns where each starts (`KafkaConsumerDelegate`).
    func assigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]
    /// Returns once what came from the partitions is committed, or could not be in time.
    func revoked(_ partitions: [TopicPartition])
}

/// The handoff through the positions stored in PostgreSQL (`KafkaCheckpoints`): an assigned
/// partition is claimed under a new epoch (fencing its previous owner's checkpoints) and
/// starts at its smallest shard position; a revoked one is flushed first, so its next owner
/// starts where everything read from it is committed.
final class StoredPositionsHandoff: KafkaPartitionHandoff {
    private let positions: KafkaPositions
    private let flusher: Flusher
    private let pool: ConnectionPool
    /// How long a revocation may wait for its final flush.
    private let revokeTimeout: Duration
    /// Names this member in `kafka_partition_owners`.
    private let owner: String
    private let logger: Logger

    init(positions: KafkaPositions, flusher: Flusher, pool: ConnectionPool, revokeTimeout: Duration, logger: Logger) {
        self.positions = positions
        self.flusher = flusher
        self.pool = pool
        self.revokeTimeout = revokeTimeout
        self.logger = logger
        owner = "\(ProcessInfo.processInfo.hostName)/\(getpid())"
    }

    func assigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        let group = positions.group
        // The stored positions decide where to start. Without them the partition cannot start
        // safely, so this retries until the database answers (the group waits meanwhile).
        var backoff = Duration.milliseconds(100)
        while true {
            do {
                let claim = try pool.withConnection { connection in
                    try KafkaCheckpoints.claim(
                        group: group, partitions: partitions.map { ($0.topic, $0.partition) }, owner: owner, on: connection)
                }
                let starts = positions.assign(partitions, claim: claim)
                logger.info(
                    "kafka partitions assigned",
                    metadata: [
                        "partitions": "\(partitions.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.map { "\($0):\(starts[$0].map(String.init) ?? "group")" }.joined(separator: " "))",
                        "epochs": "\(claim.epochs.map { "\($0.epoch)" }.joined(separator: ","))",
                    ])
                return starts
            } catch {
                logger.error("cannot read kafka checkpoints; retrying", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: Double(backoff.components.attoseconds) / 1e18 + Double(backoff.components.seconds))
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    func revoked(_ partitions: [TopicPartition]) {
        // Everything consumed from them must be committed, with its positions, before another
        // member starts them from those positions.
        let flushed = flusher.flushAndWait(deadline: .now + revokeTimeout)
        if flushed {
            logger.info("kafka partitions revoked after their final flush", metadata: ["partitions": "\(partitions.count)"])
        } else {
            logger.error(
                "kafka partitions revoked before their events could be committed (database unreachable); committed later unless their next owner claims them first, which fences this member",
                metadata: ["partitions": "\(partitions.count)"])
        }
        positions.revoke(partitions, flushed: flushed)
    }
}
