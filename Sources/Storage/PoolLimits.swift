/// The pool's limits: the `DB_*` settings, with the incumbent Go `database/sql` pool's meaning.
public struct PoolLimits: Sendable, Equatable {
    /// `DB_MAX_OPEN_CONNS`: connections open at once, in use, being opened or idle.
    public var maxOpen: Int
    /// `DB_MAX_IDLE_CONNS`: idle connections kept (more are closed as they come back), and how
    /// many `warmUp` opens. Never more than `maxOpen` in effect.
    public var maxIdle: Int
    /// `DB_CONN_MAX_LIFETIME` (30m): a connection this old is closed when it is next returned or taken.
    public var maxLifetime: Duration
    /// `DB_CONN_MAX_IDLE_TIME` (5m): an idle connection unused this long is closed.
    public var maxIdleTime: Duration
    /// How long a checkout waits for a free connection when `maxOpen` are in use (10s).
    public var acquireTimeout: Duration

    public init(
        maxOpen: Int, maxIdle: Int, maxLifetime: Duration = .seconds(30 * 60),
        maxIdleTime: Duration = .seconds(5 * 60), acquireTimeout: Duration = .seconds(10)
    ) {
        self.maxOpen = maxOpen
        self.maxIdle = maxIdle
        self.maxLifetime = maxLifetime
        self.maxIdleTime = maxIdleTime
        self.acquireTimeout = acquireTimeout
    }
}
