/// A connection the pool can hold: it only needs to know when it was opened.
protocol PooledConnection {
    var createdAt: ContinuousClock.Instant { get }
}

extension PostgresConnection: PooledConnection {}

/// Every decision of `ConnectionPool`, with no I/O, no clock and no lock: who gets a connection
/// or a slot, in which order, what is kept idle, what is closed. Each call returns what the
/// pool must then do (open a connection, park a waiter, close these, hand that to a waiter);
/// the pool runs it under its mutex and does the blocking part outside it. Generic over the
/// connection and the waiter, so its fairness, limits and timeouts are tested without a server.
///
/// Invariants (checked by the tests after every step): at most `maxOpen` connections are open,
/// idle or lent or being opened; waiters exist only while none is idle and `maxOpen` are open;
/// waiters are served in arrival order; every waiter removed from the queue gets exactly one grant.
struct PoolStateMachine<Connection: PooledConnection, Waiter: AnyObject> {
    let limits: PoolLimits
    /// `limits.maxIdle` clamped to 0…maxOpen.
    let maxIdle: Int

    struct Idle {
        let connection: Connection
        let since: ContinuousClock.Instant
    }

    enum Grant {
        /// A connection, already counted as lent.
        case connection(Connection)
        /// A slot, already counted as opening: the waiter opens a connection in it.
        case openSlot
        case poolClosed
    }

    /// A grant for a waiter that left the queue; the pool delivers it.
    struct Handoff {
        let waiter: Waiter
        let grant: Grant
    }

    enum CheckOut {
        /// Lend this idle connection (counted as lent); the caller may still find it closed by
        /// the server, then it calls `replaceLent` and opens a replacement.
        case reuse(Connection)
        /// This idle connection expired (counted as closed): close it and ask again.
        case retire(Connection, reason: String)
        /// A slot is reserved (counted as opening): open a connection, then `openSucceeded` or `openFailed`.
        case open
        /// `maxOpen` are open: the waiter was queued; park it until its grant or the deadline.
        case wait(Waiter)
        case closed
    }

    enum CheckIn {
        /// Handed to the first waiter.
        case handedOver(Handoff)
        case keptIdle
        /// Close it (`reason` nil: only surplus or the pool is closed); its slot may go to a waiter.
        case close(reason: String?, freedSlot: Handoff?)
    }

    private(set) var idle: [Idle] = []
    /// Connections lent out.
    private(set) var lent = 0
    /// Slots reserved for connections being opened (they count against `maxOpen`).
    private(set) var opening = 0
    /// Waiting checkouts, oldest first.
    private(set) var waiters: [Waiter] = []
    private(set) var isClosed = false
    private(set) var waitCount = 0
    private(set) var waitDuration: Duration = .zero
    private(set) var opened = 0
    private(set) var closed = 0

    init(limits: PoolLimits) {
        self.limits = limits
        self.maxIdle = min(max(0, limits.maxIdle), limits.maxOpen)
    }

    var openCount: Int { idle.count + lent + opening }

    var stats: PoolStats {
        PoolStats(
            active: lent + opening, idle: idle.count, max: limits.maxOpen, waitCount: waitCount,
            waitDuration: waitDuration, opened: opened, closed: closed)
    }

    // MARK: - Checking out

    /// The next step of a checkout at `now`. The most recently returned idle connection goes
    /// first (the warmest); `makeWaiter` is called only when the checkout must wait.
    mutating func checkOut(now: ContinuousClock.Instant, makeWaiter: () -> Waiter) -> CheckOut {
        if isClosed { return .closed }
        if let entry = idle.popLast() {
            if let reason = expiry(of: entry, now: now) {
                // Its slot is free now: the caller's next step opens a replacement in it (no
                // waiter exists while a connection was idle).
                closed += 1
                return .retire(entry.connection, reason: reason)
            }
            lent += 1
            return .reuse(entry.connection)
        }
        if openCount < limits.maxOpen {
            opening += 1
            return .open
        }
        let waiter = makeWaiter()
        waiters.append(waiter)
        waitCount += 1
        return .wait(waiter)
    }

    /// A connection just lent turned out unusable before use (closed by the server): it is
    /// closed and its slot stays the caller's, now counted as opening, to open a replacement in
    /// (then `openSucceeded` or `openFailed`). No later checkout overtakes the caller.
    mutating func replaceLent() {
        lent -= 1
        closed += 1
        opening += 1
    }

    /// A connection was opened in a reserved slot and is lent to the one that opened it.
    mutating func openSucceeded() {
        opening -= 1
        lent += 1
        opened += 1
    }

    /// Opening in a reserved slot failed: the slot goes to the first waiter, if any.
    mutating func openFailed() -> Handoff? {
        opening -= 1
        return grantFreedSlot()
    }

    /// A parked waiter's deadline passed. True if it was still queued (it has timed out and will
    /// get nothing); false if a grant was already handed to it (it must take that one).
    mutating func waiterTimedOut(_ waiter: Waiter) -> Bool {
        guard let index = waiters.firstIndex(where: { $0 === waiter }) else { return false }
        waiters.remove(at: index)
        return true
    }

    mutating func recordWait(_ duration: Duration) {
        waitDuration += duration
    }

    // MARK: - Checking in

    /// A lent connection comes back. `unusable` is why it must not be reused (a connection
    /// failure, unhealthy, left inside a transaction), found by the caller; past `maxLifetime`
    /// is checked here.
    mutating func checkIn(_ connection: Connection, unusable: String?, now: ContinuousClock.Instant) -> CheckIn {
        lent -= 1
        let reason = unusable ?? (now - connection.createdAt >= limits.maxLifetime ? "max lifetime" : nil)
        if reason == nil, !isClosed {
            if !waiters.isEmpty {
                lent += 1
                return .handedOver(Handoff(waiter: waiters.removeFirst(), grant: .connection(connection)))
            }
            if idle.count < maxIdle {
                idle.append(Idle(connection: connection, since: now))
                return .keptIdle
            }
        }
        closed += 1
        return .close(reason: reason, freedSlot: grantFreedSlot())
    }

    // MARK: - Warming up

    /// Reserves slots for a warm-up up to `maxIdle` idle connections; nil once closed.
    mutating func reserveWarmUp() -> Int? {
        guard !isClosed else { return nil }
        let count = max(0, min(maxIdle - idle.count, limits.maxOpen - openCount))
        opening += count
        return count
    }

    /// The warm-up opened `connections` in `reserved` slots; the rest failed. Fresh connections
    /// go to waiters first, then idle; `surplus` are not wanted (close them). Failed slots go to
    /// waiters.
    mutating func finishWarmUp(
        reserved: Int, connections: [Connection], now: ContinuousClock.Instant
    ) -> (handoffs: [Handoff], surplus: [Connection]) {
        opening -= reserved
        opened += connections.count
        var handoffs: [Handoff] = []
        var surplus: [Connection] = []
        for connection in connections {
            if isClosed {
                closed += 1
                surplus.append(connection)
            } else if !waiters.isEmpty {
                lent += 1
                handoffs.append(Handoff(waiter: waiters.removeFirst(), grant: .connection(connection)))
            } else if idle.count < maxIdle {
                idle.append(Idle(connection: connection, since: now))
            } else {
                closed += 1
                surplus.append(connection)
            }
        }
        for _ in 0..<(reserved - connections.count) {
            if let handoff = grantFreedSlot() { handoffs.append(handoff) }
        }
        return (handoffs, surplus)
    }

    // MARK: - Housekeeping and closing

    /// Takes out the idle connections unused for `maxIdleTime` or older than `maxLifetime` at
    /// `now` (close them); their slots go to waiters.
    mutating func reap(now: ContinuousClock.Instant) -> (expired: [Connection], handoffs: [Handoff]) {
        var expired: [Connection] = []
        let limits = limits
        idle.removeAll { entry in
            guard Self.expiry(of: entry, now: now, limits: limits) != nil else { return false }
            expired.append(entry.connection)
            return true
        }
        closed += expired.count
        var handoffs: [Handoff] = []
        for _ in expired {
            if let handoff = grantFreedSlot() { handoffs.append(handoff) }
        }
        return (expired, handoffs)
    }

    /// Closes the pool: the idle connections are returned (close them), every waiter is told;
    /// lent connections are closed as they come back. Idempotent.
    mutating func close() -> (idle: [Connection], handoffs: [Handoff]) {
        isClosed = true
        let connections = idle.map(\.connection)
        idle.removeAll()
        closed += connections.count
        let handoffs = waiters.map { Handoff(waiter: $0, grant: .poolClosed) }
        waiters.removeAll()
        return (connections, handoffs)
    }

    // MARK: - Helpers

    /// A slot just became free: the first waiter may open a connection in it.
    private mutating func grantFreedSlot() -> Handoff? {
        guard !waiters.isEmpty, openCount < limits.maxOpen else { return nil }
        opening += 1
        return Handoff(waiter: waiters.removeFirst(), grant: .openSlot)
    }

    private func expiry(of entry: Idle, now: ContinuousClock.Instant) -> String? {
        Self.expiry(of: entry, now: now, limits: limits)
    }

    private static func expiry(of entry: Idle, now: ContinuousClock.Instant, limits: PoolLimits) -> String? {
        if now - entry.connection.createdAt >= limits.maxLifetime { return "max lifetime" }
        if now - entry.since >= limits.maxIdleTime { return "max idle time" }
        return nil
    }
}

extension PoolStateMachine: Sendable where Connection: Sendable, Waiter: Sendable {}
extension PoolStateMachine.Idle: Sendable where Connection: Sendable {}
extension PoolStateMachine.Grant: Sendable where Connection: Sendable {}
extension PoolStateMachine.Handoff: Sendable where Connection: Sendable, Waiter: Sendable {}
extension PoolStateMachine.CheckOut: Sendable where Connection: Sendable, Waiter: Sendable {}
extension PoolStateMachine.CheckIn: Sendable where Connection: Sendable, Waiter: Sendable {}
