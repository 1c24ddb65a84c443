import Synchronization

/// `ACK_WAITING_LIMIT`: the most calls waiting for their flush to commit at once. Each holds a
/// callback and an open HTTP/2 stream; during a database outage every retry of the bridge would
/// add one, so past the limit a new call is refused (RESOURCE_EXHAUSTED, before its event goes
/// into the buffer) until commits free places.
///
/// A call takes a place before its event is ingested and gives it back when its wait ends:
/// answered, cancelled (deadline, reset, disconnect) or stopped; or at once when it has nothing
/// to wait for. Exact: a compare-and-swap, never one over.
final class CommitWaitLimit: Sendable {
    let limit: Int
    private let taken = Atomic<Int>(0)

    init(limit: Int) {
        precondition(limit > 0, "the waiting limit must be positive")
        self.limit = limit
    }

    /// Places held now.
    var count: Int { taken.load(ordering: .relaxed) }

    /// Takes a place; false at the limit.
    func take() -> Bool {
        var current = taken.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = taken.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func giveBack() {
        taken.subtract(1, ordering: .relaxed)
    }
}
