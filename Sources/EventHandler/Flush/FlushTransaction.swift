import Buffer
import Foundation
import Logging
import ProgressStore
import Storage

/// One flush's transaction on one connection: the GDPR deletions drained with it, the entries
/// in batches, its participants' parts (the Kafka positions they account for), and the flush's commit record
/// (`flush_commits`), committed together or not at all. A data error rolls it back and it is
/// written again isolating the poison rows (the common path pays nothing for that). A COMMIT
/// whose answer was lost is reported as `CommitOutcomeUnknown`, and `resolveCommit` asks the
/// database what happened before anything is written again or dropped.
struct FlushTransaction: Sendable {
    let writer: ProgressWriter
    let deadLetters: ProgressDeadLetters
    let batchSize: Int

    /// What a drain took from the buffer.
    struct Drained {
        var entries: [PendingEntry] = []
        var eventIDs: [BufferedEventID] = []
        var deletions: [String] = []
    }

    /// What a committed transaction wrote.
    struct Written: Sendable {
        /// Each batch's entry count and result, in order.
        var batches: [(entries: Int, result: ProgressBatchResult)] = []
        /// Entries refused for their data, written to `progress_dead_letters` instead.
        var setAside = 0
        var deleted: [String: UserDataDeletion.Deleted] = [:]
    }

    /// The COMMIT of a flush got no answer: the connection broke while committing.
    struct CommitOutcomeUnknown: Error {
        var cause: PostgresError
        /// The server session that was committing.
        var session: Int32
        /// What the transaction wrote, if it committed.
        var written: Written
    }

    /// Runs the transaction of flush `flushID`. Each part writes inside it, after the rows (a
    /// Kafka checkpoint); each part's `beforeCommit` runs just before the COMMIT (deduplication
    /// marks the ids as committing in this flush, so whatever happens next a repeat can learn
    /// whether they were applied). Throws `CommitOutcomeUnknown` when the COMMIT was sent and no
    /// answer came back; any other error means nothing was written.
    func run(
        _ drained: Drained, flushID: Int64, on connection: PostgresConnection, parts: [any CommitPart], logger: Logger
    ) throws -> Written {
        var isolating = false
        while true {
            var written = Written()
            try connection.execute("BEGIN")
            do {
                // Deletions first: every entry drained with them arrived after them.
                written.deleted = try UserDataDeletion.delete(drained.deletions, namespace: writer.namespace, on: connection)
                var start = 0
                while start < drained.entries.count {
                    let end = min(start + batchSize, drained.entries.count)
                    let batch = drained.entries[start..<end]
                    if isolating {
                        let isolated = try writeIsolatingPoisonRows(batch, eventIDs: drained.eventIDs, on: connection, logger: logger)
                        written.batches.append((end - start, isolated.result))
                        written.setAside += isolated.setAside
                    } else {
                        written.batches.append((end - start, try writer.write(batch, on: connection)))
                    }
                    start = end
                }
                for part in parts { try part.write(on: connection) }
                try FlushCommits.record(flushID, on: connection)
            } catch let error as PostgresError where error.isDataError && !isolating {
                _ = try? connection.execute("ROLLBACK")
                logger.warning(
                    "a row of the flush was refused for its data; writing the flush again, setting such rows aside",
                    metadata: ["error": "\(error)"])
                isolating = true
                continue
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw error
            }
            for part in parts { part.beforeCommit() }
            let session = connection.backendPID
            do {
                try connection.execute("COMMIT")
            } catch let error as PostgresError where error.isConnectionFailure {
                throw CommitOutcomeUnknown(cause: error, session: session, written: written)
            }
            return written
        }
    }

    /// Writes `batch` inside the open transaction, splitting it in halves around every data
    /// error (SQLSTATE class 22 or 23) until the entries at fault stand alone; those go to
    /// `progress_dead_letters` with the error and their user's event ids, and the rest is
    /// written. Each attempt runs under a savepoint, so a refused one leaves nothing behind.
    /// Costs about 2·log2(batch) statements per poison row.
    private func writeIsolatingPoisonRows(
        _ batch: ArraySlice<PendingEntry>, eventIDs: [BufferedEventID], on connection: PostgresConnection, logger: Logger
    ) throws -> (result: ProgressBatchResult, setAside: Int) {
        if batch.isEmpty { return (ProgressBatchResult(), 0) }
        try connection.execute("SAVEPOINT poison_rows")
        do {
            let result = try writer.write(batch, on: connection)
            try connection.execute("RELEASE SAVEPOINT poison_rows")
            return (result, 0)
        } catch let error as PostgresError where error.isDataError {
            try connection.execute("ROLLBACK TO SAVEPOINT poison_rows")
            try connection.execute("RELEASE SAVEPOINT poison_rows")
            guard batch.count > 1 else {
                let entry = batch[batch.startIndex]
                let ids = eventIDs.filter { $0.userID == entry.userID }.map(\.id)
                try deadLetters.record(entry, eventIDs: ids, error: error, on: connection)
                logger.error(
                    "row refused by the database, set aside in progress_dead_letters",
                    metadata: [
                        "user_id": "\(entry.userID)", "goal": "\(writer.catalog.goals[Int(entry.goal)].goalId)",
                        "events": "\(entry.progress.events)", "event_ids": "\(ids.prefix(10).joined(separator: ","))",
                        "error": "\(error)",
                    ])
                return (ProgressBatchResult(), 1)
            }
            let middle = batch.startIndex + batch.count / 2
            let first = try writeIsolatingPoisonRows(batch[..<middle], eventIDs: eventIDs, on: connection, logger: logger)
            let second = try writeIsolatingPoisonRows(batch[middle...], eventIDs: eventIDs, on: connection, logger: logger)
            return (first.result + second.result, first.setAside + second.setAside)
        }
    }

    /// Asks the database whether flush `id` committed (its `flush_commits` row; see
    /// `FlushCommits.isCommitted` for why that waits for the broken session), retrying with
    /// backoff until it answers. Past `deadline()` (the stop deadline) it gives up and says "not
    /// committed": the entries are then counted as left unwritten, never written twice (for
    /// Kafka the positions committed with them, or did not, in the same transaction).
    func resolveCommit(
        _ id: Int64, _ unknown: CommitOutcomeUnknown, pool: ConnectionPool,
        backoff initialBackoff: Duration, maxBackoff: Duration, deadline: () -> ContinuousClock.Instant?, logger: Logger
    ) -> Bool {
        logger.warning(
            "the connection broke while committing a flush; asking the database whether it committed",
            metadata: ["flush_id": "\(id)", "error": "\(unknown.cause)", "session": "\(unknown.session)"])
        var backoff = initialBackoff
        while true {
            do {
                let committed = try pool.withConnection { connection -> Bool in
                    if let answer = try FlushCommits.isCommitted(id, on: connection) { return answer }
                    // Its session is still open: a client that vanished can leave it waiting
                    // (a network partition, until TCP notices). End it, so its transaction is
                    // settled one way or the other, then ask again.
                    try FlushCommits.endSession(unknown.session, on: connection)
                    guard let answer = try FlushCommits.isCommitted(id, wait: .seconds(30), on: connection) else {
                        throw PostgresError(kind: .query, message: "flush \(id) still open after its session was ended")
                    }
                    return answer
                }
                logger.info(
                    committed ? "the flush had committed" : "the flush had not committed; its entries are written again",
                    metadata: ["flush_id": "\(id)"])
                return committed
            } catch {
                if let deadline = deadline(), ContinuousClock.now >= deadline {
                    logger.critical(
                        "shutdown deadline passed without learning whether a flush committed; its entries are counted as unwritten",
                        metadata: ["flush_id": "\(id)"])
                    return false
                }
                Thread.sleep(forTimeInterval: Double(Int64.random(in: 1...max(1, Int64(backoff.seconds * 1e9)))) / 1e9)
                backoff = min(backoff * 2, maxBackoff)
            }
        }
    }
}
