import Dispatch
import Synchronization

extension ConnectionPool {
    typealias State = PoolStateMachine<PostgresConnection, Waiter>

    /// One parked checkout. It is handed exactly one grant (see `PoolStateMachine`).
    final class Waiter: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        private let grant = Mutex<State.Grant?>(nil)

        func give(_ value: State.Grant) {
            grant.withLock { $0 = value }
            semaphore.signal()
        }

        func takeGrant() -> State.Grant {
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
