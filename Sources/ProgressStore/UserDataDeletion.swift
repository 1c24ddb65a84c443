import Storage

/// A GDPR deletion's SQL: every stored row of the users in the namespace, in the progress table
/// and in `progress_dead_letters` (which holds their ids and event ids too). Runs inside the
/// flush transaction that drained the deletions, before that flush's own rows are written.
public enum UserDataDeletion {
    /// Rows deleted for one user.
    public struct Deleted: Sendable, Equatable {
        public var progressRows: Int
        public var deadLetters: Int

        public init(progressRows: Int, deadLetters: Int) {
            self.progressRows = progressRows
            self.deadLetters = deadLetters
        }
    }

    static let sql = """
        WITH p AS (DELETE FROM \(ProgressWriter.table) WHERE namespace = $1 AND user_id = ANY($2::text[]) RETURNING user_id),
             d AS (DELETE FROM progress_dead_letters WHERE namespace = $1 AND user_id = ANY($2::text[]) RETURNING user_id)
        SELECT u, (SELECT count(*) FROM p WHERE p.user_id = u), (SELECT count(*) FROM d WHERE d.user_id = u)
        FROM unnest($2::text[]) AS u
        """

    /// Deletes the rows of `users` in `namespace`; returns what went, by user. Blocking.
    public static func delete(
        _ users: [String], namespace: String, on connection: PostgresConnection
    ) throws -> [String: Deleted] {
        guard !users.isEmpty else { return [:] }
        var ids = BinaryArray(.text, capacity: users.reduce(0) { $0 + $1.utf8.count + 4 })
        for user in users { ids.append(user) }
        var deleted: [String: Deleted] = [:]
        for row in try connection.execute(sql, [.text(namespace), ids.parameter()]).rows {
            guard let user = row[0] else { continue }
            deleted[user] = Deleted(progressRows: Int(row[1] ?? "0") ?? 0, deadLetters: Int(row[2] ?? "0") ?? 0)
        }
        return deleted
    }
}
