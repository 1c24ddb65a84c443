import Dispatch
import Synchronization

/// What the pool holds under its mutex: idle connections, lent and opening counts, waiters in
/// arrival order, and the wait statistics.
extension ConnectionPool {
    struct IdleConnection {
        let connection: PostgresConnection
        let since: ContinuousClock.Instant
    }

    struct State {
        var idle: [IdleConnection] = []
        /// Connections lent out.
        var inUse = 0
        /// Slots reserved for connections being opened (they count against `maxOpen`).
        var opening = 0
        /// Checkouts waiting for a connection or a slot, oldest first. Non-empty only while
        /// `idle` is empty and `maxOpen` are open.
        var waiters: [Waiter] = []
        var isClosed = false
        var waitCount = 0
        var waitDuration: Duration = .zero
        var opened = 0
        var closed = 0

        var openCount: Int { idle.count + inUse + opening }
    }

    /// One parked checkout. It is handed exactly one grant, under the pool's mutex.
    final class Waiter: Sendable {
        enum Grant {
            /// A connection, already counted as in use.
            case connection(PostgresConnection)
            /// A slot, already counted as opening: open a connection in it.
            case openSlot
            case poolClosed
        }

        let semaphore = DispatchSemaphore(value: 0)
        private let grant = Mutex<Grant?>(nil)

        func give(_ value: Grant) {
            grant.withLock { $0 = value }
            semaphore.signal()
        }

        func takeGrant() -> Grant {
            grant.withLock { grant in
                guard let value = grant else { preconditionFailure("woken without a grant") }
                return value
            }
        }
    }

    /// The warm-up threads' results, one slot each.
    final class WarmUpResults: Sendable {
        private let slots: Mutex<[Result<PostgresConnection, any Error>?]>

        init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

        func store(_ index: Int, _ result: Result<PostgresConnection, any Error>) {
            slots.withLock { $0[index] = result }
        }

        var all: [Result<PostgresConnection, any Error>] {
            slots.withLock { $0.compactMap { $0 } }
        }
    }
}
