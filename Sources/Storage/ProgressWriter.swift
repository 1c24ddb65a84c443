import Buffer
import Catalog
import Foundation

/// What one batch did to `user_goal_progress`.
public struct ProgressBatchResult: Sendable, Equatable {
    /// Existing, active, unclaimed rows the batch changed.
    public var updated: Int = 0
    /// Rows created for default-assigned goals.
    public var inserted: Int = 0
    /// Events whose goal is not default-assigned and that found no active row for their user
    /// (the REST side never assigned it): counted, never stored (`events_unassigned_total`).
    public var unassignedEvents: Int = 0
    /// Entries whose row appeared between the statement's snapshot and its insert (a concurrent
    /// assignment by the REST side); they were applied again as updates.
    public var conflictsRetried: Int = 0

    public init() {}

    public static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.updated += b.updated
        sum.inserted += b.inserted
        sum.unassignedEvents += b.unassignedEvents
        sum.conflictsRetried += b.conflictsRetried
        return sum
    }
}

/// Writes merged buffer entries to `user_goal_progress`: one prepared statement, one round trip
/// per batch, one implicit transaction.
///
/// The statement (see `upsertSQL`) takes the batch as parallel arrays (`unnest`), then
/// - updates every matching row that is active and not claimed (a claimed row only when a
///   rotation boundary passed and the goal allows reselection): absolute goals take the latest
///   value, login goals add their count (saturating at INT max);
/// - inserts the rows of default-assigned goals that did not exist yet;
/// - counts the events of other goals that found no active row.
///
/// Goal semantics (README, "Goals and events"): relative goals show `progress - baseline_value`,
/// the baseline placed on the first write at `progress - (this batch's increase)`; a rotating
/// goal's row last written before the current period began is rolled over as it is written
/// (re-based when `resetProgress`, reopened when claimed and `allowReselection`), and
/// `expires_at` is the next boundary. Completion is shown progress ≥ `targetValue`; a completed
/// row stays completed within its period and keeps its first `completed_at`.
///
/// The clock is a parameter, so tests can place a batch at any instant; periods are computed
/// from it by PostgreSQL (`date_trunc`, UTC calendar).
///
/// Entries of goals that use neither relative progress nor rotation ("plain" goals, the common
/// case) take `plainUpsertSQL`: the same effect on their rows, without the columns, arrays and
/// CASE arms the semantics need, so those cost only the rows that use them.
public struct ProgressWriter: Sendable {
    public static let upsertStatementName = "ugp_upsert_v3"
    public static let plainUpsertStatementName = "ugp_upsert_plain_v1"

    /// The table, shared with the incumbent's REST service (which may be the one creating it).
    public static let table = "user_goal_progress"
    /// The columns the statements read or write.
    static let columns = [
        "user_id", "goal_id", "challenge_id", "namespace", "progress", "status", "completed_at", "claimed_at",
        "created_at", "updated_at", "is_active", "assigned_at", "expires_at", "baseline_value",
    ]

    /// Why the table cannot take this writer's statements yet, or nil when it can: it does not
    /// exist, or lacks columns (the REST service adds `baseline_value` in its second migration).
    public static func unreadiness(on connection: PostgresConnection) throws -> String? {
        let present = try connection.execute(
            """
            SELECT attname FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
            """, [.text(table)]
        ).rows.compactMap { $0[0] }
        if present.isEmpty { return "table \(table) does not exist yet" }
        let missing = columns.filter { !present.contains($0) }
        return missing.isEmpty ? nil : "table \(table) lacks the columns \(missing.joined(separator: ", "))"
    }

    /// The statements a pooled connection prepares once, at warm-up or when it is (re)opened.
    public static let preparedStatements: [PreparedStatement] = [
        PreparedStatement(name: upsertStatementName, sql: upsertSQL),
        PreparedStatement(name: plainUpsertStatementName, sql: plainUpsertSQL),
    ]

    public let catalog: Catalog
    public let namespace: String

    /// Per-goal UTF-8 bytes, encoded once (they repeat on every row of that goal).
    private let goalIDBytes: [[UInt8]]
    private let challengeIDBytes: [[UInt8]]
    /// Per-goal rotation code of the statement: 0 none (or disabled), 1 daily, 2 weekly, 3 monthly.
    private let scheduleCodes: [Int32]
    /// Per goal: neither relative nor rotating, so its entries take the plain statement.
    private let plainGoals: [Bool]

    public init(catalog: Catalog, namespace: String) {
        self.catalog = catalog
        self.namespace = namespace
        self.goalIDBytes = catalog.goals.map { Array($0.goalId.utf8) }
        self.challengeIDBytes = catalog.goals.map { Array($0.challengeId.utf8) }
        self.scheduleCodes = catalog.goals.map { goal in
            guard let rotation = goal.rotation, rotation.enabled else { return 0 }
            switch rotation.schedule {
            case .daily: return 1
            case .weekly: return 2
            case .monthly: return 3
            }
        }
        let codes = scheduleCodes
        self.plainGoals = catalog.goals.indices.map { goal in
            catalog.goals[goal].progressMode != .relative && codes[goal] == 0
        }
    }

    /// Which statement a write uses: `chosen` (plain goals the plain one, the others the full
    /// one), or `full` for every entry (tests compare the two).
    public enum Statements: Sendable {
        case chosen
        case full
    }

    /// Writes `entries` in one statement. Blocking: call it on a thread the caller owns.
    /// Throws `PostgresError`. Meant to run inside a transaction (the flush's): outside one, a
    /// batch whose insert-race retry fails leaves its first statement committed.
    public func write(
        _ entries: some Collection<PendingEntry>, now: Date = Date(), on connection: PostgresConnection,
        statements: Statements = .chosen
    ) throws -> ProgressBatchResult {
        if entries.isEmpty { return ProgressBatchResult() }
        if statements == .full { return try write(Array(entries), plain: false, now: now, on: connection) }
        var plain: [PendingEntry] = []
        var semantic: [PendingEntry] = []
        plain.reserveCapacity(entries.count)
        for entry in entries {
            if plainGoals[Int(entry.goal)] { plain.append(entry) } else { semantic.append(entry) }
        }
        return try write(plain, plain: true, now: now, on: connection) + write(semantic, plain: false, now: now, on: connection)
    }

    private func write(_ entries: [PendingEntry], plain: Bool, now: Date, on connection: PostgresConnection) throws -> ProgressBatchResult {
        var result = ProgressBatchResult()
        if entries.isEmpty { return result }
        var pending = entries
        let statement = plain ? Self.plainUpsertStatementName : Self.upsertStatementName
        // A conflict can only come from a concurrent insert of the same key by someone else; the
        // retry finds the row and updates it. Two rounds settle it; a third is a safety margin.
        for round in 0..<3 {
            let row = try connection.executePrepared(statement, parameters(for: pending, plain: plain, now: now))
            guard row.rows.count == 1 else {
                throw PostgresError(
                    kind: .query, sqlState: nil,
                    message: "upsert returned \(row.rows.count) rows, expected 1")
            }
            result.updated += Int(row[0, 0] ?? "0") ?? 0
            result.inserted += Int(row[0, 1] ?? "0") ?? 0
            result.unassignedEvents += Int(row[0, 2] ?? "0") ?? 0
            let conflicted = IntegerArrayResult.parse(row[0, 3])
            if conflicted.isEmpty { return result }
            result.conflictsRetried += conflicted.count
            // `ord` is 1-based, in the order of `pending`.
            pending = conflicted.map { pending[$0 - 1] }
            if round == 2 {
                throw PostgresError(
                    kind: .query, sqlState: nil,
                    message: "\(conflicted.count) rows kept conflicting with concurrent inserts")
            }
        }
        return result
    }

    /// The statement's parameters: $1…$10 for both, $11…$15 (the goal semantics) only for the
    /// full one.
    private func parameters(for entries: [PendingEntry], plain: Bool, now: Date) -> [PostgresParameter] {
        let n = entries.count
        var users = BinaryArray(.text, capacity: n * 44)
        var goals = BinaryArray(.text, capacity: n * 16)
        var challenges = BinaryArray(.text, capacity: n * 16)
        var values = BinaryArray(.int8, capacity: n * 12)
        var increments = BinaryArray(.bool, capacity: n * 5)
        var targets = BinaryArray(.int4, capacity: n * 8)
        var defaults = BinaryArray(.bool, capacity: n * 5)
        var events = BinaryArray(.int4, capacity: n * 8)
        let semantics = plain ? 0 : n
        var relative = BinaryArray(.bool, capacity: semantics * 5)
        var increases = BinaryArray(.int8, capacity: semantics * 12)
        var schedules = BinaryArray(.int4, capacity: semantics * 8)
        var resets = BinaryArray(.bool, capacity: semantics * 5)
        var reselects = BinaryArray(.bool, capacity: semantics * 5)
        for entry in entries {
            let goal = Int(entry.goal)
            let definition = catalog.goals[goal]
            users.append(entry.userID)
            goals.append(text: goalIDBytes[goal])
            challenges.append(text: challengeIDBytes[goal])
            values.append(int8: entry.progress.value)
            increments.append(bool: entry.progress.kind == .increment)
            targets.append(int4: definition.targetValue)
            defaults.append(bool: definition.defaultAssigned)
            events.append(int4: entry.progress.events)
            if plain { continue }
            relative.append(bool: definition.progressMode == .relative)
            increases.append(int8: entry.progress.increase)
            schedules.append(int4: scheduleCodes[goal])
            resets.append(bool: definition.rotation?.resetProgress ?? false)
            reselects.append(bool: definition.rotation?.allowReselection ?? false)
        }
        let common: [PostgresParameter] = [
            users.parameter(), goals.parameter(), challenges.parameter(), values.parameter(),
            increments.parameter(), targets.parameter(), defaults.parameter(), events.parameter(),
            .text(namespace), .text(Self.timestamp(now)),
        ]
        if plain { return common }
        return common + [relative.parameter(), increases.parameter(), schedules.parameter(), resets.parameter(), reselects.parameter()]
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, the text form of a TIMESTAMP column.
    static func timestamp(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (y, m, d) = civilDate(fromDaysSinceEpoch: days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))"
    }

    /// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    static func civilDate(fromDaysSinceEpoch days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    // MARK: - SQL
    //
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

/// Parses the text form of an integer array result (`{1,2,3}`, or NULL) into integers.
enum IntegerArrayResult {
    static func parse(_ text: String?) -> [Int] {
        guard let text, text.count > 2 else { return [] }
        return text.dropFirst().dropLast().split(separator: ",").compactMap { Int($0) }
    }
}
