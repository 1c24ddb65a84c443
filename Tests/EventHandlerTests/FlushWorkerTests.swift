import Buffer
import Foundation
import Kafka
import Logging
import Synchronization
import Testing

@testable import EventHandler
@testable import ProgressStore
@testable import Storage

/// The flush worker's decisions about a drain, in process: a scripted store stands where
/// PostgreSQL does and answers each write as the test says (committed, failed, commit outcome
/// unknown, fenced). The ledger it keeps is what a database would hold: every test ends by
/// checking each event was applied exactly once.
@Suite("Flush worker: what happens to a drain when its write fails, is lost in commit, or is fenced")
struct FlushWorkerTests {
    /// How the store answers one write.
    enum Answer: Sendable {
        case commit
        /// Nothing written: the connection failed before the COMMIT.
        case fail
        /// The COMMIT was sent and no answer came back; it did (or did not) commit.
        case outcomeUnknown(committed: Bool)
        /// The checkpoint's partitions belong to another member now.
        case fenced
    }

    final class ScriptedStore: FlushStore {
        struct State {
            var script: [Answer]
            /// Events applied per (user, goal): what the table would show.
            var applied: [EntryKey: Int32] = [:]
            var writes = 0
            var checkpoints: [[TopicPartition: KafkaPositions.Position]] = []
            /// Flushes whose commit got no answer, and whether they committed.
            var unknown: [Int64: Bool] = [:]
            var resolved: [Int64] = []
            /// Users whose rows a committed flush deleted (GDPR), in order.
            var deletedUsers: [String] = []
        }
        let state: Mutex<State>
        let namespace = "test"

        init(_ script: [Answer]) { state = Mutex(State(script: script)) }

        func write(
            _ drained: FlushTransaction.Drained, flushID: Int64, parts: [any CommitPart], logger: Logger
        ) throws -> FlushTransaction.Written {
            let answer = state.withLock { state -> Answer in
                state.writes += 1
                for case let checkpoint as KafkaCheckpointing.Part in parts { state.checkpoints.append(checkpoint.snapshot) }
                return state.script.isEmpty ? .commit : state.script.removeFirst()
            }
            var written = FlushTransaction.Written()
            var result = ProgressBatchResult()
            result.updated = drained.entries.count
            written.batches = [(drained.entries.count, result)]
            func apply() {
                state.withLock { state in
                    // A flush deletes before it writes (FlushTransaction): rows of a user deleted
                    // and then sent events again hold only the later events.
                    for user in drained.deletions { state.applied = state.applied.filter { $0.key.userID != user } }
                    state.deletedUsers += drained.deletions
                    for entry in drained.entries { state.applied[entry.key, default: 0] += entry.progress.events }
                }
            }
            switch answer {
            case .fail:
                throw PostgresError(kind: .connectionLost, message: "scripted: connection lost before the commit")
            case .fenced:
                throw KafkaFencedError(lost: [(KafkaCheckpoints.Ownership(topic: "events", partition: 0, epoch: 1), 2)])
            case .commit:
                for part in parts { part.beforeCommit() }
                apply()
                return written
            case .outcomeUnknown(let committed):
                for part in parts { part.beforeCommit() }
                if committed { apply() }
                state.withLock { $0.unknown[flushID] = committed }
                throw FlushTransaction.CommitOutcomeUnknown(
                    cause: PostgresError(kind: .connectionLost, message: "scripted: no answer to COMMIT"), session: 42,
                    written: written)
            }
        }

        func resolveCommit(
            _ flushID: Int64, _ unknown: FlushTransaction.CommitOutcomeUnknown,
            deadline: () -> ContinuousClock.Instant?, logger: Logger
        ) -> Bool {
            state.withLock { state in
                state.resolved.append(flushID)
                return state.unknown[flushID]!
            }
        }

        func pruneCommitRecords(olderThan age: Duration) throws -> Int { 0 }
        func reapIdleConnections() {}

        var snapshot: State { state.withLock { $0 } }
    }

    /// A participant in deduplication's place: records what its parts are told.
    final class Participant: CommitParticipant {
        struct Calls {
            var marking: [(ids: [String], flush: Int64)] = []
            var committed: [(ids: [String], flush: Int64, marked: Bool)] = []
            var failed: [String] = []
        }
        let calls = Mutex(Calls())

        func part(of flushID: Int64, worker: Int, drained: FlushTransaction.Drained) -> (any CommitPart)? {
            drained.eventIDs.isEmpty ? nil : Part(participant: self, ids: drained.eventIDs.map(\.id), flush: flushID)
        }

        final class Part: CommitPart {
            let participant: Participant
            let ids: [String]
            let flush: Int64
            let marked = Atomic<Bool>(false)

            init(participant: Participant, ids: [String], flush: Int64) {
                self.participant = participant
                self.ids = ids
                self.flush = flush
            }

            func beforeCommit() {
                participant.calls.withLock { $0.marking.append((ids, flush)) }
                marked.store(true, ordering: .relaxed)
            }
            func committed() {
                let marked = marked.load(ordering: .relaxed)
                participant.calls.withLock { $0.committed.append((ids, flush, marked)) }
            }
            func failed(_ error: any Error) {
                participant.calls.withLock { $0.failed.append("\(error)") }
            }
        }

        var snapshot: Calls { calls.withLock { $0 } }
    }

    final class Fences: Sendable {
        let count = Atomic<Int>(0)
    }

    /// A one-worker flusher over a small buffer, on an interval long enough that only the
    /// test's own `flushAndWait` (and the worker's retries) flush.
    struct Rig {
        let buffer: EventBuffer
        let store: ScriptedStore
        let participant = Participant()
        let fences = Fences()
        let flusher: Flusher

        init(_ script: [Answer], positions: KafkaPositions? = nil, bufferLimit: Int = 10_000) {
            buffer = EventBuffer(shardCount: 4, limit: bufferLimit)
            store = ScriptedStore(script)
            let fences = fences
            let checkpointing = positions.map {
                KafkaCheckpointing(positions: $0, onFenced: { _ in fences.count.add(1, ordering: .relaxed) })
            }
            flusher = Flusher(
                buffer: buffer, store: store, workerCount: 1,
                configuration: .init(
                    interval: .seconds(3_600), batchSize: 100, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(4)),
                metrics: ServiceMetrics(), participants: (checkpointing.map { [$0] } ?? []) + [participant],
                drainLocks: positions?.locks, logger: Logger(label: "flush-worker-test"))
            flusher.start()
        }

        /// `users` users, `events` events each, every event its own id.
        func add(users: Int, events: Int) -> [String] {
            var ids: [String] = []
            for u in 0..<users {
                for e in 0..<events {
                    let id = "u\(u)-e\(e)"
                    let update = GoalUpdate(goal: 0, kind: .increment, value: 1, increase: 1)
                    _ = buffer.add(userID: "user-\(u)", updates: [update], eventID: id)
                    ids.append(id)
                }
            }
            return ids
        }

        func flush() -> Bool { flusher.flushAndWait(deadline: .now + .seconds(30)) }

        /// Stops the worker and waits for its thread: everything it reports (the participant
        /// hears of a commit just after its waiters are answered) has been reported.
        func stop() { _ = flusher.stop(deadline: .now + .seconds(5)) }

        /// Every event applied exactly once: `users` users with `events` each, nothing buffered.
        func expectAppliedOnce(users: Int, events: Int, sourceLocation: SourceLocation = #_sourceLocation) {
            let applied = store.snapshot.applied
            #expect(applied.count == users, sourceLocation: sourceLocation)
            for u in 0..<users {
                #expect(applied[EntryKey(userID: "user-\(u)", goal: 0)] == Int32(events), sourceLocation: sourceLocation)
            }
            #expect(buffer.pendingCount == 0, sourceLocation: sourceLocation)
        }
    }

    @Test("a commit whose answer was lost but which committed is not written again, and deduplication hears of it")
    func lostAnswerCommitted() {
        let rig = Rig([.outcomeUnknown(committed: true)])
        let ids = rig.add(users: 3, events: 4)
        #expect(rig.flush())
        rig.stop()
        let store = rig.store.snapshot
        #expect(store.writes == 1)
        #expect(store.resolved.count == 1)
        rig.expectAppliedOnce(users: 3, events: 4)
        let calls = rig.participant.snapshot
        #expect(calls.marking.count == 1)
        #expect(calls.committed.count == 1)
        #expect(calls.committed.first.map { Set($0.ids) } == Set(ids))
        #expect(calls.committed.first?.flush == store.resolved.first)
        #expect(calls.committed.first?.marked == true)
        #expect(rig.flusher.stats.snapshot.failures == 0)
    }

    @Test("a commit whose answer was lost and which did not commit is written again, once, in a new flush")
    func lostAnswerNotCommitted() {
        let rig = Rig([.outcomeUnknown(committed: false)])
        let ids = rig.add(users: 3, events: 4)
        #expect(rig.flush())
        rig.stop()
        let store = rig.store.snapshot
        #expect(store.writes == 2)
        #expect(store.resolved.count == 1)
        rig.expectAppliedOnce(users: 3, events: 4)
        let calls = rig.participant.snapshot
        // Both flushes marked the ids as committing; only the second is reported committed.
        #expect(calls.marking.count == 2)
        #expect(calls.committed.count == 1)
        #expect(calls.committed.first.map { Set($0.ids) } == Set(ids))
        #expect(calls.committed.first?.flush != store.resolved.first)
        #expect(rig.flusher.stats.snapshot.failures == 1)
    }

    @Test("a fenced checkpoint writes nothing, keeps the entries, stops the service, and deduplication hears nothing of it")
    func fenced() {
        let positions = KafkaPositions(group: "group", shardCount: 4, workerCount: 1)
        let partition = TopicPartition(topic: "events", partition: 0)
        _ = positions.assign(
            [partition],
            claim: .init(epochs: [.init(topic: "events", partition: 0, epoch: 1)], positions: [:]))
        let rig = Rig([.fenced], positions: positions)
        _ = rig.add(users: 2, events: 3)
        for offset in 0..<6 { positions.markConsumed(partition, offset: Int64(offset)) }
        #expect(rig.flush())
        rig.stop()
        #expect(rig.fences.count.load(ordering: .relaxed) == 1)
        let store = rig.store.snapshot
        // The fenced write and the retry both carried the same checkpoint: the fenced one was
        // not taken as committed.
        #expect(store.checkpoints == [[partition: .init(offset: 6, epoch: 1)], [partition: .init(offset: 6, epoch: 1)]])
        rig.expectAppliedOnce(users: 2, events: 3)
        let calls = rig.participant.snapshot
        #expect(calls.committed.count == 1)
        #expect(calls.failed.count == 1, "its part of the fenced flush heard why it failed: \(calls.failed)")
        #expect(rig.flusher.stats.snapshot.failures == 1)
    }

    @Test("a failed write keeps its entries and the retry writes each once")
    func failedThenRetried() {
        let rig = Rig([.fail, .fail])
        _ = rig.add(users: 5, events: 2)
        #expect(rig.flush())
        rig.stop()
        rig.expectAppliedOnce(users: 5, events: 2)
        #expect(rig.store.snapshot.writes == 3)
        #expect(rig.flusher.stats.snapshot.failures == 2)
        #expect(rig.flusher.stats.snapshot.consecutiveFailures == 0)
        // Nothing reported committed for the failed flushes: one report, every id in it.
        #expect(rig.participant.snapshot.committed.map(\.ids.count) == [10])
        #expect(rig.participant.snapshot.failed.count == 2)
    }
}
