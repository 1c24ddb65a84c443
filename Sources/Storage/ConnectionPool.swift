import Foundation
import Logging

/// The `DB_*` pool limits (names and defaults of the incumbent's Go `database/sql` pool).
public struct PoolLimits: Sendable, Equatable {
    /// `DB_MAX_OPEN_CONNS`: connections open at once, in use or idle.
    public var maxOpen: Int
    /// `DB_MAX_IDLE_CONNS`: idle connections kept; also how many `warmUp` opens.
    public var maxIdle: Int
    /// `DB_CONN_MAX_LIFETIME`: a connection is closed once this old (when next returned or taken).
    public var maxLifetime: Duration
    /// `DB_CONN_MAX_IDLE_TIME`: an idle connection is closed after this long unused.
    public var maxIdleTime: Duration
    /// How long a checkout waits for a free connection before it fails.
    public var acquireTimeout: Duration

    public init(
        maxOpen: Int, maxIdle: Int, maxLifetime: Duration = .seconds(1_800),
        maxIdleTime: Duration = .seconds(300), acquireTimeout: Duration = .seconds(10)
    ) {
        self.maxOpen = maxOpen
        self.maxIdle = maxIdle
        self.maxLifetime = maxLifetime
        self.maxIdleTime = maxIdleTime
        self.acquireTimeout = acquireTimeout
    }
}

/// The pool's gauges (`db_connections_*`).
public struct PoolStats: Sendable, Equatable {
    public var active = 0
    public var idle = 0
    public var max = 0
    /// Checkouts that had to wait for a connection, and how long they waited in all.
    public var waitCount = 0
    public var waitDuration: Duration = .zero
    public var opened = 0
    public var closed = 0
}

/// A statement every pooled connection prepares before first use.
public struct PreparedStatement: Sendable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// A blocking pool of libpq connections for threads the caller owns.
///
/// - `warmUp` opens `maxIdle` connections in parallel, checks each with `SELECT 1` and prepares
///   the statements, so the first flush pays no connection set-up.
/// - `withConnection` checks one out (opening one if fewer than `maxOpen` exist, otherwise
///   waiting up to `acquireTimeout`), runs the body, and gives it back. A connection that is
///   unhealthy, broke in the body, or outlived `maxLifetime` is closed instead, and replaced
///   transparently on a later checkout.
///
/// Threading: all calls block; none may run on the Swift cooperative pool. State is guarded by
/// one `NSCondition` (a mutex with a wait queue: checkouts sleep on it when the pool is full).
public final class ConnectionPool: @unchecked Sendable {
    // @unchecked: every mutable field below is read and written only while `condition` is locked.
    public let settings: ConnectionSettings
    public let limits: PoolLimits
    private let statements: [PreparedStatement]
    private let logger: Logger

    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var active = 0
    /// Connections being opened right now (they count against `maxOpen`).
    private var opening = 0
    private var closed = false
    private var counters = PoolStats()

    public init(settings: ConnectionSettings, limits: PoolLimits, statements: [PreparedStatement], logger: Logger) {
        precondition(limits.maxOpen >= 1 && limits.maxIdle >= 0 && limits.maxIdle <= limits.maxOpen)
        self.settings = settings
        self.limits = limits
        self.statements = statements
        self.logger = logger
        counters.max = limits.maxOpen
    }

    /// Opens `maxIdle` connections in parallel (on threads it starts), runs `SELECT 1` and
    /// prepares the statements on each, and keeps them idle. Throws the first failure.
    public func warmUp() throws {
        let wanted = locked { Swift.max(0, limits.maxIdle - idle.count - active) }
        if wanted == 0 { return }
        let results = ResultsBox(count: wanted)
        let group = DispatchGroup()
        for i in 0..<wanted {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                do {
                    let connection = try self.openConnection()
                    try connection.execute("SELECT 1")
                    results.set(i, .success(connection))
                } catch {
                    results.set(i, .failure(error))
                }
            }
            thread.name = "pool-warmup-\(i)"
            thread.start()
        }
        group.wait()
        var firstError: (any Error)?
        locked {
            for result in results.all {
                switch result {
                case .success(let connection): idle.append(connection)
                case .failure(let error): firstError = firstError ?? error
                case nil: break
                }
            }
        }
        if let firstError { throw firstError }
    }

    /// Runs `body` with a connection of the pool. Blocking.
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkOut()
        do {
            let value = try body(connection)
            checkIn(connection, broken: false)
            return value
        } catch let error as PostgresError where error.isConnectionFailure {
            checkIn(connection, broken: true)
            throw error
        } catch {
            checkIn(connection, broken: false)
            throw error
        }
    }

    /// Closes idle connections past `maxIdleTime` or `maxLifetime`.
    public func reapIdle() {
        let now = ContinuousClock.now
        let expired: [PostgresConnection] = locked {
            let (keep, drop) = idle.partitioned { !isExpired($0, now: now) }
            idle = keep
            counters.closed += drop.count
            return drop
        }
        for connection in expired { connection.close() }
        if !expired.isEmpty { logger.debug("closed idle connections", metadata: ["count": "\(expired.count)"]) }
    }

    public var stats: PoolStats {
        locked {
            var stats = counters
            stats.active = active
            stats.idle = idle.count
            return stats
        }
    }

    /// Closes idle connections now and the others when they come back; later checkouts throw.
    public func close() {
        let toClose: [PostgresConnection] = locked {
            closed = true
            defer { idle.removeAll() }
            counters.closed += idle.count
            condition.broadcast()
            return idle
        }
        for connection in toClose { connection.close() }
    }

    // MARK: - Check-out and check-in

    private func checkOut() throws -> PostgresConnection {
        let deadline = ContinuousClock.now + limits.acquireTimeout
        var waitedSince: ContinuousClock.Instant?
        condition.lock()
        while true {
            if closed {
                condition.unlock()
                throw PostgresError(kind: .connectionLost, sqlState: nil, message: "connection pool is closed")
            }
            if let connection = idle.popLast() {
                if isExpired(connection, now: .now) || !connection.isHealthy {
                    counters.closed += 1
                    condition.unlock()
                    connection.close()
                    condition.lock()
                    continue
                }
                active += 1
                noteWait(since: waitedSince)
                condition.unlock()
                return connection
            }
            if active + idle.count + opening < limits.maxOpen {
                opening += 1
                noteWait(since: waitedSince)
                condition.unlock()
                do {
                    let connection = try openConnection()
                    locked {
                        opening -= 1
                        active += 1
                    }
                    return connection
                } catch {
                    locked {
                        opening -= 1
                        condition.signal()
                    }
                    throw error
                }
            }
            if waitedSince == nil { waitedSince = .now }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero || !condition.wait(until: Date(timeIntervalSinceNow: remaining.seconds)) {
                if ContinuousClock.now >= deadline {
                    noteWait(since: waitedSince)
                    condition.unlock()
                    throw PostgresError(
                        kind: .timeout, sqlState: nil,
                        message: "no database connection free within \(limits.acquireTimeout) (DB_MAX_OPEN_CONNS=\(limits.maxOpen))")
                }
            }
        }
    }

    private func checkIn(_ connection: PostgresConnection, broken: Bool) {
        let now = ContinuousClock.now
        let keep: Bool = locked {
            active -= 1
            defer { condition.signal() }
            if closed || broken || !connection.isHealthy || isExpired(connection, now: now)
                || idle.count >= limits.maxIdle
            {
                counters.closed += 1
                return false
            }
            connection.lastReturnedAt = now
            idle.append(connection)
            return true
        }
        if !keep { connection.close() }
    }

    private func openConnection() throws -> PostgresConnection {
        let connection = try PostgresConnection(settings: settings)
        do {
            for statement in statements {
                try connection.prepare(statement.name, statement.sql)
            }
        } catch {
            connection.close()
            throw error
        }
        locked { counters.opened += 1 }
        return connection
    }

    /// Caller holds the lock.
    private func isExpired(_ connection: PostgresConnection, now: ContinuousClock.Instant) -> Bool {
        now - connection.createdAt >= limits.maxLifetime || now - connection.lastReturnedAt >= limits.maxIdleTime
    }

    /// Caller holds the lock.
    private func noteWait(since start: ContinuousClock.Instant?) {
        guard let start else { return }
        counters.waitCount += 1
        counters.waitDuration += ContinuousClock.now - start
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }
}

/// Results of the warm-up threads, one slot each.
private final class ResultsBox: @unchecked Sendable {
    // @unchecked: slots are written under `lock` and read after the DispatchGroup wait.
    private let lock = NSLock()
    private var slots: [Result<PostgresConnection, any Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<PostgresConnection, any Error>) {
        lock.lock()
        slots[index] = result
        lock.unlock()
    }

    var all: [Result<PostgresConnection, any Error>?] {
        lock.lock()
        defer { lock.unlock() }
        return slots
    }
}

extension Array {
    fileprivate func partitioned(_ keep: (Element) -> Bool) -> ([Element], [Element]) {
        var kept: [Element] = [], dropped: [Element] = []
        for element in self { if keep(element) { kept.append(element) } else { dropped.append(element) } }
        return (kept, dropped)
    }
}

extension Duration {
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
