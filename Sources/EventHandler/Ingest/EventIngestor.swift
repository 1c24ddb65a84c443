import Buffer
import Synchronization
import Foundation

/// The ingest path: validate → match goals → merge into the buffer.
///
/// Transport-neutral and non-blocking (a mutex held for one dictionary update per goal), so it
/// runs directly on the gRPC handler's task. Knows nothing of SQL or merge rules.
final class EventIngestor: Sendable {
    private let namespace: String
    private let matcher: GoalMatcher
    private let buffer: EventBuffer
    private let onFlushDue: @Sendable () -> Void
    let counters = IngestCounters()

    /// Open for events until `close()`; `inFlight` lets the drain wait for calls already past
    /// the gate, so nothing lands in the buffer after its final flush.
    private let open = Atomic<Bool>(true)
    private let inFlight = Atomic<Int>(0)

    init(namespace: String, matcher: GoalMatcher, buffer: EventBuffer, onFlushDue: @escaping @Sendable () -> Void) {
        self.namespace = namespace
        self.matcher = matcher
        self.buffer = buffer
        self.onFlushDue = onFlushDue
    }

    /// Decides about one event and counts the outcome under `source`. `receivedAt` is the
    /// arrival time on `MonotonicTime`, the start of its event-to-commit latency.
    func ingest(_ event: IncomingEvent, from source: EventSource, receivedAt: UInt64 = MonotonicTime.now) -> IngestOutcome {
        let outcome = decide(event, receivedAt: receivedAt)
        counters.record(source, event.kind, outcome)
        return outcome
    }

    private func decide(_ event: IncomingEvent, receivedAt: UInt64) -> IngestOutcome {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        // Sequentially consistent on both sides (a Dekker pair with `close`): either this call sees
        // the gate closed, or `close` sees it in flight and waits for it.
        guard open.load(ordering: .sequentiallyConsistent) else { return .unavailable }

        switch EventValidator.check(event, namespace: namespace) {
        case .otherNamespace:
            return .ignored(.otherNamespace)
        case .invalid(let field, let reason):
            return .rejected(field: field, reason: reason)
        case .valid:
            break
        }
        let updates = matcher.updates(for: event)
        if updates.isEmpty { return .ignored(.noMatchingGoal) }
        switch buffer.add(userID: event.userID, updates: updates, receivedAt: receivedAt) {
        case .full:
            return .overloaded
        case .accepted(let created, let flushDue):
            if created > 0 { counters.noteRoom() }
            if flushDue { onFlushDue() }
            return .accepted
        }
    }

    /// Stops taking events and returns once no call is still inside `ingest` (bounded wait).
    func close() {
        open.store(false, ordering: .sequentiallyConsistent)
        let deadline = ContinuousClock.now + .seconds(5)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.001)
        }
    }
}
