import Storage

/// Rows the REST side (the incumbent's service) creates before events arrive.
public enum RestSideRows {
    /// Rows the REST side would have created before events arrive: assignments of non-default
    /// goals (active for a quarter of the users, inactive for another quarter), claimed rows, and
    /// completed rows. They exercise every branch of the write.
    public static func make(users: [String], catalog: TestCatalog, into model: inout ExpectedState) -> [(String, TestCatalog.GoalSpec, ExpectedRow)] {
        var rows: [(String, TestCatalog.GoalSpec, ExpectedRow)] = []
        let nonDefault = catalog.goals.filter { !$0.defaultAssigned }
        let claimedGoal = catalog.goals.first { $0.id == "c0-g02" }!
        let completedGoal = catalog.goals.first { $0.id == "c0-g00" }!
        for (i, user) in users.enumerated() {
            if i % 4 == 0 || i % 4 == 1 {
                for goal in nonDefault {
                    rows.append((user, goal, ExpectedRow(challenge: goal.challenge, progress: 0, status: "not_started", completedAtSet: false, active: i % 4 == 0)))
                }
            }
            if i % 10 == 5 {
                rows.append((user, claimedGoal, ExpectedRow(challenge: claimedGoal.challenge, progress: 99, status: "claimed", completedAtSet: true, active: true)))
            }
            if i % 10 == 6 {
                rows.append((user, completedGoal, ExpectedRow(challenge: completedGoal.challenge, progress: 100, status: "completed", completedAtSet: true, active: true)))
            }
        }
        for (user, goal, row) in rows { model.rows["\(user)|\(goal.id)"] = row }
        return rows
    }

    public static func insert(_ rows: [(String, TestCatalog.GoalSpec, ExpectedRow)], namespace: String, on connection: PostgresConnection) throws {
        var users = BinaryArray(.text, capacity: rows.count * 40), goals = BinaryArray(.text, capacity: rows.count * 8)
        var challenges = BinaryArray(.text, capacity: rows.count * 12), progress = BinaryArray(.int4, capacity: rows.count * 8)
        var statuses = BinaryArray(.text, capacity: rows.count * 15), active = BinaryArray(.bool, capacity: rows.count * 5)
        for (user, goal, row) in rows {
            users.append(user)
            goals.append(goal.id)
            challenges.append(goal.challenge)
            progress.append(int4: Int32(row.progress))
            statuses.append(row.status)
            active.append(bool: row.active)
        }
        try connection.execute(
            """
            INSERT INTO user_goal_progress (user_id, goal_id, challenge_id, namespace, progress, status, completed_at, claimed_at, is_active, assigned_at)
            SELECT u, g, c, $7, p, s,
                   CASE WHEN s IN ('completed', 'claimed') THEN now() AT TIME ZONE 'UTC' END,
                   CASE WHEN s = 'claimed' THEN now() AT TIME ZONE 'UTC' END, a, now() AT TIME ZONE 'UTC'
            FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::bool[]) AS t(u, g, c, p, s, a)
            """,
            [users.parameter(), goals.parameter(), challenges.parameter(), progress.parameter(), statuses.parameter(), active.parameter(), .text(namespace)])
    }
}
