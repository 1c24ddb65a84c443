import Buffer
import Catalog
import EventRules
import Foundation
import GameEvents
import Kafka
import Logging
import Synchronization
import Testing

@testable import EventHandler
@testable import ProgressStore

/// The one ingest pipeline (screen → deduplicate → buffer → settle → count), in process, from
/// both transports: gRPC's `EventIngestor.ingest` settled by a commit receipt, and Kafka's
/// `KafkaIngest` settled by its record's position move. A flusher over the scripted store of
/// FlushWorkerTests stands where PostgreSQL does; each test ends on what that store applied.
@Suite("Ingest pipeline: gRPC and Kafka through the same steps, without a server")
struct IngestPipelineTests {
    static let namespace = "ns"
    static let catalog: Catalog = {
        let json = """
            {"challenges": [{"challengeId": "c", "name": "C", "goals": [
              {"goalId": "logins", "name": "logins", "eventSource": "login", "defaultAssigned": true,
               "requirement": {"operator": ">=", "targetValue": 3, "progressMode": "absolute"},
               "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": []},
              {"goalId": "kills", "name": "kills", "eventSource": "statistic", "defaultAssigned": true,
               "requirement": {"statCode": "kills", "operator": ">=", "targetValue": 100, "progressMode": "absolute"},
               "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": []}
            ]}]}
            """
        return try! Catalog.parse(Array(json.utf8), fileName: "pipeline.json").catalog
    }()

    /// A flusher over the scripted store, an ingestor in front of it, and, when asked, an
    /// in-memory deduplicator.
    final class Pipeline: Sendable {
        let rig: FlushWorkerTests.Rig
        let ingestor: EventIngestor
        let deduplicator: EventDeduplicator?

        init(
            durable: Bool = false, waitingLimit: Int? = nil, deduplicate: Bool = false, bufferLimit: Int = 10_000,
            positions: KafkaPositions? = nil
        ) {
            rig = FlushWorkerTests.Rig([], positions: positions, bufferLimit: bufferLimit)
            deduplicator =
                deduplicate
                ? EventDeduplicator(
                    configuration: .init(
                        namespace: IngestPipelineTests.namespace, ttl: .seconds(3_600), lease: .seconds(30), failMode: .open,
                        localCapacity: 10_000),
                    redis: nil, logger: Logger(label: "pipeline-test"))
                : nil
            ingestor = EventIngestor(
                namespace: IngestPipelineTests.namespace, matcher: GoalMatcher(catalog: IngestPipelineTests.catalog),
                buffer: rig.buffer, deduplicator: deduplicator, flusher: rig.flusher, durable: durable,
                waiting: waitingLimit.map { CommitWaitLimit(limit: $0) }, onFlushDue: {})
        }

        /// A gRPC event through `ingest`, its answer taken synchronously (no Redis: it runs at once).
        func ingest(_ event: IncomingEvent) -> (IngestOutcome, CommitReceipt?) {
            let answer = Mutex<(IngestOutcome, CommitReceipt?)?>(nil)
            ingestor.ingest(event, receivedAt: 0) { outcome, receipt in answer.withLock { $0 = (outcome, receipt) } }
            return answer.withLock { $0 }!
        }

        private let stopped = Atomic<Bool>(false)

        /// Stops the flusher (waiting for everything it reports) and the deduplicator; once.
        func stop() {
            guard !stopped.exchange(true, ordering: .relaxed) else { return }
            rig.stop()
            deduplicator?.stop(timeout: .seconds(5))
        }

        /// Events applied for `user`'s goal `goalID`, as the store holds them.
        func applied(_ user: String, _ goalID: String) -> Int32? {
            let goal = IngestPipelineTests.catalog.goal(id: goalID)!.index
            return rig.store.snapshot.applied[EntryKey(userID: user, goal: goal)]
        }
    }

    static func login(_ user: String, id: String = "", namespace: String = namespace) -> IncomingEvent {
        .login(.init(id: id, namespace: namespace, userID: user))
    }

    static func kills(_ user: String, id: String = "", inc: Double = 1) -> IncomingEvent {
        .stat(.init(id: id, namespace: namespace, userID: user, payload: .init(statCode: "kills", latestValue: inc, inc: inc)))
    }

    // MARK: - gRPC

    @Test("each outcome of the gRPC path is counted once under grpc; only events that move a goal reach the buffer")
    func grpcOutcomes() {
        let pipeline = Pipeline()
        defer { pipeline.stop() }
        #expect(pipeline.ingest(Self.login("u1")).0 == .accepted)
        #expect(pipeline.ingest(Self.login("u1", namespace: "other")).0 == .ignored(.otherNamespace))
        #expect(pipeline.ingest(.stat(.init(id: "", namespace: Self.namespace, userID: "u1", payload: .init(statCode: "deaths", latestValue: 1, inc: 1)))).0 == .ignored(.noMatchingGoal))
        if case .rejected(let field, _) = pipeline.ingest(Self.login("")).0 {
            #expect(field == .userID)
        } else {
            Issue.record("an event without a user is rejected")
        }
        #expect(pipeline.ingest(Self.kills("u1", inc: 5)).0 == .accepted)
        let logins = pipeline.ingestor.counters.snapshot(.grpc, .login)
        #expect(logins.accepted == 1 && logins[.ignored(.otherNamespace)] == 1 && logins[.rejected(.invalidUserID)] == 1)
        let stats = pipeline.ingestor.counters.snapshot(.grpc, .stat)
        #expect(stats.accepted == 1 && stats[.ignored(.noMatchingGoal)] == 1)
        #expect(pipeline.ingestor.counters.snapshot(.kafka, .login).received == 0)
        #expect(pipeline.rig.buffer.pendingCount == 2)
        #expect(pipeline.rig.flush())
        #expect(pipeline.applied("u1", "logins") == 1)
        #expect(pipeline.applied("u1", "kills") == 1)
    }

    @Test("durable: a receipt answers once its flush commits; a repeat of the id waits on the same commit and is applied once")
    func durableReceipts() {
        let pipeline = Pipeline(durable: true, deduplicate: true)
        defer { pipeline.stop() }
        let (first, receipt) = pipeline.ingest(Self.login("u1", id: "e-1"))
        let (repeated, repeatReceipt) = pipeline.ingest(Self.login("u1", id: "e-1"))
        #expect(first == .accepted)
        #expect(repeated == .ignored(.duplicate))
        let answered = Atomic<Int>(0)
        for receipt in [receipt, repeatReceipt] {
            #expect(receipt != nil)
            receipt?.whenCommitted { committed in if committed { answered.add(1, ordering: .relaxed) } }
        }
        #expect(answered.load(ordering: .relaxed) == 0, "answered before any flush")
        #expect(pipeline.rig.flush())
        pipeline.stop()
        #expect(answered.load(ordering: .relaxed) == 2)
        #expect(pipeline.applied("u1", "logins") == 1)
        // Buffered mode: answered at once, no receipt.
        let buffered = Pipeline()
        defer { buffered.stop() }
        #expect(buffered.ingest(Self.login("u2")).1 == nil)
    }

    @Test("ACK_WAITING_LIMIT: a durable call past it is refused before its event enters the buffer; a commit gives the places back")
    func waitingLimit() {
        let pipeline = Pipeline(durable: true, waitingLimit: 2)
        defer { pipeline.stop() }
        var receipts: [CommitReceipt] = []
        for user in ["u1", "u2"] {
            let (outcome, receipt) = pipeline.ingest(Self.login(user))
            #expect(outcome == .accepted)
            if let receipt {
                receipt.whenCommitted { _ in }
                receipts.append(receipt)
            }
        }
        #expect(pipeline.ingest(Self.login("u3")).0 == .overloaded(.waitingLimit))
        #expect(pipeline.rig.buffer.pendingCount == 2, "the refused event is not in the buffer")
        // A call with nothing to wait for gives its place back at once.
        #expect(pipeline.ingestor.waiting?.count == 2)
        #expect(pipeline.rig.flush())
        pipeline.stop()
        #expect(pipeline.ingestor.waiting?.count == 0)
        #expect(pipeline.applied("u3", "logins") == nil)
        #expect(pipeline.ingestor.counters.snapshot(.grpc, .login)[.rejected(.ackWaitingLimit)] == 1)
    }

    @Test("after close nothing enters the buffer: an event is unavailable and a durable call's place comes back")
    func closedGate() {
        let pipeline = Pipeline(durable: true, waitingLimit: 4)
        defer { pipeline.stop() }
        pipeline.ingestor.close()
        let (outcome, receipt) = pipeline.ingest(Self.login("u1"))
        #expect(outcome == .unavailable)
        #expect(receipt == nil)
        #expect(pipeline.ingestor.waiting?.count == 0)
        #expect(pipeline.rig.buffer.pendingCount == 0)
        #expect(pipeline.ingestor.deleteUser(UserDeletionRequest(userID: "u1", namespace: Self.namespace)).0 == .unavailable)
        #expect(pipeline.ingestor.waiting?.count == 0)
    }
}
