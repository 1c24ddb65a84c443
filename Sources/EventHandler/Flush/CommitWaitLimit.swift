import Buffer

/// `ACK_WAITING_LIMIT`: the most calls waiting for their flush to commit at once. Each holds a
/// callback and an open HTTP/2 stream; during a database outage every retry of the bridge would
/// add one, so past the limit a new call is refused (RESOURCE_EXHAUSTED, before its event goes
/// into the buffer) until commits free places.
///
/// A call takes a place before its event is ingested and gives it back when its wait ends:
/// answered, cancelled (deadline, reset, disconnect) or stopped; or at once when it has nothing
/// to wait for. Exact (`BoundedCount`): never one over.
final class CommitWaitLimit: Sendable {
    private let places: BoundedCount

    init(limit: Int) {
        places = BoundedCount(limit: limit)
    }

    var limit: Int { places.limit }

    /// Places held now.
    var count: Int { places.count }

    /// Takes a place; false at the limit.
    func take() -> Bool { places.take() }

    func giveBack() { places.giveBack() }
}
