import Storage

/// The progress writer's two statements: the full one with the goal semantics (relative
/// progress, rotation, reselection) and the plain one for the rows that use none of them.
extension ProgressWriter {
    // The update's new values, as expressions over the existing row `p` and the input row `i`.
    // PostgreSQL cannot name a computed value inside UPDATE … SET, so each is spelled out where it
    // is used; they are cheap arithmetic next to the row's index probe and write.

    /// The counted value after this batch (the `progress` column): latest value or sum of counts.
    private static let newRaw = """
        (CASE WHEN i.is_increment THEN LEAST(p.progress::int8 + i.value, 2147483647)
              ELSE LEAST(GREATEST(i.value, 0), 2147483647) END)
        """

    /// The row was last written before the current period of its goal's rotation began.
    private static let stale = "(i.period_start IS NOT NULL AND p.updated_at < i.period_start)"

    /// A claimed row the boundary reopens (`allowReselection`).
    private static let reopened = "(\(stale) AND p.status = 'claimed' AND i.reselect)"

    /// The baseline after this batch: placed on the first write of a relative goal, and again at
    /// a boundary with `resetProgress`, at the new value less this batch's increase (never below
    /// zero); kept otherwise. Absolute goals keep theirs (NULL).
    private static let newBaseline = """
        (CASE WHEN NOT i.relative THEN p.baseline_value::int8
              WHEN p.baseline_value IS NULL OR (\(stale) AND i.reset_progress)
                  THEN GREATEST(\(newRaw) - i.increase, 0)
              ELSE p.baseline_value::int8 END)
        """

    /// Shown progress: what completion is judged on.
    private static let shown = "GREATEST(\(newRaw) - COALESCE(\(newBaseline), 0), 0)"

    /// Completed earlier in this period: stays completed whatever the value does.
    private static let stillCompleted = "(NOT \(stale) AND p.status = 'completed')"

    /// Both statements' end, after their `input`, `updated` and `inserted`: the entries neither
    /// took, and the result row (updated, inserted, unassigned events, lost insert races).
    private static let resultTail = """
        leftover AS (
                SELECT i.* FROM input AS i
                WHERE NOT EXISTS (SELECT 1 FROM updated AS u WHERE u.ord = i.ord)
                  AND NOT EXISTS (SELECT 1 FROM inserted AS x
                                  WHERE x.user_id = i.user_id AND x.goal_id = i.goal_id)
            )
            SELECT
                (SELECT count(*) FROM updated),
                (SELECT count(*) FROM inserted),
                (SELECT COALESCE(sum(l.events), 0) FROM leftover AS l
                  WHERE NOT l.default_assigned AND NOT EXISTS (
                      SELECT 1 FROM user_goal_progress AS e
                      WHERE e.user_id = l.user_id AND e.goal_id = l.goal_id AND e.is_active)),
                (SELECT array_agg(l.ord) FROM leftover AS l
                  WHERE l.default_assigned AND NOT EXISTS (
                      SELECT 1 FROM user_goal_progress AS e
                      WHERE e.user_id = l.user_id AND e.goal_id = l.goal_id))
        """

    /// Parameters: $1 user ids, $2 goal ids, $3 challenge ids, $4 values (int8), $5 is-increment,
    /// $6 targets, $7 default-assigned, $8 merged event counts, $11 relative, $12 summed
    /// increases (int8), $13 rotation (0 none, 1 daily, 2 weekly, 3 monthly), $14 resetProgress,
    /// $15 allowReselection (all arrays, one element per entry), $9 namespace, $10 now (UTC).
    /// Result: one row (updated, inserted, unassigned events, 1-based positions of entries whose
    /// insert lost a race with a concurrent insert).
    ///
    /// Cost: the common path (the row exists and is updated) is one primary-key probe per entry.
    /// The insert only considers entries the update did not take (a hash anti-join on the
    /// update's RETURNING, no index probe), and the checks for unassigned goals and lost races
    /// only look at the few entries neither statement took. All parts see one snapshot.
    public static let upsertSQL = """
        WITH input AS (
            SELECT t.*,
                   CASE t.schedule WHEN 1 THEN date_trunc('day', $10::timestamp)
                                   WHEN 2 THEN date_trunc('week', $10::timestamp)
                                   WHEN 3 THEN date_trunc('month', $10::timestamp) END AS period_start,
                   CASE t.schedule WHEN 1 THEN date_trunc('day', $10::timestamp) + interval '1 day'
                                   WHEN 2 THEN date_trunc('week', $10::timestamp) + interval '1 week'
                                   WHEN 3 THEN date_trunc('month', $10::timestamp) + interval '1 month' END
                       AS next_boundary
            FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::bool[],
                        $6::int4[], $7::bool[], $8::int4[], $11::bool[], $12::int8[],
                        $13::int4[], $14::bool[], $15::bool[]) WITH ORDINALITY
                AS t(user_id, goal_id, challenge_id, value, is_increment, target,
                     default_assigned, events, relative, increase, schedule, reset_progress,
                     reselect, ord)
        ),
        updated AS (
            UPDATE user_goal_progress AS p SET
                progress = \(newRaw)::int4,
                baseline_value = \(newBaseline)::int4,
                status = CASE
                    WHEN \(stillCompleted) OR \(shown) >= i.target THEN 'completed'
                    WHEN \(shown) > 0 THEN 'in_progress'
                    ELSE 'not_started' END,
                completed_at = CASE
                    WHEN \(stillCompleted) THEN COALESCE(p.completed_at, $10::timestamp)
                    WHEN \(shown) >= i.target THEN
                        CASE WHEN p.status = 'completed' AND NOT i.reset_progress
                             THEN COALESCE(p.completed_at, $10::timestamp)
                             ELSE $10::timestamp END
                    WHEN \(stale) THEN NULL
                    ELSE p.completed_at END,
                claimed_at = CASE WHEN \(reopened) THEN NULL ELSE p.claimed_at END,
                expires_at = COALESCE(i.next_boundary, p.expires_at),
                updated_at = $10::timestamp
            FROM input AS i
            WHERE p.user_id = i.user_id AND p.goal_id = i.goal_id
              AND p.is_active AND (p.status <> 'claimed' OR \(reopened))
            RETURNING i.ord
        ),
        inserted AS (
            INSERT INTO user_goal_progress AS p
                (user_id, goal_id, challenge_id, namespace, progress, status, completed_at,
                 created_at, updated_at, is_active, assigned_at, expires_at, baseline_value)
            SELECT n.user_id, n.goal_id, n.challenge_id, $9::text, n.raw::int4,
                   CASE WHEN n.shown >= n.target THEN 'completed'
                        WHEN n.shown > 0 THEN 'in_progress'
                        ELSE 'not_started' END,
                   CASE WHEN n.shown >= n.target THEN $10::timestamp END,
                   $10::timestamp, $10::timestamp, true, $10::timestamp, n.next_boundary,
                   n.baseline::int4
            FROM (
                SELECT i.*, r.raw, b.baseline, GREATEST(r.raw - COALESCE(b.baseline, 0), 0) AS shown
                FROM input AS i
                CROSS JOIN LATERAL (SELECT LEAST(GREATEST(i.value, 0), 2147483647) AS raw) AS r
                CROSS JOIN LATERAL (SELECT CASE WHEN i.relative THEN GREATEST(r.raw - i.increase, 0) END
                                    AS baseline) AS b
                WHERE i.default_assigned AND NOT EXISTS (SELECT 1 FROM updated AS u WHERE u.ord = i.ord)
            ) AS n
            ON CONFLICT (user_id, goal_id) DO NOTHING
            RETURNING p.user_id, p.goal_id
        ),
        \(resultTail)
        """

    /// Shown progress of a plain goal's row: no baseline is placed, one already there (the goal
    /// was relative once) still counts.
    private static let plainShown = "GREATEST(\(newRaw) - COALESCE(p.baseline_value, 0), 0)"

    /// `upsertSQL` for plain goals (not relative, not rotating): no period, so nothing is stale
    /// or reopened; the baseline, `claimed_at` and `expires_at` stay as they are. Parameters $1
    /// to $10 as in `upsertSQL`; the same result row. Every goal-semantics case of a plain goal
    /// ends with the same row through either statement (GoalSemanticsTests).
    public static let plainUpsertSQL = """
        WITH input AS (
            SELECT t.*
            FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::bool[],
                        $6::int4[], $7::bool[], $8::int4[]) WITH ORDINALITY
                AS t(user_id, goal_id, challenge_id, value, is_increment, target, default_assigned, events, ord)
        ),
        updated AS (
            UPDATE user_goal_progress AS p SET
                progress = \(newRaw)::int4,
                status = CASE
                    WHEN p.status = 'completed' OR \(plainShown) >= i.target THEN 'completed'
                    WHEN \(plainShown) > 0 THEN 'in_progress'
                    ELSE 'not_started' END,
                completed_at = CASE
                    WHEN p.status = 'completed' THEN COALESCE(p.completed_at, $10::timestamp)
                    WHEN \(plainShown) >= i.target THEN $10::timestamp
                    ELSE p.completed_at END,
                updated_at = $10::timestamp
            FROM input AS i
            WHERE p.user_id = i.user_id AND p.goal_id = i.goal_id AND p.is_active AND p.status <> 'claimed'
            RETURNING i.ord
        ),
        inserted AS (
            INSERT INTO user_goal_progress AS p
                (user_id, goal_id, challenge_id, namespace, progress, status, completed_at,
                 created_at, updated_at, is_active, assigned_at)
            SELECT n.user_id, n.goal_id, n.challenge_id, $9::text, n.raw::int4,
                   CASE WHEN n.raw >= n.target THEN 'completed'
                        WHEN n.raw > 0 THEN 'in_progress'
                        ELSE 'not_started' END,
                   CASE WHEN n.raw >= n.target THEN $10::timestamp END,
                   $10::timestamp, $10::timestamp, true, $10::timestamp
            FROM (
                SELECT i.*, LEAST(GREATEST(i.value, 0), 2147483647) AS raw
                FROM input AS i
                WHERE i.default_assigned AND NOT EXISTS (SELECT 1 FROM updated AS u WHERE u.ord = i.ord)
            ) AS n
            ON CONFLICT (user_id, goal_id) DO NOTHING
            RETURNING p.user_id, p.goal_id
        ),
        \(resultTail)
        """
}
