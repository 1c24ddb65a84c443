import Buffer
import Synchronization

/// Deduplication's place in a flush: the ids of the drained events are marked as committing in
/// it just before the COMMIT (so whatever happens next, a repeat can learn whether they were
/// applied) and recorded as applied after it.
extension EventDeduplicator: CommitParticipant {
    func part(of flushID: Int64, worker: Int, drained: FlushTransaction.Drained) -> (any CommitPart)? {
        // Taken under the drain lock: the ids are mapped later, on the worker's thread.
        drained.eventIDs.isEmpty ? nil : DedupCommitPart(deduplicator: self, eventIDs: drained.eventIDs, flush: flushID)
    }
}

final class DedupCommitPart: CommitPart {
    private let deduplicator: EventDeduplicator
    private let eventIDs: [BufferedEventID]
    private let flush: Int64
    /// The ids, and whether `markCommitting` wrote every mark (one flush key then records them all).
    private let state = Mutex<(ids: [String], marked: Bool)>(([], false))

    init(deduplicator: EventDeduplicator, eventIDs: [BufferedEventID], flush: Int64) {
        self.deduplicator = deduplicator
        self.eventIDs = eventIDs
        self.flush = flush
    }

    private var ids: [String] {
        state.withLock { state in
            if state.ids.isEmpty { state.ids = eventIDs.map(\.id) }
            return state.ids
        }
    }

    func beforeCommit() {
        let marked = deduplicator.markCommitting(ids, flush: flush)
        state.withLock { $0.marked = marked }
    }

    func committed() {
        deduplicator.committed(ids, flush: flush, marked: state.withLock { $0.marked })
    }
}
