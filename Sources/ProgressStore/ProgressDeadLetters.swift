import Storage
import Buffer
import Catalog

/// The `progress_dead_letters` table (migration 005): where a flush puts an entry the database
/// refused for its data (`PostgresError.isDataError`), with the reason and its events' ids, so
/// the rest of its batch commits (see `FlushWorker`'s isolation of poison rows).
public struct ProgressDeadLetters: Sendable {
    public static let insertStatementName = "progress_dead_letters_insert_v1"

    public static let insertSQL = """
        INSERT INTO progress_dead_letters
            (namespace, user_id, goal_id, challenge_id, kind, value, increase, events, event_ids, sqlstate, reason)
        VALUES ($1, $2, $3, $4, $5, $6::int8, $7::int8, $8::int4, $9::text[], $10, $11)
        """

    public static let preparedStatements: [PreparedStatement] = [
        PreparedStatement(name: insertStatementName, sql: insertSQL)
    ]

    public let catalog: Catalog
    public let namespace: String

    public init(catalog: Catalog, namespace: String) {
        self.catalog = catalog
        self.namespace = namespace
    }

    /// Stores `entry` as refused by `error`. Blocking. Runs in the caller's transaction when
    /// there is one (the flush's, so the dead letter commits exactly when the rest does).
    public func record(_ entry: PendingEntry, eventIDs: [String], error: PostgresError, on connection: PostgresConnection) throws {
        let goal = catalog.goals[Int(entry.goal)]
        var ids = BinaryArray(.text, capacity: eventIDs.reduce(0) { $0 + $1.utf8.count + 4 })
        // PostgreSQL text cannot hold NUL, which an event id may carry: it is written as \u0000
        // (a dead letter that failed to store would stall its flush like the row it replaces).
        for id in eventIDs { ids.append(id.contains("\u{0}") ? id.replacingOccurrences(of: "\u{0}", with: "\\u0000") : id) }
        _ = try connection.executePrepared(
            Self.insertStatementName,
            [
                .text(namespace), .text(entry.userID), .text(goal.goalId), .text(goal.challengeId),
                .text(entry.progress.kind == .increment ? "increment" : "absolute"),
                .text(String(entry.progress.value)), .text(String(entry.progress.increase)),
                .text(String(entry.progress.events)), ids.parameter(),
                .text(error.sqlState ?? "XX000"), .text(error.message + (error.detail.map { " (\($0))" } ?? "")),
            ])
    }
}
