import Buffer
import Catalog
import ProgressStore
import Storage

/// Writes one event's goal rows the incumbent's way: one single-row statement per goal, each in
/// its own autocommit transaction, prepared once per connection. This is the cost the service's
/// buffer removes (a round trip, a commit and a WAL flush per row instead of per batch), so it
/// is kept deliberately plain: no batching, no pipelining, no explicit transaction.
///
/// The SQL lives here rather than in Storage because it is not the service's writer: it exists
/// only so the benchmarks have something to compare `ProgressWriter` with. The rows it leaves
/// are the rows `ProgressWriter` leaves for the same events on absolute, non-rotating goals (the
/// only kind the peer accepts, see main): same columns set, same status rules (completed once
/// progress reaches the target and kept completed, `completed_at` set once; `in_progress` above
/// zero; `not_started` at zero), only active unclaimed rows updated, and rows created only for
/// default-assigned goals. Timestamps are UTC in TIMESTAMP columns, like the service's.
struct SingleRowWriter: Sendable {
    static let upsertName = "naive_upsert"
    static let updateName = "naive_update"

    let catalog: Catalog
    let namespace: String

    /// Prepares both statements on a fresh connection. Blocking.
    static func prepare(on connection: PostgresConnection) throws {
        try connection.prepare(upsertName, upsertSQL)
        try connection.prepare(updateName, updateSQL)
    }

    /// Writes every change for `userID`, one statement each, in order. Blocking: call it on a
    /// thread the caller owns. Stops at the first error (rows written before it stay written,
    /// as they did for the incumbent).
    func write(userID: String, changes: [GoalUpdate], on connection: PostgresConnection) throws {
        for change in changes {
            let goal = catalog.goals[Int(change.goal)]
            let value = PostgresParameter.text(String(change.value))
            let isIncrement = PostgresParameter.text(change.kind == .increment ? "t" : "f")
            let target = PostgresParameter.text(String(goal.targetValue))
            if goal.defaultAssigned {
                try connection.executePrepared(
                    Self.upsertName,
                    [.text(userID), .text(goal.goalId), .text(goal.challengeId), .text(namespace), value, isIncrement, target])
            } else {
                // Not default-assigned: only a row the REST side assigned moves; none is created.
                try connection.executePrepared(Self.updateName, [.text(userID), .text(goal.goalId), value, isIncrement, target])
            }
        }
    }

    // MARK: - SQL

    /// The SET list both statements share, over the stored row `p` and the statement's
    /// parameters for the value, the kind and the target. `new` (the stored progress after this
    /// event: the sum saturating at INT max, or the new value) is spelled out where it is used,
    /// since SET cannot name a computed value.
    private static func assignments(value: String, isIncrement: String, target: String) -> String {
        let new = "(CASE WHEN \(isIncrement) THEN LEAST(p.progress::int8 + \(value), 2147483647) ELSE \(value) END)"
        return """
            progress = \(new)::int4,
            status = CASE WHEN p.status = 'completed' OR \(new) >= \(target) THEN 'completed'
                          WHEN \(new) > 0 THEN 'in_progress'
                          ELSE 'not_started' END,
            completed_at = CASE WHEN p.status = 'completed' THEN COALESCE(p.completed_at, now() AT TIME ZONE 'UTC')
                                WHEN \(new) >= \(target) THEN now() AT TIME ZONE 'UTC'
                                ELSE p.completed_at END,
            updated_at = now() AT TIME ZONE 'UTC'
            """
    }

    /// $1 user, $2 goal, $3 challenge, $4 namespace, $5 value (int8), $6 is-increment, $7 target.
    /// The inserted row's progress is the value either way (a first login counts 1).
    static let upsertSQL = """
        INSERT INTO user_goal_progress AS p
            (user_id, goal_id, challenge_id, namespace, progress, status, completed_at,
             created_at, updated_at, assigned_at)
        VALUES ($1::text, $2::text, $3::text, $4::text, $5::int8::int4,
                CASE WHEN $5::int8 >= $7::int4 THEN 'completed'
                     WHEN $5::int8 > 0 THEN 'in_progress'
                     ELSE 'not_started' END,
                CASE WHEN $5::int8 >= $7::int4 THEN now() AT TIME ZONE 'UTC' END,
                now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
        ON CONFLICT (user_id, goal_id) DO UPDATE SET
        \(assignments(value: "$5::int8", isIncrement: "$6::bool", target: "$7::int4"))
        WHERE p.status <> 'claimed' AND p.is_active
        """

    /// $1 user, $2 goal, $3 value (int8), $4 is-increment, $5 target.
    static let updateSQL = """
        UPDATE user_goal_progress AS p SET
        \(assignments(value: "$3::int8", isIncrement: "$4::bool", target: "$5::int4"))
        WHERE p.user_id = $1::text AND p.goal_id = $2::text AND p.status <> 'claimed' AND p.is_active
        """
}
