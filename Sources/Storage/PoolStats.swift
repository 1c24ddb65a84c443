/// A snapshot of the pool, for the `db_connections_*` gauges and tests.
public struct PoolStats: Sendable, Equatable {
    /// Connections checked out or being opened for a checkout (the in-use gauge).
    public var active: Int
    /// Connections open and waiting in the pool.
    public var idle: Int
    /// `maxOpen`.
    public var max: Int
    /// Checkouts that found `maxOpen` in use and had to wait (counted once each, timed out or not).
    public var waitCount: Int
    /// The total time those checkouts waited.
    public var waitDuration: Duration
    /// Connections opened and closed since the pool was made.
    public var opened: Int
    public var closed: Int

    public init(
        active: Int = 0, idle: Int = 0, max: Int = 0, waitCount: Int = 0, waitDuration: Duration = .zero,
        opened: Int = 0, closed: Int = 0
    ) {
        self.active = active
        self.idle = idle
        self.max = max
        self.waitCount = waitCount
        self.waitDuration = waitDuration
        self.opened = opened
        self.closed = closed
    }
}
