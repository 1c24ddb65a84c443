import Buffer
import Foundation
import Logging
import ProgressStore
import Storage

/// Where a flush worker writes its drains: PostgreSQL in the service (`PostgresFlushStore`),
/// a scripted store in the worker's in-process tests. The worker decides what happens to a
/// drain (restored, resolved, fenced, counted); the store only writes it and answers.
protocol FlushStore: Sendable {
    /// The namespace the rows are written in (named in the audit line of a GDPR deletion).
    var namespace: String { get }

    /// Writes `drained` as flush `flushID` in one transaction, with each participant's part
    /// (`CommitPart.write` after the rows, `beforeCommit` just before the COMMIT). Throws
    /// `FlushTransaction.CommitOutcomeUnknown` when the commit may or may not have happened;
    /// any other error (a part's too: `KafkaFencedError`) means nothing was written.
    func write(
        _ drained: FlushTransaction.Drained, flushID: Int64, parts: [any CommitPart], logger: Logger
    ) throws -> FlushTransaction.Written

    /// Whether flush `flushID`, whose commit got no answer, committed. Retries until it learns;
    /// past `deadline()` (the stop deadline) it answers false.
    func resolveCommit(
        _ flushID: Int64, _ unknown: FlushTransaction.CommitOutcomeUnknown,
        deadline: () -> ContinuousClock.Instant?, logger: Logger
    ) -> Bool

    /// Deletes commit records older than `age`; returns how many.
    func pruneCommitRecords(olderThan age: Duration) throws -> Int

    /// Closes connections idle past their limit (called after a successful flush).
    func reapIdleConnections()
}

/// The service's flush store: a `FlushTransaction` on a connection from the pool.
struct PostgresFlushStore: FlushStore {
    let pool: ConnectionPool
    let transaction: FlushTransaction
    /// Backoff between attempts to learn a commit's outcome.
    let initialBackoff: Duration
    let maxBackoff: Duration

    init(pool: ConnectionPool, writer: ProgressWriter, batchSize: Int, initialBackoff: Duration, maxBackoff: Duration) {
        self.pool = pool
        transaction = FlushTransaction(
            writer: writer, deadLetters: ProgressDeadLetters(catalog: writer.catalog, namespace: writer.namespace),
            batchSize: batchSize)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    var namespace: String { transaction.writer.namespace }

    func write(
        _ drained: FlushTransaction.Drained, flushID: Int64, parts: [any CommitPart], logger: Logger
    ) throws -> FlushTransaction.Written {
        try pool.withConnection { connection in
            try transaction.run(drained, flushID: flushID, on: connection, parts: parts, logger: logger)
        }
    }

    func resolveCommit(
        _ flushID: Int64, _ unknown: FlushTransaction.CommitOutcomeUnknown,
        deadline: () -> ContinuousClock.Instant?, logger: Logger
    ) -> Bool {
        transaction.resolveCommit(
            flushID, unknown, pool: pool, backoff: initialBackoff, maxBackoff: maxBackoff, deadline: deadline, logger: logger)
    }

    func pruneCommitRecords(olderThan age: Duration) throws -> Int {
        try pool.withConnection { try FlushCommits.prune(olderThan: Int(age.seconds), on: $0) }
    }

    func reapIdleConnections() { pool.reapIdle() }
}
