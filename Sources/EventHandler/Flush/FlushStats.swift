import ProgressStore
import Storage
import Synchronization

/// What the flush workers did, lock-free; read by logs, tests and, at each scrape, the metrics.
final class FlushStats: Sendable {
    struct Snapshot: Sendable, Equatable {
        var flushes = 0
        var batches = 0
        var entriesWritten = 0
        var rowsUpdated = 0
        var rowsInserted = 0
        var unassignedEvents = 0
        var failures = 0
        var consecutiveFailures = 0
        var entriesSetAside = 0
        /// GDPR deletions committed (users), and the progress rows they deleted.
        var usersDeleted = 0
        var rowsDeleted = 0
    }

    private let flushes = Atomic<Int>(0)
    private let batches = Atomic<Int>(0)
    private let entriesWritten = Atomic<Int>(0)
    private let rowsUpdated = Atomic<Int>(0)
    private let rowsInserted = Atomic<Int>(0)
    private let unassignedEvents = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let consecutiveFailures = Atomic<Int>(0)
    private let entriesSetAside = Atomic<Int>(0)
    private let usersDeleted = Atomic<Int>(0)
    private let rowsDeleted = Atomic<Int>(0)

    func recordBatch(entries: Int, result: ProgressBatchResult) {
        batches.add(1, ordering: .relaxed)
        entriesWritten.add(entries, ordering: .relaxed)
        rowsUpdated.add(result.updated, ordering: .relaxed)
        rowsInserted.add(result.inserted, ordering: .relaxed)
        unassignedEvents.add(result.unassignedEvents, ordering: .relaxed)
    }

    func recordFlush() {
        flushes.add(1, ordering: .relaxed)
        consecutiveFailures.store(0, ordering: .relaxed)
    }

    /// Entries the database refused for their data, stored in `progress_dead_letters` instead.
    func recordSetAside(_ count: Int) {
        entriesSetAside.add(count, ordering: .relaxed)
    }

    /// GDPR deletions that committed: `users` users, `rows` progress rows.
    func recordDeletions(users: Int, rows: Int) {
        usersDeleted.add(users, ordering: .relaxed)
        rowsDeleted.add(rows, ordering: .relaxed)
    }

    func recordFailure() {
        failures.add(1, ordering: .relaxed)
        consecutiveFailures.add(1, ordering: .relaxed)
    }

    var snapshot: Snapshot {
        Snapshot(
            flushes: flushes.load(ordering: .relaxed), batches: batches.load(ordering: .relaxed),
            entriesWritten: entriesWritten.load(ordering: .relaxed),
            rowsUpdated: rowsUpdated.load(ordering: .relaxed), rowsInserted: rowsInserted.load(ordering: .relaxed),
            unassignedEvents: unassignedEvents.load(ordering: .relaxed), failures: failures.load(ordering: .relaxed),
            consecutiveFailures: consecutiveFailures.load(ordering: .relaxed),
            entriesSetAside: entriesSetAside.load(ordering: .relaxed),
            usersDeleted: usersDeleted.load(ordering: .relaxed), rowsDeleted: rowsDeleted.load(ordering: .relaxed))
    }
}
