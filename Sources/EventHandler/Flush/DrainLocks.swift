import Synchronization

/// One lock per flush worker, held while the worker drains its shards and its participants
/// take their parts (`CommitParticipant`). A source whose bookkeeping must match the drain
/// exactly (Kafka: an entry and its record's position move) makes its change under the lock of
/// the worker owning the user's shard: the drain then sees both or neither.
final class DrainLocks: Sendable {
    private final class Lock: Sendable {
        let mutex = Mutex(())
    }

    private let locks: [Lock]

    init(workerCount: Int) {
        locks = (0..<workerCount).map { _ in Lock() }
    }

    var workerCount: Int { locks.count }

    /// The flush worker that owns buffer shard `shard`.
    func worker(ofShard shard: Int) -> Int { shard % locks.count }

    func withLock<T>(worker: Int, _ body: () throws -> T) rethrows -> T {
        try locks[worker].mutex.withLock { _ in try body() }
    }
}
