import Buffer
import Dispatch
import Foundation
import Logging
import ProgressStore
import Storage
import Synchronization

/// One flush thread: owns a fixed set of shards (shard `s` belongs to worker `s % workers`), so a
/// user's entries always go through the same worker and its writes stay in order.
///
/// Threading: everything here that blocks (libpq through the pool) runs on this worker's own
/// `Thread`, never on the Swift cooperative pool. Other threads only signal it.
///
/// A cycle drains the worker's shards and takes its participants' parts (a Kafka checkpoint,
/// deduplication's marks), both under its drain lock; writes them in one `FlushTransaction` on a
/// pooled connection (GDPR deletions, the entries in batches of `batchSize`, poison rows set
/// aside, the parts, the commit record); and on a failure gives the unwritten entries back to
/// the buffer (where newer events merge on top of them), tells the parts why, and retries after
/// an exponential backoff with jitter.
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
    private let store: any FlushStore
    private let configuration: Configuration
    private let stats: FlushStats
    private let metrics: ServiceMetrics
    /// What commits with each flush besides its rows (Kafka checkpoints, deduplication).
    private let participants: [any CommitParticipant]
    /// Held while draining and taking the parts; shared with the sources that need it.
    private let drainLocks: DrainLocks
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

    init(
        index: Int, shards: [Int], phase: Double = 0, buffer: EventBuffer, store: any FlushStore,
        configuration: Configuration, stats: FlushStats, metrics: ServiceMetrics, participants: [any CommitParticipant],
        drainLocks: DrainLocks, logger: Logger
    ) {
        self.index = index
        self.shards = shards
        self.phase = phase
        self.buffer = buffer
        self.store = store
        self.configuration = configuration
        self.stats = stats
        self.metrics = metrics
        self.participants = participants
        self.drainLocks = drainLocks
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

            let outcome = flushOnce()
            switch outcome {
            case .success(let rows):
                if failing {
                    failing = false
                    logger.info("database writes succeed again", metadata: ["rows": "\(rows)"])
                }
                backoff = configuration.initialBackoff
                if index == 0 { store.reapIdleConnections() }
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
                    "audit": "gdpr_deletion", "user_id": "\(user)", "namespace": "\(store.namespace)",
                    "progress_rows": "\(rows.progressRows)", "dead_letters": "\(rows.deadLetters)", "flush_id": "\(flushID)",
                ])
        }
    }

    // MARK: - Commit records

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
            let gone = try store.pruneCommitRecords(olderThan: configuration.commitRecordRetention)
            if gone > 0 { logger.debug("commit records pruned", metadata: ["rows": "\(gone)"]) }
        } catch {
            logger.warning("could not prune commit records (retried in a minute)", metadata: ["error": "\(error)"])
        }
    }

    private enum Outcome {
        case success(rows: Int)
        case failure(any Error, kept: Int)
    }

    /// Drains this worker's shards and writes them in one `FlushTransaction`. On a failure,
    /// whatever was not committed goes back into the buffer.
    private func flushOnce() -> Outcome {
        // Numbered before any shard is drained: see `CommitSequence.ticket`.
        let drain = commits.startDrain()
        let flushID = FlushCommits.newID()
        var drained = FlushTransaction.Drained()
        var parts: [any CommitPart] = []
        // Drained and the parts taken under the drain lock: a source that moves its own
        // bookkeeping under it with each add (Kafka's positions) is then exactly in step.
        drainLocks.withLock(worker: index) {
            for shard in shards {
                drained.entries.append(
                    contentsOf: buffer.drain(shard: shard, eventIDs: &drained.eventIDs, deletions: &drained.deletions))
            }
            for participant in participants {
                if let part = participant.part(of: flushID, worker: index, drained: drained) { parts.append(part) }
            }
        }
        if drained.entries.isEmpty && drained.deletions.isEmpty && !parts.contains(where: \.mustCommit) {
            commits.committed(drain: drain)
            return .success(rows: 0)
        }

        let started = ContinuousClock.now
        let restore = { [buffer, shards] in
            buffer.restore(drained.entries[...], eventIDs: drained.eventIDs, idShard: shards[0], deletions: drained.deletions)
        }
        /// Nothing was committed: the entries go back and the parts hear why.
        func failed(_ error: any Error) -> Outcome {
            restore()
            stats.recordFailure()
            for part in parts { part.failed(error) }
            return .failure(error, kept: drained.entries.count)
        }
        var written = FlushTransaction.Written()
        do {
            for part in parts { try part.prepare() }
            written = try store.write(drained, flushID: flushID, parts: parts, logger: logger)
        } catch let unknown as FlushTransaction.CommitOutcomeUnknown {
            // The COMMIT was sent and no answer came back: it may have committed. Writing the
            // entries again could apply them twice, dropping them could lose them: ask the
            // database (its commit record) before doing either.
            let committed = store.resolveCommit(
                flushID, unknown, deadline: { stopDeadline.withLock { $0 } }, logger: logger)
            guard committed else { return failed(unknown.cause) }
            written = unknown.written
        } catch {
            // The transaction wrote nothing (a fenced checkpoint among the reasons: its part
            // hears of it and stops the service).
            return failed(error)
        }
        var total = ProgressBatchResult()
        if written.setAside > 0 { stats.recordSetAside(written.setAside) }
        if !drained.deletions.isEmpty { recordDeletions(written.deleted, flushID: flushID) }
        recordCommitted(written.batches, entries: drained.entries, into: &total)
        commits.committed(drain: drain)
        for part in parts { part.committed() }
        if index == 0 { pruneCommitRecords() }
        let elapsed = ContinuousClock.now - started
        stats.recordFlush()
        metrics.flushDuration.record(elapsed)
        metrics.flushRows.record(Double(total.updated + total.inserted))
        logger.debug(
            "flushed",
            metadata: [
                "entries": "\(drained.entries.count)", "batches": "\(written.batches.count)", "updated": "\(total.updated)",
                "inserted": "\(total.inserted)", "unassigned_events": "\(total.unassignedEvents)",
                "duration_ms": "\(Int(elapsed.seconds * 1000))",
            ])
        return .success(rows: total.updated + total.inserted)
    }
}
