import Storage
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
/// Goal semantics (docs/goals-and-events.md): relative goals show `progress - baseline_value`,
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
}

/// Parses the text form of an integer array result (`{1,2,3}`, or NULL) into integers.
enum IntegerArrayResult {
    static func parse(_ text: String?) -> [Int] {
        guard let text, text.count > 2 else { return [] }
        return text.dropFirst().dropLast().split(separator: ",").compactMap { Int($0) }
    }
}
