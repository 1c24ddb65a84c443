import Kafka

/// The Kafka side of settling an event or a deletion: the record's partition position moves
/// past it, under the owning flush worker's drain lock together with the buffer step, so that
/// worker's drain sees both or neither (an entry committed without its position would be read
/// and applied again after a crash).
///
/// An outcome that means "later" (back-pressure, shutdown, a claim held elsewhere) leaves the
/// position where it is: the record is offered again. A rejected event is handed to the
/// dead-letter topic before its position moves, so no checkpoint can pass it unsent.
struct KafkaRecordSettlement: IngestSettlement {
    let record: KafkaRecord
    let positions: KafkaPositions
    /// The flush worker owning the user's shard.
    let worker: Int

    init(record: KafkaRecord, shard: Int, positions: KafkaPositions) {
        self.record = record
        self.positions = positions
        worker = positions.worker(ofShard: shard)
    }

    func withLock<T>(_ body: () -> T) -> T {
        positions.locks.withLock(worker: worker, body)
    }

    func settle(_ outcome: IngestOutcome, shard: Int?) {
        switch outcome {
        case .overloaded, .unavailable, .deferred:
            return
        case .rejected(let field, let reason):
            positions.deadLetters?.send(record, reason: "invalid \(field.rawValue): \(reason)")
        case .accepted, .ignored:
            break
        }
        positions.markConsumed(record.topicPartition, offset: record.offset)
    }
}
