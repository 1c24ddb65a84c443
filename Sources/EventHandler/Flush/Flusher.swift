import Buffer
import Foundation
import Logging
import ProgressStore
import Storage

/// The flush side of the buffer: `FLUSH_WORKERS` worker threads, shard `s` owned by worker
/// `s % workers`. Each flushes on the interval, worker `w` at `w/workers` of it (staggered, so
/// their writes do not coincide); the size trigger wakes them all at once.
final class Flusher: Sendable {
    let workers: [FlushWorker]
    let stats = FlushStats()
    private let buffer: EventBuffer

    init(
        buffer: EventBuffer, store: any FlushStore, workerCount: Int, configuration: FlushWorker.Configuration,
        metrics: ServiceMetrics, participants: [any CommitParticipant] = [], drainLocks: DrainLocks? = nil, logger: Logger
    ) {
        let drainLocks = drainLocks ?? DrainLocks(workerCount: workerCount)
        precondition(drainLocks.workerCount == workerCount, "one drain lock per flush worker")
        let stats = self.stats
        self.buffer = buffer
        workers = (0..<workerCount).map { w in
            FlushWorker(
                index: w, shards: Array(stride(from: w, to: buffer.shardCount, by: workerCount)),
                phase: Double(w) / Double(workerCount),
                buffer: buffer, store: store, configuration: configuration, stats: stats, metrics: metrics,
                participants: participants, drainLocks: drainLocks, logger: logger)
        }
    }

    func start() {
        for worker in workers { worker.start() }
    }

    /// The receipt for an event of `userID` added before this call: its shard's worker and that
    /// worker's commit ticket (`CommitSequence.ticket`).
    func receipt(userID: String) -> CommitReceipt {
        receipt(shard: buffer.shardIndex(of: userID))
    }

    /// The receipt for an event of the user in buffer shard `shard`.
    func receipt(shard: Int) -> CommitReceipt {
        let worker = shard % workers.count
        return CommitReceipt(commits: workers[worker].commits, ticket: workers[worker].commits.ticket())
    }

    /// Calls waiting for a commit, over all workers (the `commit_waiters` gauge).
    var waiterCount: Int { workers.reduce(0) { $0 + $1.commits.waiterCount } }

    /// The size trigger: wake every worker now.
    func requestFlush() {
        for worker in workers { worker.requestFlush() }
    }

    /// Flushes everything buffered now and waits until every worker has committed it (and its
    /// Kafka positions). Blocking. False if `deadline` passed first (the database is away).
    func flushAndWait(deadline: ContinuousClock.Instant) -> Bool {
        // Every worker is woken first, so they flush at once, not one after the other.
        let tickets = workers.map { ($0.commits, $0.commits.ticket()) }
        for worker in workers { worker.requestFlush() }
        return tickets.allSatisfy { commits, ticket in commits.waitUntilCommitted(ticket, deadline: deadline) }
    }

    /// Flushes everything and stops the workers. Blocking (call it off the cooperative pool).
    /// Returns the number of entries left unwritten at the deadline (0 when all landed).
    func stop(deadline: ContinuousClock.Instant) -> Int {
        for worker in workers { worker.stop(deadline: deadline) }
        var left = 0
        for worker in workers {
            let remaining = max(.zero, deadline - ContinuousClock.now) + .seconds(1)
            if worker.waitUntilFinished(timeout: remaining) {
                left += worker.abandonedEntries.load(ordering: .acquiring)
            } else {
                // Still inside a write (bounded by the statement timeout): count what is buffered.
                left += worker.shards.reduce(0) { $0 + buffer.entryCount(shard: $1) }
            }
        }
        return left
    }
}

/// Where an accepted event will be committed: `ACK_MODE=durable` answers when it is told.
struct CommitReceipt: Sendable {
    fileprivate let commits: CommitSequence
    fileprivate let ticket: Int
    /// Where its call holds a place (`ACK_WAITING_LIMIT`), given back when the wait ends.
    fileprivate var place: CommitWaitLimit? = nil

    /// The receipt for a drain of `commits` numbered `ticket` or later.
    init(commits: CommitSequence, ticket: Int) {
        self.commits = commits
        self.ticket = ticket
    }

    /// The same receipt, its wait holding a place of `limit` (taken already by the caller).
    func holding(_ limit: CommitWaitLimit) -> CommitReceipt {
        var receipt = self
        receipt.place = limit
        return receipt
    }

    /// `done(true)` once the flush holding the event has committed; `done(false)` if the
    /// service stopped first. Runs at once, or on a flush worker's thread: keep it short.
    /// `cancel()` on the returned wait forgets it (`done` is then never called). Either way
    /// the place it holds is given back, once.
    @discardableResult
    func whenCommitted(_ done: @escaping @Sendable (Bool) -> Void) -> CommitWait {
        guard let place else { return CommitWait(commits: commits, number: commits.whenCommitted(ticket, done), place: nil) }
        let number = commits.whenCommitted(ticket) { committed in
            place.giveBack()
            done(committed)
        }
        return CommitWait(commits: commits, number: number, place: place)
    }
}

/// A registered wait for a commit, cancelled when the call that waits ends first.
struct CommitWait: Sendable {
    fileprivate let commits: CommitSequence
    fileprivate let number: Int?
    fileprivate let place: CommitWaitLimit?

    func cancel() {
        // Only a wait still registered gives its place back here: one already answered gave it
        // back when it was.
        if let number, commits.cancel(number) { place?.giveBack() }
    }
}
