import Buffer
import EventRules
import Foundation
import Logging
import Synchronization

/// The ingest path: validate → match goals → deduplicate → merge into the buffer.
///
/// Transport-neutral. Screening and the merge are non-blocking (a mutex held for one
/// dictionary update per goal), so they run directly on the gRPC server's event loop; the one
/// wait, deduplication's Redis round trip, is a callback (gRPC, `ingest`) or taken by the Kafka
/// path on its own thread between `screen` and `admit`. Knows nothing of SQL or merge rules.
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
        guard buffer.pendingCount < buffer.limit - buffer.limit / 10 else { return false }
        guard let held = deduplicator?.held else { return true }
        return held.claimed < held.pendingLimit - held.pendingLimit / 10
    }

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
        // The receipt is taken before the size trigger wakes the flusher: it names the first
        // drain certain to hold the event, and the wake-up then starts such a drain even if one
        // is running (taken after, it could name the drain after the one the wake-up started).
        let finish: @Sendable (Added) -> Void = { [self] added in
            counters.record(.grpc, event.kind, added.outcome)
            var receipt =
                durable && (added.outcome == .accepted || added.outcome == .ignored(.duplicate))
                ? flusher.receipt(shard: added.shard ?? buffer.shardIndex(of: event.userID)) : nil
            if let place {
                if let held = receipt { receipt = held.holding(place) } else { place.giveBack() }
            }
            if added.flushDue { onFlushDue() }
            then(added.outcome, receipt)
        }
        switch screen(event) {
        case .decided(let decided):
            finish(Added(outcome: decided))
        case .ready(let screened):
            if let deduplicator, !screened.id.isEmpty {
                deduplicator.admit(screened.id) { [self] admission in
                    finish(admitted(screened, admission, receivedAt: receivedAt))
                }
            } else {
                finish(insert(screened, receivedAt: receivedAt))
            }
        }
    }

    /// Validation and goal matching: what needs no buffer and no Redis.
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

    /// Acts on deduplication's answer for a screened event: adds it when admitted (and lets go
    /// of its id if the buffer then refuses it).
    func admit(_ screened: Screened, _ admission: EventDeduplicator.Admission, receivedAt: UInt64) -> IngestOutcome {
        let added = admitted(screened, admission, receivedAt: receivedAt)
        if added.flushDue { onFlushDue() }
        return added.outcome
    }

    /// Merges a screened event into the buffer, unless the gate is closed or the buffer full.
    func add(_ screened: Screened, receivedAt: UInt64, eventID: String? = nil) -> IngestOutcome {
        let added = insert(screened, receivedAt: receivedAt, eventID: eventID)
        if added.flushDue { onFlushDue() }
        return added.outcome
    }

    /// What became of an event, and whether the buffer reached its flush threshold with it (the
    /// caller then wakes the flusher: `admit` and `add` at once, `ingest` after its receipt).
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

    /// A GDPR deletion (wire.md): the user's buffered entries are dropped and the deletion is
    /// queued in their shard, to be committed by its next flush before anything the user sends
    /// afterwards (`EventBuffer.deleteUser`). Returns the outcome and, when accepted, the receipt
    /// of that flush, whatever `ACK_MODE` is: a deletion is answered OK only once committed.
    /// Never blocks; not deduplicated (a deletion is idempotent).
    func deleteUser(_ request: UserDeletionRequest, callerWaits: Bool = true) -> (IngestOutcome, CommitReceipt?) {
        switch request.check(namespace: namespace) {
        case .otherNamespace: return (.ignored(.otherNamespace), nil)
        case .invalid(let field, let reason): return (.rejected(field: field, reason: reason), nil)
        case .valid: break
        }
        // A deletion answered from its commit takes a place as a durable call does (`callerWaits`
        // false: the Kafka path, which never waits on its receipt).
        let waiting = callerWaits ? waiting : nil
        if let waiting {
            guard waiting.take() else { return (.overloaded(.waitingLimit), nil) }
            counters.noteRoom(.waitingLimit)
        }
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard open.load(ordering: .sequentiallyConsistent) else {
            waiting?.giveBack()
            return (.unavailable, nil)
        }
        buffer.deleteUser(request.userID)
        // The receipt first: it names the first drain certain to hold the deletion, and the
        // wake-up below starts such a drain even if one is running now (a receipt taken after
        // the wake-up could name the drain after the one it started, a whole interval later).
        var receipt = flusher.receipt(userID: request.userID)
        if let waiting { receipt = receipt.holding(waiting) }
        // Deletions are rare and asked for "at once": flush now rather than at the interval.
        onFlushDue()
        return (.accepted, receipt)
    }

    /// Counts an outcome decided outside `ingest` (the Kafka path's own sequence).
    func count(_ outcome: IngestOutcome, source: EventSource, kind: EventKind) {
        counters.record(source, kind, outcome)
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
