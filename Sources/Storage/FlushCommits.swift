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

    /// Whether flush `id` committed. Blocking.
    public static func isCommitted(_ id: Int64, on connection: PostgresConnection) throws -> Bool {
        try connection.execute("SELECT 1 FROM flush_commits WHERE flush_id = $1::int8", [.text(String(id))]).rows.count == 1
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
