import Buffer
import Dispatch
import Foundation
import Kafka
import Logging
import Storage
import Synchronization

/// One flush thread: owns a fixed set of shards (shard `s` belongs to worker `s % workers`), so a
/// user's entries always go through the same worker and its writes stay in order.
///
/// Threading: everything here that blocks (libpq through the pool) runs on this worker's own
/// `Thread`, never on the Swift cooperative pool. Other threads only signal it.
///
/// A cycle drains the worker's shards, deletes the rows of the users whose GDPR deletion it
/// drained (`EventBuffer.deleteUser`), writes the entries in batches of `batchSize` on one pooled
/// connection, and on a failure gives the unwritten entries back to the buffer (where newer
/// events merge on top of them) and retries after an exponential backoff with jitter.
///
/// Workers flush on the interval at staggered phases (worker `w` of `n` at `w/n` of it), so
/// their transactions do not reach PostgreSQL all at once: at a steady load the database sees
/// `n` small writes spread over each interval instead of one burst of `n` at the same instant,
/// and on a small machine the burst no longer takes every core from the answering threads.
///
/// Drains are numbered by the worker's `CommitSequence`: `ACK_MODE=durable` answers once the
/// drain of its ticket has committed, and `flushAndWait` waits the same way.
final class FlushWorker: Sendable {
    struct Configuration: Sendable {
        var interval: Duration
        var batchSize: Int
        var initialBackoff: Duration = .milliseconds(100)
        var maxBackoff: Duration = .seconds(5)
        /// How long `flush_commits` rows are kept: longer than deduplication may ask about them.
        var commitRecordRetention: Duration = .seconds(7_200)
    }

    let index: Int
    let shards: [Int]
    /// Where in each interval this worker's flushes fall, as a fraction of it (0..<1).
    let phase: Double
    private let buffer: EventBuffer
    private let writer: ProgressWriter
    private let deadLetters: ProgressDeadLetters
    private let pool: ConnectionPool
    private let configuration: Configuration
    private let stats: FlushStats
    private let metrics: ServiceMetrics
    /// Kafka positions to checkpoint with each flush; nil when Kafka ingestion is off.
    private let positions: KafkaPositions?
    /// Called when a checkpoint is refused because another member owns a partition now.
    private let onFenced: @Sendable (KafkaFencedError) -> Void
    private let logger: Logger

    private let wake = DispatchSemaphore(value: 0)
    private let wakePending = Atomic<Bool>(false)
    /// Set by `stop`: the instant by which the final flush must be done.
    private let stopDeadline = Mutex<ContinuousClock.Instant?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    /// Entries still buffered when the worker gave up at its stop deadline (0 if it drained all).
    let abandonedEntries = Atomic<Int>(0)
    /// This worker's drains and who waits for them to commit.
    let commits = CommitSequence()

    /// Told the event ids of each drain that committed, its flush id, and what `beforeCommit`
    /// answered for it (deduplication records them).
    private let onCommitted: @Sendable (_ ids: [String], _ flush: Int64, _ marked: Bool) -> Void
    /// Told a drain's event ids and flush id just before its COMMIT (deduplication marks them as
    /// committing in that flush, and answers whether every mark was written). Blocking, on this
    /// worker's thread.
    private let beforeCommit: @Sendable (_ ids: [String], _ flush: Int64) -> Bool

    init(
        index: Int, shards: [Int], phase: Double = 0, buffer: EventBuffer, writer: ProgressWriter, pool: ConnectionPool,
        configuration: Configuration, stats: FlushStats, metrics: ServiceMetrics, positions: KafkaPositions?,
        onFenced: @escaping @Sendable (KafkaFencedError) -> Void,
        onCommitted: @escaping @Sendable ([String], Int64, Bool) -> Void = { _, _, _ in },
        beforeCommit: @escaping @Sendable ([String], Int64) -> Bool = { _, _ in false }, logger: Logger
    ) {
        self.onCommitted = onCommitted
        self.beforeCommit = beforeCommit
        self.index = index
        self.shards = shards
        self.phase = phase
        self.buffer = buffer
        self.writer = writer
        self.deadLetters = ProgressDeadLetters(catalog: writer.catalog, namespace: writer.namespace)
        self.pool = pool
        self.configuration = configuration
        self.stats = stats
        self.metrics = metrics
        self.positions = positions
        self.onFenced = onFenced
        var logger = logger
        logger[metadataKey: "flush_worker"] = "\(index)"
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in
            self.run()
            self.commits.stop()
            self.finished.signal()
        }
        thread.name = "flush-worker-\(index)"
        thread.start()
    }

    /// Asks for a flush now (the size trigger). Cheap and idempotent until the worker wakes.
    func requestFlush() {
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            wake.signal()
        }
    }

    /// Asks the worker to flush everything it holds and exit, giving up at `deadline`.
    func stop(deadline: ContinuousClock.Instant) {
        stopDeadline.withLock { $0 = deadline }
        wake.signal()
    }

    /// Waits for the worker thread to exit. Returns false on timeout.
    func waitUntilFinished(timeout: Duration) -> Bool {
        finished.wait(timeout: .now() + timeout.seconds) == .success
    }

    // MARK: - The loop

    /// The first tick of this worker's schedule strictly after `now`: ticks fall at
    /// `origin + k·interval`, with `origin` offset by the worker's phase.
    static func nextTick(after now: ContinuousClock.Instant, origin: ContinuousClock.Instant, interval: Duration) -> ContinuousClock.Instant {
        guard now >= origin else { return origin }
        let elapsed = (now - origin) / interval
        return origin + interval * (elapsed.rounded(.down) + 1)
    }

    private func run() {
        let origin = ContinuousClock.now + configuration.interval * (1 + phase)
        var nextFlush = origin
        var backoff = configuration.initialBackoff
        var failing = false
        var lastCheckpoint: [TopicPartition: KafkaPositions.Position] = [:]
        while true {
            let deadline = stopDeadline.withLock { $0 }
            if deadline == nil {
                let wait = max(.zero, nextFlush - ContinuousClock.now)
                _ = wake.wait(timeout: .now() + wait.seconds)
                wakePending.store(false, ordering: .releasing)
            }
            let stopping = stopDeadline.withLock { $0 }
            // The next tick of the schedule, whatever woke this cycle (the size trigger, a
            // flushAndWait, a retry): the phase holds, so the workers stay apart.
            nextFlush = Self.nextTick(after: ContinuousClock.now, origin: origin, interval: configuration.interval)

            let outcome = flushOnce(lastCheckpoint: &lastCheckpoint)
            switch outcome {
            case .success(let rows):
                if failing {
                    failing = false
                    logger.info("database writes succeed again", metadata: ["rows": "\(rows)"])
                }
                backoff = configuration.initialBackoff
                if index == 0 { pool.reapIdle() }
                if let stopping, shards.allSatisfy({ buffer.isEmpty(shard: $0) }) || ContinuousClock.now >= stopping {
                    let left = shards.reduce(0) { $0 + buffer.entryCount(shard: $1) }
                    abandonedEntries.store(left, ordering: .releasing)
                    return
                }
            case .failure(let error, let kept):
                if !failing {
                    failing = true
                    logger.error(
                        "flush failed, entries kept in the buffer and retried with backoff",
                        metadata: ["error": "\(error)", "entries": "\(kept)"])
                } else {
                    logger.debug("flush failed again", metadata: ["error": "\(error)", "backoff_s": "\(backoff.seconds)"])
                }
                if let stopping, ContinuousClock.now >= stopping {
                    let left = shards.reduce(0) { $0 + buffer.entryCount(shard: $1) }
                    abandonedEntries.store(left, ordering: .releasing)
                    logger.critical("shutdown deadline passed with entries unwritten", metadata: ["entries": "\(left)"])
                    return
                }
                // Full jitter: sleep a random time up to the current backoff, then double it.
                let jittered = Duration.nanoseconds(Int64.random(in: 1...max(1, Int64(backoff.seconds * 1e9))))
                var sleep = jittered
                if let stopping { sleep = min(sleep, max(.zero, stopping - ContinuousClock.now)) }
                _ = wake.wait(timeout: .now() + sleep.seconds)
                backoff = min(backoff * 2, configuration.maxBackoff)
                nextFlush = ContinuousClock.now
            }
        }
    }

    // MARK: - Poison rows

    /// Writes `batch` inside the open transaction, splitting it in halves around every data
    /// error (SQLSTATE class 22 or 23) until the entries at fault stand alone; those go to
    /// `progress_dead_letters` with the error and their user's event ids, and the rest is
    /// written. Each attempt runs under a savepoint, so a refused one leaves nothing behind.
    /// Costs about 2·log2(batch) statements per poison row.
    private func writeIsolatingPoisonRows(
        _ batch: ArraySlice<PendingEntry>, eventIDs: [BufferedEventID], on connection: PostgresConnection
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
            let first = try writeIsolatingPoisonRows(batch[..<middle], eventIDs: eventIDs, on: connection)
            let second = try writeIsolatingPoisonRows(batch[middle...], eventIDs: eventIDs, on: connection)
            return (first.result + second.result, first.setAside + second.setAside)
        }
    }

    /// Counts the committed batches and their latencies.
    private func recordCommitted(
        _ results: [(entries: Int, result: ProgressBatchResult)], entries: [PendingEntry],
        into total: inout ProgressBatchResult
    ) {
        var start = 0
        let now = MonotonicTime.now
        for (count, result) in results {
            total = total + result
            stats.recordBatch(entries: count, result: result)
            metrics.recordCommit(of: entries[start..<(start + count)], at: now)
            start += count
        }
    }

    // MARK: - GDPR deletions

    /// Counts committed deletions and writes the audit line of each: the user, the namespace,
    /// what was deleted, the flush; no other personal data.
    private func recordDeletions(_ deleted: [String: UserDataDeletion.Deleted], flushID: Int64) {
        stats.recordDeletions(users: deleted.count, rows: deleted.values.reduce(0) { $0 + $1.progressRows })
        for (user, rows) in deleted.sorted(by: { $0.key < $1.key }) {
            logger.notice(
                "audit: GDPR deletion committed, every stored row of the user deleted",
                metadata: [
                    "audit": "gdpr_deletion", "user_id": "\(user)", "namespace": "\(writer.namespace)",
                    "progress_rows": "\(rows.progressRows)", "dead_letters": "\(rows.deadLetters)", "flush_id": "\(flushID)",
                ])
        }
    }

    // MARK: - Commit records

    /// The COMMIT of a flush got no answer: the connection broke while committing.
    private struct CommitOutcomeUnknown: Error {
        var cause: PostgresError
        /// The server session that was committing.
        var session: Int32
    }

    /// Asks the database whether flush `id` committed (its `flush_commits` row; see
    /// `FlushCommits.isCommitted` for why that waits for the broken session), retrying with
    /// backoff until it answers. Past the stop deadline it gives up and says "not committed":
    /// the entries are then counted as left unwritten, never written twice (for Kafka the
    /// positions committed with them, or did not, in the same transaction).
    private func resolveCommit(_ id: Int64, _ unknown: CommitOutcomeUnknown) -> Bool {
        logger.warning(
            "the connection broke while committing a flush; asking the database whether it committed",
            metadata: ["flush_id": "\(id)", "error": "\(unknown.cause)", "session": "\(unknown.session)"])
        var backoff = configuration.initialBackoff
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
                if let deadline = stopDeadline.withLock({ $0 }), ContinuousClock.now >= deadline {
                    logger.critical(
                        "shutdown deadline passed without learning whether a flush committed; its entries are counted as unwritten",
                        metadata: ["flush_id": "\(id)"])
                    return false
                }
                Thread.sleep(forTimeInterval: Double(Int64.random(in: 1...max(1, Int64(backoff.seconds * 1e9)))) / 1e9)
                backoff = min(backoff * 2, configuration.maxBackoff)
            }
        }
    }

    private let lastPrune = Mutex<ContinuousClock.Instant?>(nil)

    /// Deletes commit records past their retention, once a minute (worker 0 only).
    private func pruneCommitRecords() {
        let due = lastPrune.withLock { last -> Bool in
            if let last, ContinuousClock.now - last < .seconds(60) { return false }
            last = ContinuousClock.now
            return true
        }
        guard due else { return }
        do {
            let gone = try pool.withConnection {
                try FlushCommits.prune(olderThan: Int(configuration.commitRecordRetention.seconds), on: $0)
            }
            if gone > 0 { logger.debug("commit records pruned", metadata: ["rows": "\(gone)"]) }
        } catch {
            logger.warning("could not prune commit records (retried in a minute)", metadata: ["error": "\(error)"])
        }
    }

    private enum Outcome {
        case success(rows: Int)
        case failure(any Error, kept: Int)
    }

    /// Drains this worker's shards and writes them. On a failure, whatever was not committed
    /// goes back into the buffer.
    private func flushOnce(lastCheckpoint: inout [TopicPartition: KafkaPositions.Position]) -> Outcome {
        var entries: [PendingEntry] = []
        var eventIDs: [BufferedEventID] = []
        var deletions: [String] = []
        var snapshot: [TopicPartition: KafkaPositions.Position] = [:]
        // Numbered before any shard is drained: see `CommitSequence.ticket`.
        let drain = commits.startDrain()
        if let positions {
            // Drain and snapshot under the ingest lock: see KafkaPositions for why this makes
            // the checkpoint exact.
            positions.withIngestLock(worker: index) {
                for shard in shards {
                    entries.append(contentsOf: buffer.drain(shard: shard, eventIDs: &eventIDs, deletions: &deletions))
                }
                snapshot = positions.snapshot(worker: index)
            }
        } else {
            for shard in shards {
                entries.append(contentsOf: buffer.drain(shard: shard, eventIDs: &eventIDs, deletions: &deletions))
            }
        }
        let checkpointing = positions != nil && snapshot != lastCheckpoint
        if entries.isEmpty && deletions.isEmpty && !checkpointing {
            commits.committed(drain: drain)
            return .success(rows: 0)
        }

        // The whole cycle is one transaction: the rows, the Kafka positions they account for, the
        // dead letters and the flush's commit record (`flush_commits`) commit together or not
        // at all.
        let started = ContinuousClock.now
        let flushID = FlushCommits.newID()
        let ids = eventIDs.map(\.id)
        var written = 0
        var committed = false
        var marked = false
        var batches = 0
        var total = ProgressBatchResult()
        var results: [(entries: Int, result: ProgressBatchResult)] = []
        var setAside = 0
        var deleted: [String: UserDataDeletion.Deleted] = [:]
        do {
            if checkpointing { try positions!.awaitDeadLetters() }
            try pool.withConnection { connection in
                // A data error aborts the transaction: it is rolled back and the cycle written
                // again isolating the poison rows (the common path pays nothing for that).
                var isolating = false
                while true {
                    try connection.execute("BEGIN")
                    do {
                        // Deletions first: every entry drained with them arrived after them.
                        deleted = try UserDataDeletion.delete(deletions, namespace: writer.namespace, on: connection)
                        while written < entries.count {
                            let end = min(written + configuration.batchSize, entries.count)
                            let batch = entries[written..<end]
                            let result: ProgressBatchResult
                            if isolating {
                                let isolated = try writeIsolatingPoisonRows(batch, eventIDs: eventIDs, on: connection)
                                result = isolated.result
                                setAside += isolated.setAside
                            } else {
                                result = try writer.write(batch, on: connection)
                            }
                            results.append((end - written, result))
                            written = end
                            batches += 1
                        }
                        if checkpointing { try positions!.recordCheckpoint(snapshot, worker: index, on: connection) }
                        try FlushCommits.record(flushID, on: connection)
                    } catch let error as PostgresError where error.isDataError && !isolating {
                        _ = try? connection.execute("ROLLBACK")
                        logger.warning(
                            "a row of the flush was refused for its data; writing the flush again, setting such rows aside",
                            metadata: ["error": "\(error)"])
                        isolating = true
                        written = 0
                        batches = 0
                        setAside = 0
                        results.removeAll()
                        continue
                    } catch {
                        _ = try? connection.execute("ROLLBACK")
                        throw error
                    }
                    // Deduplication marks the ids as committing in this flush before the commit:
                    // whatever happens next, a repeat can learn whether they were applied.
                    if !ids.isEmpty { marked = beforeCommit(ids, flushID) }
                    let session = connection.backendPID
                    do {
                        try connection.execute("COMMIT")
                    } catch let error as PostgresError where error.isConnectionFailure {
                        throw CommitOutcomeUnknown(cause: error, session: session)
                    }
                    committed = true
                    return
                }
            }
        } catch let fenced as KafkaFencedError {
            // Another member owns a partition these entries came from: committing them would
            // apply its events twice. Nothing was written; the service must not go on.
            buffer.restore(entries[...], eventIDs: eventIDs, idShard: shards[0], deletions: deletions)
            stats.recordFailure()
            onFenced(fenced)
            return .failure(fenced, kept: entries.count)
        } catch let unknown as CommitOutcomeUnknown {
            // The COMMIT was sent and no answer came back: it may have committed. Writing the
            // entries again could apply them twice, dropping them could lose them: ask the
            // database (its commit record) before doing either.
            committed = resolveCommit(flushID, unknown)
            if !committed {
                buffer.restore(entries[...], eventIDs: eventIDs, idShard: shards[0], deletions: deletions)
                stats.recordFailure()
                return .failure(unknown.cause, kept: entries.count)
            }
        } catch {
            // The transaction wrote nothing: everything goes back.
            buffer.restore(entries[...], eventIDs: eventIDs, idShard: shards[0], deletions: deletions)
            stats.recordFailure()
            return .failure(error, kept: entries.count)
        }
        if setAside > 0 { stats.recordSetAside(setAside) }
        if !deletions.isEmpty { recordDeletions(deleted, flushID: flushID) }
        recordCommitted(results, entries: entries, into: &total)
        if checkpointing {
            positions!.committed(snapshot, worker: index)
            lastCheckpoint = snapshot
        }
        commits.committed(drain: drain)
        if !ids.isEmpty { onCommitted(ids, flushID, marked) }
        if index == 0 { pruneCommitRecords() }
        let elapsed = ContinuousClock.now - started
        stats.recordFlush()
        metrics.flushDuration.record(elapsed)
        metrics.flushRows.record(Double(total.updated + total.inserted))
        logger.debug(
            "flushed",
            metadata: [
                "entries": "\(entries.count)", "batches": "\(batches)", "updated": "\(total.updated)",
                "inserted": "\(total.inserted)", "unassigned_events": "\(total.unassignedEvents)",
                "duration_ms": "\(Int(elapsed.seconds * 1000))",
            ])
        return .success(rows: total.updated + total.inserted)
    }
}
