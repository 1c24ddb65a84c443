import Dispatch
import Foundation
import Logging
import Synchronization

/// A blocking pool of `PostgresConnection`s for threads the caller owns (flush workers,
/// start-up threads). Every method blocks; none may run on the Swift cooperative pool.
///
/// - `warmUp` opens `maxIdle` connections in parallel, so the first flush pays no set-up.
/// - `withConnection` lends one out: an idle one (checked first: age, idle time, and whether the
///   server closed it meanwhile), else a new one while fewer than `maxOpen` are open, else it
///   waits (first come, first served) up to `acquireTimeout`. A new connection prepares
///   `statements` before anyone uses it.
/// - A connection that broke, is left inside a transaction, or outlived `maxLifetime` is closed
///   when it comes back; its slot goes to the next waiter, which opens a replacement.
///
/// Threading: every decision is `PoolStateMachine`'s, made under one `Mutex`; this type runs
/// what it answers. A checkout that must wait parks on its own semaphore; whoever frees a
/// connection or a slot takes the first waiter off the queue under the mutex and hands it over
/// just after, so a waiter cannot miss a wake-up or be overtaken by a later caller. Connecting,
/// preparing, health checks and closing happen outside the mutex.
public final class ConnectionPool: Sendable {
    public let settings: ConnectionSettings
    public let limits: PoolLimits
    private let statements: [PreparedStatement]
    private let logger: Logger
    private let state: Mutex<State>

    public init(settings: ConnectionSettings, limits: PoolLimits, statements: [PreparedStatement], logger: Logger) {
        precondition(limits.maxOpen >= 1, "PoolLimits.maxOpen must be at least 1")
        self.settings = settings
        self.limits = limits
        self.statements = statements
        self.logger = logger
        self.state = Mutex(State(limits: limits))
    }

    deinit {
        close()
    }

    // MARK: - Public API

    /// Opens `limits.maxIdle` connections in parallel, on threads it starts itself; each runs
    /// `SELECT 1` and prepares `statements`, then waits idle. Logs the ones that fail and throws
    /// the first failure only if none opened. With `maxIdle` 0 it checks one connection and
    /// closes it. Blocking.
    public func warmUp() throws {
        if state.withLock({ $0.maxIdle }) == 0 {
            try withConnection { _ = try $0.execute("SELECT 1") }
            return
        }
        guard let wanted = state.withLock({ $0.reserveWarmUp() }) else { throw Self.closedError }
        if wanted == 0 { return }

        let results = WarmUpResults(count: wanted)
        let finished = DispatchSemaphore(value: 0)
        for index in 0..<wanted {
            let thread = Thread { [self] in
                results.store(index, Result { try self.openConnection(check: true) })
                finished.signal()
            }
            thread.name = "db-pool-warmup-\(index)"
            thread.start()
        }
        for _ in 0..<wanted { finished.wait() }

        var connections: [PostgresConnection] = []
        var failures: [any Error] = []
        for result in results.all {
            switch result {
            case .success(let connection): connections.append(connection)
            case .failure(let error): failures.append(error)
            }
        }
        let placed = state.withLock { $0.finishWarmUp(reserved: wanted, connections: connections, now: .now) }
        deliver(placed.handoffs)
        for connection in placed.surplus { connection.close() }
        if connections.isEmpty, let first = failures.first { throw first }
        if let first = failures.first {
            logger.warning(
                "connection pool warm-up opened fewer connections than DB_MAX_IDLE_CONNS",
                metadata: ["opened": "\(connections.count)", "wanted": "\(wanted)", "error": "\(first)"])
        }
    }

    /// Checks a connection out (blocking, see the type's notes), runs `body` with it, and takes
    /// it back: to idle, or closed if it is unhealthy, `body` threw a connection failure, it is
    /// still inside a transaction, it outlived `maxLifetime`, or `maxIdle` are idle already.
    /// Throws `PostgresError(.timeout)` when no connection is free within `acquireTimeout`,
    /// `.connect` when a needed connection cannot be opened, `.connectionLost` once closed.
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkOut()
        let value: T
        do {
            value = try body(connection)
        } catch {
            checkIn(connection, broken: (error as? PostgresError)?.isConnectionFailure ?? false)
            throw error
        }
        checkIn(connection, broken: false)
        return value
    }

    /// Closes idle connections unused for `maxIdleTime` or older than `maxLifetime`.
    /// The service calls it periodically from one of its own threads.
    public func reapIdle() {
        let reaped = state.withLock { $0.reap(now: .now) }
        deliver(reaped.handoffs)
        for connection in reaped.expired { connection.close() }
        if !reaped.expired.isEmpty {
            logger.debug("closed expired idle connections", metadata: ["count": "\(reaped.expired.count)"])
        }
    }

    public var stats: PoolStats {
        state.withLock { $0.stats }
    }

    /// Closes the idle connections now and the lent ones as they come back; waiting and later
    /// checkouts throw `PostgresError(.connectionLost)`. Idempotent.
    public func close() {
        let closing = state.withLock { $0.close() }
        deliver(closing.handoffs)
        for connection in closing.idle { connection.close() }
    }

    // MARK: - Check-out and check-in

    private func checkOut() throws -> PostgresConnection {
        let deadline = ContinuousClock.now + limits.acquireTimeout
        while true {
            switch state.withLock({ $0.checkOut(now: .now, makeWaiter: { Waiter() }) }) {
            case .closed:
                throw Self.closedError
            case .retire(let connection, let reason):
                log(discarding: connection, reason: reason)
                connection.close()
            case .reuse(let connection):
                guard connection.checkHealth() else {
                    log(discarding: connection, reason: "closed by the server")
                    connection.close()
                    state.withLock { $0.replaceLent() }
                    return try openInReservedSlot()
                }
                return connection
            case .open:
                return try openInReservedSlot()
            case .wait(let waiter):
                switch try wait(for: waiter, until: deadline) {
                case .connection(let connection): return connection
                case .openSlot: return try openInReservedSlot()
                case .poolClosed: throw Self.closedError
                }
            }
        }
    }

    private func checkIn(_ connection: PostgresConnection, broken: Bool) {
        var unusable: String?
        if broken {
            unusable = "connection failure"
        } else if !connection.isHealthy {
            unusable = "unhealthy"
        } else if connection.isInTransaction {
            unusable = "returned inside a transaction"
        }
        switch state.withLock({ $0.checkIn(connection, unusable: unusable, now: .now) }) {
        case .handedOver(let handoff):
            deliver([handoff])
        case .keptIdle:
            break
        case .close(let reason, let freedSlot):
            if let freedSlot { deliver([freedSlot]) }
            if let reason { log(discarding: connection, reason: reason) }
            connection.close()
        }
    }

    /// Opens a connection in a slot already reserved (counted as opening); gives the slot back
    /// (to the first waiter, if any) when that fails.
    private func openInReservedSlot() throws -> PostgresConnection {
        do {
            let connection = try openConnection(check: false)
            state.withLock { $0.openSucceeded() }
            return connection
        } catch {
            if let handoff = state.withLock({ $0.openFailed() }) { deliver([handoff]) }
            throw error
        }
    }

    /// Parks until a connection or a slot is handed over, the pool closes, or `deadline` passes.
    private func wait(for waiter: Waiter, until deadline: ContinuousClock.Instant) throws -> State.Grant {
        let started = ContinuousClock.now
        defer {
            let waited = ContinuousClock.now - started
            state.withLock { $0.recordWait(waited) }
        }
        let remaining = max(.zero, deadline - started)
        let nanoseconds = remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000
        if waiter.semaphore.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .timedOut {
            if state.withLock({ $0.waiterTimedOut(waiter) }) {
                throw PostgresError(
                    kind: .timeout,
                    message: "no database connection free within \(limits.acquireTimeout) (DB_MAX_OPEN_CONNS=\(limits.maxOpen) in use)")
            }
            // Handed something just as the wait ran out: the signal is on its way.
            waiter.semaphore.wait()
        }
        return waiter.takeGrant()
    }

    // MARK: - Helpers

    /// Gives waiters what the state machine granted them (outside the mutex).
    private func deliver(_ handoffs: [State.Handoff]) {
        for handoff in handoffs { handoff.waiter.give(handoff.grant) }
    }

    /// Connects and prepares `statements`; with `check`, also runs `SELECT 1`.
    private func openConnection(check: Bool) throws -> PostgresConnection {
        let connection = try PostgresConnection(settings: settings)
        do {
            if check { try connection.execute("SELECT 1") }
            for statement in statements {
                try connection.prepare(statement.name, statement.sql)
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private func log(discarding connection: PostgresConnection, reason: String) {
        let metadata: Logger.Metadata = ["reason": "\(reason)", "backend_pid": "\(connection.backendPID)"]
        switch reason {
        case "max lifetime", "max idle time":
            logger.debug("closing pooled connection", metadata: metadata)
        default:
            logger.warning("discarding pooled connection", metadata: metadata)
        }
    }

    private static let closedError = PostgresError(kind: .connectionLost, message: "the connection pool is closed")
}
