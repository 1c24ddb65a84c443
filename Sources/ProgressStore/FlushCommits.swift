import Storage

/// The `flush_commits` table (migration 006): each flush transaction inserts its id, so whether
/// it committed can be asked afterwards, by the flush itself when its COMMIT went unanswered, or
/// by deduplication resolving an event id a dead process marked as committing in that flush.
public enum FlushCommits {
    public static let insertStatementName = "flush_commits_insert_v1"
    public static let insertSQL = "INSERT INTO flush_commits (flush_id) VALUES ($1::int8)"

    public static let preparedStatements: [PreparedStatement] = [
        PreparedStatement(name: insertStatementName, sql: insertSQL)
    ]

    /// A new flush id: random, so instances need no coordination (a collision, about one in 2^63
    /// per pair, fails the insert and the flush retries with another id).
    public static func newID() -> Int64 { Int64.random(in: 1...Int64.max) }

    /// Records flush `id` in the caller's open transaction.
    public static func record(_ id: Int64, on connection: PostgresConnection) throws {
        _ = try connection.executePrepared(insertStatementName, [.text(String(id))])
    }

    /// Whether flush `id` committed: true or false, or nil when its transaction is still open
    /// on the server after `wait`. Blocking.
    ///
    /// Not a plain SELECT: the flush's transaction may still be finishing on the server (its
    /// client gone, its COMMIT under way), and a SELECT would see "no row" just before the
    /// commit lands. Inserting the same id (rolled back at once) waits for that transaction, as
    /// any unique check does, then conflicts if it committed or goes in if it did not.
    public static func isCommitted(_ id: Int64, wait: Duration = .seconds(2), on connection: PostgresConnection) throws -> Bool? {
        try connection.execute("BEGIN")
        do {
            let milliseconds = max(1, wait.components.seconds * 1_000 + wait.components.attoseconds / 1_000_000_000_000_000)
            try connection.execute("SET LOCAL lock_timeout = \(milliseconds)")
            let inserted = try connection.execute(
                "INSERT INTO flush_commits (flush_id) VALUES ($1::int8) ON CONFLICT DO NOTHING", [.text(String(id))]
            ).affectedRows
            try connection.execute("ROLLBACK")
            return inserted == 0
        } catch let error as PostgresError where error.sqlState == "55P03" {
            // lock_not_available: the flush's transaction is still open.
            _ = try? connection.execute("ROLLBACK")
            return nil
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Ends the server session `pid` (the one a broken flush was committing on), so its
    /// transaction's outcome is final: it either committed already or never will. Returns
    /// whether a session was signalled. Blocking.
    @discardableResult
    public static func endSession(_ pid: Int32, on connection: PostgresConnection) throws -> Bool {
        guard pid > 0 else { return false }
        return try connection.execute("SELECT pg_terminate_backend($1::int4)", [.text(String(pid))])[0, 0] == "t"
    }

    /// Deletes the records older than `retention` seconds; returns how many. Blocking.
    @discardableResult
    public static func prune(olderThan retention: Int, on connection: PostgresConnection) throws -> Int {
        let result = try connection.execute(
            "WITH gone AS (DELETE FROM flush_commits WHERE committed_at < (NOW() AT TIME ZONE 'UTC') - make_interval(secs => $1::int8) RETURNING 1) SELECT count(*) FROM gone",
            [.text(String(retention))])
        return Int(result[0, 0] ?? "0") ?? 0
    }
}
