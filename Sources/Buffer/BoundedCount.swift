import Synchronization

/// A count that never passes its limit, shared by threads without a lock: the buffer's pending
/// entries (`BUFFER_SIZE_LIMIT`), the held event ids (`BUFFER_EVENT_ID_LIMIT`), the calls waiting
/// for their commit (`ACK_WAITING_LIMIT`). Exact: `take` is a compare-and-swap loop, so two
/// takers can never both have the last place.
public struct BoundedCount: ~Copyable, Sendable {
    public let limit: Int
    private let value = Atomic<Int>(0)

    public init(limit: Int) {
        precondition(limit > 0, "a limit must be positive")
        self.limit = limit
    }

    /// Places taken now.
    public var count: Int { value.load(ordering: .relaxed) }

    /// Takes `places` unless that would pass `limit`; true when taken. Taking none always succeeds.
    public func take(_ places: Int = 1) -> Bool {
        if places == 0 { return true }
        var current = value.load(ordering: .relaxed)
        while current <= limit - places {
            let (exchanged, original) = value.compareExchange(expected: current, desired: current + places, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Takes `places` whatever the limit (what was merged in while a batch was out, say): the
    /// count may pass the limit, and later takes fail until it is back under.
    public func force(_ places: Int) {
        value.add(places, ordering: .relaxed)
    }

    /// Gives back `places` taken earlier.
    public func giveBack(_ places: Int = 1) {
        value.subtract(places, ordering: .relaxed)
    }
}
