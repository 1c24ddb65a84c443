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
/// Threading: all state sits in one `Mutex`. A checkout that must wait parks on its own
/// semaphore; whoever frees a connection or a slot hands it to the first waiter directly
/// (under the mutex), so a waiter cannot miss a wake-up or be overtaken by a later caller.
/// Connecting, preparing and closing happen outside the mutex.
public final class ConnectionPool: Sendable {
    public let settings: ConnectionSettings
    public let limits: PoolLimits
    private let statements: [PreparedStatement]
    private let logger: Logger
    /// `limits.maxIdle` clamped to 0…maxOpen.
    private let maxIdle: Int
    private let state: Mutex<State>

    public init(settings: ConnectionSettings, limits: PoolLimits, statements: [PreparedStatement], logger: Logger) {
        precondition(limits.maxOpen >= 1, "PoolLimits.maxOpen must be at least 1")
        self.settings = settings
        self.limits = limits
        self.statements = statements
        self.logger = logger
        self.maxIdle = min(max(0, limits.maxIdle), limits.maxOpen)
        self.state = Mutex(State())
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
        if maxIdle == 0 {
            try withConnection { _ = try $0.execute("SELECT 1") }
            return
        }
        let wanted: Int? = state.withLock { state in
            guard !state.isClosed else { return nil }
            let count = max(0, min(maxIdle - state.idle.count, limits.maxOpen - state.openCount))
            state.opening += count
            return count
        }
        guard let wanted else { throw Self.closedError }
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
        let surplus: [PostgresConnection] = state.withLock { state in
            state.opening -= wanted
            state.opened += connections.count
            var surplus: [PostgresConnection] = []
            for connection in connections {
                if !adopt(connection, into: &state) { surplus.append(connection) }
            }
            for _ in failures { grantFreedSlot(&state) }
            return surplus
        }
        for connection in surplus { connection.close() }
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
        let now = ContinuousClock.now
        let expired: [PostgresConnection] = state.withLock { state in
            var expired: [PostgresConnection] = []
            state.idle.removeAll { entry in
                guard expiry(of: entry, now: now) != nil else { return false }
                expired.append(entry.connection)
                return true
            }
            state.closed += expired.count
            for _ in expired { grantFreedSlot(&state) }
            return expired
        }
        for connection in expired { connection.close() }
        if !expired.isEmpty {
            logger.debug("closed expired idle connections", metadata: ["count": "\(expired.count)"])
        }
    }

    public var stats: PoolStats {
        state.withLock { state in
            PoolStats(
                active: state.inUse + state.opening, idle: state.idle.count, max: limits.maxOpen,
                waitCount: state.waitCount, waitDuration: state.waitDuration,
                opened: state.opened, closed: state.closed)
        }
    }

    /// Closes the idle connections now and the lent ones as they come back; waiting and later
    /// checkouts throw `PostgresError(.connectionLost)`. Idempotent.
    public func close() {
        let idle: [PostgresConnection] = state.withLock { state in
            state.isClosed = true
            let idle = state.idle.map(\.connection)
            state.idle.removeAll()
            state.closed += idle.count
            for waiter in state.waiters { waiter.give(.poolClosed) }
            state.waiters.removeAll()
            return idle
        }
        for connection in idle { connection.close() }
    }

    // MARK: - Check-out and check-in

    private enum Step {
        case reuse(IdleConnection)
        case open
        case wait(Waiter)
        case fail(PostgresError)
    }

    private func checkOut() throws -> PostgresConnection {
        let deadline = ContinuousClock.now + limits.acquireTimeout
        while true {
            let step: Step = state.withLock { state in
                if state.isClosed { return .fail(Self.closedError) }
                if let entry = state.idle.popLast() {
                    state.inUse += 1
                    return .reuse(entry)
                }
                if state.openCount < limits.maxOpen {
                    state.opening += 1
                    return .open
                }
                let waiter = Waiter()
                state.waiters.append(waiter)
                state.waitCount += 1
                return .wait(waiter)
            }
            switch step {
            case .fail(let error):
                throw error
            case .reuse(let entry):
                if let reason = unusableReason(entry) {
                    log(discarding: entry.connection, reason: reason)
                    entry.connection.close()
                    // The slot is free again: the next turn of the loop takes another idle
                    // connection or opens a replacement in it.
                    state.withLock { state in
                        state.inUse -= 1
                        state.closed += 1
                    }
                    continue
                }
                return entry.connection
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
        var reason: String?
        if broken {
            reason = "connection failure"
        } else if !connection.isHealthy {
            reason = "unhealthy"
        } else if connection.isInTransaction {
            reason = "returned inside a transaction"
        } else if ContinuousClock.now - connection.createdAt >= limits.maxLifetime {
            reason = "max lifetime"
        }
        let discard: Bool = state.withLock { state in
            state.inUse -= 1
            if reason == nil, !state.isClosed {
                if !state.waiters.isEmpty {
                    state.inUse += 1
                    state.waiters.removeFirst().give(.connection(connection))
                    return false
                }
                if state.idle.count < maxIdle {
                    state.idle.append(IdleConnection(connection: connection, since: .now))
                    return false
                }
            }
            state.closed += 1
            grantFreedSlot(&state)
            return true
        }
        if discard {
            if let reason { log(discarding: connection, reason: reason) }
            connection.close()
        }
    }

    /// Opens a connection in a slot already counted in `opening`; gives the slot back (to the
    /// first waiter, if any) when that fails.
    private func openInReservedSlot() throws -> PostgresConnection {
        do {
            let connection = try openConnection(check: false)
            state.withLock { state in
                state.opening -= 1
                state.inUse += 1
                state.opened += 1
            }
            return connection
        } catch {
            state.withLock { state in
                state.opening -= 1
                grantFreedSlot(&state)
            }
            throw error
        }
    }

    /// Parks until a connection or a slot is handed over, the pool closes, or `deadline` passes.
    private func wait(for waiter: Waiter, until deadline: ContinuousClock.Instant) throws -> Waiter.Grant {
        let started = ContinuousClock.now
        defer {
            let waited = ContinuousClock.now - started
            state.withLock { $0.waitDuration += waited }
        }
        let remaining = max(.zero, deadline - started)
        let nanoseconds = remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000
        if waiter.semaphore.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .timedOut {
            let stillQueued: Bool = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0 === waiter }) else { return false }
                state.waiters.remove(at: index)
                return true
            }
            if stillQueued {
                throw PostgresError(
                    kind: .timeout,
                    message: "no database connection free within \(limits.acquireTimeout) (DB_MAX_OPEN_CONNS=\(limits.maxOpen) in use)")
            }
            // Handed something just as the wait ran out: the signal is already on its way.
            waiter.semaphore.wait()
        }
        return waiter.takeGrant()
    }

    // MARK: - Helpers (the ones taking `inout State` run under the mutex)

    /// Places a fresh connection: with the first waiter, else idle. False if it is not wanted.
    private func adopt(_ connection: PostgresConnection, into state: inout State) -> Bool {
        if state.isClosed {
            state.closed += 1
            return false
        }
        if !state.waiters.isEmpty {
            state.inUse += 1
            state.waiters.removeFirst().give(.connection(connection))
            return true
        }
        if state.idle.count < maxIdle {
            state.idle.append(IdleConnection(connection: connection, since: .now))
            return true
        }
        state.closed += 1
        return false
    }

    /// A slot just became free: the first waiter may open a connection in it.
    private func grantFreedSlot(_ state: inout State) {
        guard !state.waiters.isEmpty, state.openCount < limits.maxOpen else { return }
        state.opening += 1
        state.waiters.removeFirst().give(.openSlot)
    }

    private func expiry(of entry: IdleConnection, now: ContinuousClock.Instant) -> String? {
        if now - entry.connection.createdAt >= limits.maxLifetime { return "max lifetime" }
        if now - entry.since >= limits.maxIdleTime { return "max idle time" }
        return nil
    }

    /// Why an idle connection must not be lent out, or nil. Outside the mutex: it may read the socket.
    private func unusableReason(_ entry: IdleConnection) -> String? {
        if let expired = expiry(of: entry, now: .now) { return expired }
        if !entry.connection.checkHealth() { return "closed by the server" }
        return nil
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
