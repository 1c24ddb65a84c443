/// A transport's part in the ingest pipeline, after the buffer step: what it must do with an
/// event's outcome before anyone can act on it.
///
/// - gRPC (`ReceiptSettlement`) takes the commit receipt a durable call waits on. It must be
///   taken after the add and before the flusher is woken: it then names the first drain
///   certain to hold the event.
/// - Kafka (`KafkaRecordSettlement`) moves the record's partition position. It does so under
///   the owning flush worker's drain lock, together with the add, so a drain sees both or
///   neither and an entry never commits without its position.
protocol IngestSettlement {
    /// What settling gives back to the transport (a receipt, or nothing).
    associatedtype Settled

    /// Runs the buffer step and `settle` where the transport needs them: inside the lock that
    /// keeps them atomic with respect to a drain, or as they are.
    func withLock<T>(_ body: () -> T) -> T

    /// The outcome of the buffer step. `shard` is the user's buffer shard when screening found
    /// it (nil for an event decided before matching).
    func settle(_ outcome: IngestOutcome, shard: Int?) -> Settled
}

extension IngestSettlement {
    func withLock<T>(_ body: () -> T) -> T { body() }
}
