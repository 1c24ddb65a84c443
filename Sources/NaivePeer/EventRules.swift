import Catalog
import GameEvents

/// One goal row an event moves, as the single-row statement takes it.
struct GoalChange: Sendable {
    /// Index of the goal in the catalog.
    let goal: Int32
    /// True: add `value` to the stored progress (a login). False: the progress becomes `value`.
    let isIncrement: Bool
    /// Already in 0...Int32.max.
    let value: Int64
}

/// What to do with one event.
enum EventDecision: Sendable {
    /// Write these rows for this user, then answer OK.
    case write(userID: String, changes: [GoalChange])
    /// Answer OK and store nothing (another namespace, or no goal follows the event).
    case ignore
    /// Answer INVALID_ARGUMENT naming the field.
    case reject(field: String, reason: String)
}

/// The service's rules for one event, with nothing in between: validation as the service's
/// `EventValidator` does it (same checks, same order, same field names, so both answer a bad
/// event alike) and goal matching as its `GoalMatcher` does it. No deduplication, no buffer:
/// the peer is the incumbent's way of working, which had neither.
struct EventRules: Sendable {
    let namespace: String
    let catalog: Catalog

    /// Every login goal +1 (built once: the same for every login).
    private let loginChanges: [GoalChange]

    init(namespace: String, catalog: Catalog) {
        self.namespace = namespace
        self.catalog = catalog
        self.loginChanges = catalog.loginGoals.map { GoalChange(goal: $0, isIncrement: true, value: 1) }
    }

    func decide(_ login: Accelbyte_Iam_Account_V1_UserLoggedIn) -> EventDecision {
        if login.namespace != namespace { return .ignore }
        if let problem = Self.checkCommon(id: login.id, userID: login.userID) { return problem }
        return loginChanges.isEmpty ? .ignore : .write(userID: login.userID, changes: loginChanges)
    }

    func decide(_ stat: Accelbyte_Social_Statistic_V1_StatItemUpdated) -> EventDecision {
        if stat.namespace != namespace { return .ignore }
        if let problem = Self.checkCommon(id: stat.id, userID: stat.userID) { return problem }
        guard stat.hasPayload else { return .reject(field: "payload", reason: "is required for a stat event") }
        let payload = stat.payload
        if payload.statCode.isEmpty { return .reject(field: "payload.stat_code", reason: "must not be empty") }
        if payload.statCode.utf8.count > 100 {
            return .reject(
                field: "payload.stat_code", reason: "must be at most 100 bytes, got \(payload.statCode.utf8.count)")
        }
        if !payload.latestValue.isFinite {
            return .reject(field: "payload.latest_value", reason: "must be a finite number, got \(payload.latestValue)")
        }
        if !payload.inc.isFinite {
            return .reject(field: "payload.inc", reason: "must be a finite number, got \(payload.inc)")
        }
        let goals = catalog.goals(forStatCode: payload.statCode)
        if goals.isEmpty { return .ignore }
        // Truncated toward zero and clamped into the INT column, as the service's matcher does.
        let value = Int64(min(max(payload.latestValue.rounded(.towardZero), 0), Double(Int32.max)))
        return .write(
            userID: stat.userID, changes: goals.map { GoalChange(goal: $0, isIncrement: false, value: value) })
    }

    /// The checks both kinds share. The user id ends up in a VARCHAR(100) column and, bound as
    /// text, would be cut at a NUL, so both are refused here rather than stored wrongly.
    private static func checkCommon(id: String, userID: String) -> EventDecision? {
        if userID.isEmpty { return .reject(field: "user_id", reason: "must not be empty") }
        if userID.utf8.count > 100 {
            return .reject(field: "user_id", reason: "must be at most 100 bytes, got \(userID.utf8.count)")
        }
        if userID.utf8.contains(0) { return .reject(field: "user_id", reason: "must not contain a NUL character") }
        if id.utf8.count > 200 { return .reject(field: "id", reason: "must be at most 200 bytes, got \(id.utf8.count)") }
        return nil
    }
}
