import Buffer
import EventRules
import Foundation
import Logging
import Synchronization

/// The one ingest pipeline, for gRPC and Kafka alike:
///
/// 1. validate and 2. match goals (`screen`): pure, no buffer, no Redis;
/// 3. deduplicate: the event's id through `EventDeduplicator` (memory, or a Redis claim);
/// 4. merge into the buffer, and settle the outcome with the transport (`IngestSettlement`:
///    a commit receipt for gRPC, the record's position move for Kafka), inside the
///    transport's lock;
/// 5. wake the flusher if the buffer reached its threshold, and count the outcome.
///
/// `ingest` runs the five for a gRPC call without blocking (step 3's Redis round trip is a
/// callback). The Kafka path (`KafkaIngest`) runs step 3 itself, because it claims a whole
/// poll's ids in one round trip and resolves claims from its positions, and calls `screen`
/// and `settle` for the rest. Knows nothing of SQL or merge rules.
final class EventIngestor: Sendable {
    private let namespace: String
    private let matcher: GoalMatcher
    private let buffer: EventBuffer
    private let onFlushDue: @Sendable () -> Void
    /// Where commit receipts come from.
    private let flusher: Flusher
    /// `ACK_MODE=durable`: accepted events come with a receipt (deletions always do).
    private let durable: Bool
    /// `ACK_WAITING_LIMIT`: places for calls that wait for their commit (nil: no limit).
    let waiting: CommitWaitLimit?
    let deduplicator: EventDeduplicator?
    let counters: IngestCounters
    /// The log lines for events of another namespace and for a full buffer.
    private let notices: IngestNotices

    /// Open for events until `close()`; `inFlight` lets the drain wait for calls already past
    /// the gate, so nothing lands in the buffer after its final flush.
    private let open = Atomic<Bool>(true)
    private let inFlight = Atomic<Int>(0)

    /// An event that passed validation and moves at least one goal.
    struct Screened: Sendable {
        let userID: String
        let updates: [GoalUpdate]
        /// The deduplication key; empty when the event has none.
        let id: String
        /// The user's buffer shard (hashed once per event).
        let shard: Int
    }

    enum Screening: Sendable {
        case decided(IngestOutcome)
        case ready(Screened)
    }

    init(
        namespace: String, matcher: GoalMatcher, buffer: EventBuffer, deduplicator: EventDeduplicator? = nil,
        flusher: Flusher, durable: Bool, waiting: CommitWaitLimit? = nil, logger: Logger = Logger(label: "event-handler"),
        onFlushDue: @escaping @Sendable () -> Void
    ) {
        notices = IngestNotices(
            namespace: namespace,
            limits: [
                .bufferFull: buffer.limit, .eventIDLimit: deduplicator?.configuration.pendingLimit ?? 0,
                .waitingLimit: waiting?.limit ?? 0,
            ],
            logger: logger)
        counters = IngestCounters(notices: notices)
        self.flusher = flusher
        self.durable = durable
        self.waiting = waiting
        self.namespace = namespace
        self.matcher = matcher
        self.buffer = buffer
        self.deduplicator = deduplicator
        self.onFlushDue = onFlushDue
    }

    /// Whether the limits a Kafka record can meet (`BUFFER_SIZE_LIMIT`, `BUFFER_EVENT_ID_LIMIT`)
    /// are each a tenth below their value: consumption paused at one resumes then, with a margin,
    /// so one resumed record does not pause it again.
    var hasRoomToResume: Bool {
        func belowMargin(_ count: Int, _ limit: Int) -> Bool { count < limit - limit / 10 }
        guard belowMargin(buffer.pendingCount, buffer.limit) else { return false }
        guard let held = deduplicator?.held else { return true }
        return belowMargin(held.claimed, held.pendingLimit)
    }

    /// The user's buffer shard (hash it once per event and pass it on).
    func shardIndex(of userID: String) -> Int { buffer.shardIndex(of: userID) }

    /// One gRPC event, start to finish, counted under `.grpc`. `then` gets the outcome and, when
    /// the ingestor gives receipts (`ACK_MODE=durable`) and the event is in the buffer (or is a
    /// repeat of one), the receipt of the flush that commits it. Never blocks: `then` runs before
    /// this returns, or on the Redis thread with its reply.
    ///
    /// A call that may wait takes a place under `ACK_WAITING_LIMIT` first, before its event can
    /// go into the buffer: at the limit it is refused whole, so a retry applies it once even
    /// without an id. The receipt holds the place until its wait ends.
    func ingest(
        _ event: IncomingEvent, receivedAt: UInt64, then: @escaping @Sendable (IngestOutcome, CommitReceipt?) -> Void
    ) {
        let place = durable ? waiting : nil
        if let place {
            guard place.take() else {
                let refused = IngestOutcome.overloaded(.waitingLimit)
                counters.record(.grpc, event.kind, refused)
                return then(refused, nil)
            }
            counters.noteRoom(.waitingLimit)
        }
        let settlement = ReceiptSettlement(receipts: durable ? flusher : nil, userID: event.userID, place: place)
        let screening = screen(event)
        if case .ready(let screened) = screening, let deduplicator, !screened.id.isEmpty {
            deduplicator.admit(screened.id) { [self] admission in
                let (outcome, receipt) = settle(
                    screening, admission: admission, receivedAt: receivedAt, source: .grpc, kind: event.kind, by: settlement)
                then(outcome, receipt)
            }
        } else {
            let (outcome, receipt) = settle(
                screening, admission: nil, receivedAt: receivedAt, source: .grpc, kind: event.kind, by: settlement)
            then(outcome, receipt)
        }
    }

    /// Steps 1 and 2, validation and goal matching: what needs no buffer and no Redis.
    /// `shard`: the user's buffer shard, when the caller has hashed it already.
    func screen(_ event: IncomingEvent, shard: Int? = nil) -> Screening {
        switch EventValidator.check(event, namespace: namespace) {
        case .otherNamespace:
            switch event {
            case .login(let login): notices.otherNamespace(login.namespace)
            case .stat(let stat): notices.otherNamespace(stat.namespace)
            }
            return .decided(.ignored(.otherNamespace))
        case .invalid(let field, let reason):
            return .decided(.rejected(field: field, reason: reason))
        case .valid:
            break
        }
        let updates = matcher.updates(for: event)
        if updates.isEmpty { return .decided(.ignored(.noMatchingGoal)) }
        return .ready(
            Screened(userID: event.userID, updates: updates, id: event.id, shard: shard ?? buffer.shardIndex(of: event.userID)))
    }

    /// Steps 4 and 5 for a screened event whose deduplication (step 3) is decided: `admission`
    /// is deduplication's answer, nil when the event has no id or nothing deduplicates. The
    /// event goes into the buffer (or its id is let go if the buffer refuses it) and the
    /// transport settles the outcome, both inside the transport's lock; then the flusher is
    /// woken if the buffer reached its threshold, and the outcome is counted under `source`.
    /// Blocks only as long as the settlement's lock does.
    func settle<Settlement: IngestSettlement>(
        _ screening: Screening, admission: EventDeduplicator.Admission?, receivedAt: UInt64, source: EventSource,
        kind: EventKind, by settlement: Settlement
    ) -> (IngestOutcome, Settlement.Settled) {
        let (added, settled) = settlement.withLock {
            let added: Added
            switch screening {
            case .decided(let decided): added = Added(outcome: decided)
            case .ready(let screened):
                added =
                    admission.map { admitted(screened, $0, receivedAt: receivedAt) } ?? insert(screened, receivedAt: receivedAt)
            }
            return (added, settlement.settle(added.outcome, shard: added.shard))
        }
        // After the settlement: a receipt taken then names a drain this wake-up starts.
        if added.flushDue { onFlushDue() }
        counters.record(source, kind, added.outcome)
        return (added.outcome, settled)
    }

    /// What became of an event, and whether the buffer reached its flush threshold with it.
    private struct Added: Sendable {
        var outcome: IngestOutcome
        var flushDue = false
        /// The user's shard, when screening found it.
        var shard: Int? = nil
    }

    private func admitted(_ screened: Screened, _ admission: EventDeduplicator.Admission, receivedAt: UInt64) -> Added {
        switch admission {
        case .duplicate:
            return Added(outcome: .ignored(.duplicate), shard: screened.shard)
        case .heldElsewhere:
            return Added(outcome: .deferred(.inFlightElsewhere))
        case .unavailable:
            return Added(outcome: .deferred(.dedupUnavailable))
        case .full:
            return Added(outcome: .overloaded(.eventIDLimit))
        case .admitted(let claimed):
            let added = insert(screened, receivedAt: receivedAt, eventID: screened.id)
            if added.outcome == .accepted {
                deduplicator?.buffered(screened.id)
            } else {
                deduplicator?.release(screened.id, claimed: claimed)
            }
            return added
        }
    }

    private func insert(_ screened: Screened, receivedAt: UInt64, eventID: String? = nil) -> Added {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        // Sequentially consistent on both sides (a Dekker pair with `close`): either this call sees
        // the gate closed, or `close` sees it in flight and waits for it.
        guard open.load(ordering: .sequentiallyConsistent) else { return Added(outcome: .unavailable) }
        switch buffer.add(
            userID: screened.userID, updates: screened.updates, receivedAt: receivedAt, eventID: eventID, shard: screened.shard)
        {
        case .full:
            return Added(outcome: .overloaded(.bufferFull), shard: screened.shard)
        case .accepted(let created, let flushDue):
            if created > 0 { counters.noteRoom(.bufferFull) }
            if eventID != nil { counters.noteRoom(.eventIDLimit) }
            return Added(outcome: .accepted, flushDue: flushDue, shard: screened.shard)
        }
    }

    /// A GDPR deletion from gRPC (wire.md): answered OK only once committed, whatever
    /// `ACK_MODE` is, so an accepted deletion comes with the receipt of the flush that commits
    /// it, and takes a place under `ACK_WAITING_LIMIT` as a durable call does. Never blocks.
    func deleteUser(_ request: UserDeletionRequest) -> (IngestOutcome, CommitReceipt?) {
        // A deletion that is checked and found wanting waits for nothing: no place for it.
        var place: CommitWaitLimit? = nil
        if let waiting, case .valid = request.check(namespace: namespace) {
            guard waiting.take() else { return (.overloaded(.waitingLimit), nil) }
            counters.noteRoom(.waitingLimit)
            place = waiting
        }
        return deleteUser(request, by: ReceiptSettlement(receipts: flusher, userID: request.userID, place: place))
    }

    /// A GDPR deletion, checked, then settled by the transport: the user's buffered entries are
    /// dropped and the deletion is queued in their shard, to be committed by its next flush
    /// before anything the user sends afterwards (`EventBuffer.deleteUser`). Deletions are rare
    /// and asked for "at once", so the flusher is woken rather than left to the interval. Not
    /// deduplicated (a deletion is idempotent).
    func deleteUser<Settlement: IngestSettlement>(
        _ request: UserDeletionRequest, by settlement: Settlement
    ) -> (IngestOutcome, Settlement.Settled) {
        let decided: IngestOutcome? =
            switch request.check(namespace: namespace) {
            case .otherNamespace: .ignored(.otherNamespace)
            case .invalid(let field, let reason): .rejected(field: field, reason: reason)
            case .valid: nil
            }
        let shard = buffer.shardIndex(of: request.userID)
        let (outcome, settled) = settlement.withLock {
            let outcome = decided ?? queueDeletion(of: request.userID)
            return (outcome, settlement.settle(outcome, shard: shard))
        }
        if outcome == .accepted { onFlushDue() }
        return (outcome, settled)
    }

    private func queueDeletion(of userID: String) -> IngestOutcome {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard open.load(ordering: .sequentiallyConsistent) else { return .unavailable }
        buffer.deleteUser(userID)
        return .accepted
    }

    /// Stops taking events and returns once no call is still inside `add` (bounded wait).
    func close() {
        open.store(false, ordering: .sequentiallyConsistent)
        let deadline = ContinuousClock.now + .seconds(5)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.001)
        }
    }
}
