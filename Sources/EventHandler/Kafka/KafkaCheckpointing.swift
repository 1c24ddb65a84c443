import Kafka
import ProgressStore
import Storage
import Synchronization

/// Kafka's place in a flush: the worker's snapshot of the consumed positions, taken under its
/// drain lock with the drain (see `KafkaPositions` for why that makes it exact), written in the
/// flush's transaction once the dead letters below it are delivered, and, when it committed,
/// the positions the worker has checkpointed. A snapshot equal to the worker's last committed
/// one is not written again.
///
/// A checkpoint refused because another member owns one of its partitions now
/// (`KafkaFencedError`) means this drain's entries cannot be committed without applying them
/// twice, nor told apart once merged: `onFenced` stops the service.
final class KafkaCheckpointing: CommitParticipant {
    private let positions: KafkaPositions
    private let onFenced: @Sendable (KafkaFencedError) -> Void
    /// Each worker's last committed snapshot.
    private let last: Mutex<[Int: [TopicPartition: KafkaPositions.Position]]>

    init(positions: KafkaPositions, onFenced: @escaping @Sendable (KafkaFencedError) -> Void) {
        self.positions = positions
        self.onFenced = onFenced
        last = Mutex([:])
    }

    func part(of flushID: Int64, worker: Int, drained: FlushTransaction.Drained) -> (any CommitPart)? {
        let snapshot = positions.snapshot(worker: worker)
        guard last.withLock({ $0[worker] ?? [:] }) != snapshot else { return nil }
        return Part(checkpointing: self, snapshot: snapshot, worker: worker)
    }

    struct Part: CommitPart {
        let checkpointing: KafkaCheckpointing
        let snapshot: [TopicPartition: KafkaPositions.Position]
        let worker: Int

        var mustCommit: Bool { true }

        func prepare() throws {
            try checkpointing.positions.awaitDeadLetters()
        }

        func write(on connection: PostgresConnection) throws {
            try checkpointing.positions.recordCheckpoint(snapshot, worker: worker, on: connection)
        }

        func committed() {
            checkpointing.positions.committed(snapshot, worker: worker)
            checkpointing.last.withLock { $0[worker] = snapshot }
        }

        func failed(_ error: any Error) {
            if let fenced = error as? KafkaFencedError { checkpointing.onFenced(fenced) }
        }
    }
}
