/// Which events move a goal. A goal listens to one source only.
public enum EventSource: String, Sendable {
    /// Login events; each login adds 1 to the goal's progress.
    case login
    /// Stat-change events whose `statCode` equals the goal's `statCode`.
    case statistic
}

/// How a goal's shown progress is derived from what it counts.
public enum ProgressMode: String, Sendable {
    /// Shown progress is the counted value itself (the file's default).
    case absolute
    /// Shown progress counts from a baseline taken on the first write, and again at each rotation
    /// boundary when the rotation says `resetProgress`.
    case relative
}

/// One goal of `challenges.json`, validated.
///
/// Invariants a loaded catalog guarantees (`Catalog.init(goals:)` trusts the caller for all but
/// the index and id uniqueness): `goalId` and `challengeId` are 1…100 UTF-8 bytes; `statCode` is
/// non-nil (1…100 bytes) exactly for statistic goals; `targetValue > 0`; `rotation?.enabled ==
/// true` only on relative goals; every prerequisite names another goal of the same catalog.
public struct Goal: Sendable, Equatable {
    /// Position in `Catalog.goals`; the buffer keys pending entries by it.
    public let index: Int32
    /// Unique across the catalog; the `goal_id` column.
    public let goalId: String
    /// The challenge the goal belongs to; the `challenge_id` column.
    public let challengeId: String
    public let name: String
    public let eventSource: EventSource
    /// True: a row is created on the goal's first event. False: only rows the REST side assigned
    /// (`is_active = true`) are updated.
    public let defaultAssigned: Bool
    /// The stat this goal follows; nil for login goals (whatever the file said there is ignored).
    public let statCode: String?
    /// Shown progress ≥ this completes the goal (`requirement.operator` is always `>=`).
    public let targetValue: Int32
    public let progressMode: ProgressMode
    /// The goal's rotation as written, or nil when the file has none (or `null`). A disabled
    /// rotation (`enabled: false`) is kept; check `enabled` before rotating.
    public let rotation: Rotation?
    public let reward: Reward
    /// Goal ids that must be completed first, as written (enforced by the REST side, not here).
    public let prerequisites: [String]

    public init(
        index: Int32,
        goalId: String,
        challengeId: String,
        name: String,
        eventSource: EventSource,
        defaultAssigned: Bool,
        statCode: String?,
        targetValue: Int32,
        progressMode: ProgressMode = .absolute,
        rotation: Rotation? = nil,
        reward: Reward,
        prerequisites: [String] = []
    ) {
        self.index = index
        self.goalId = goalId
        self.challengeId = challengeId
        self.name = name
        self.eventSource = eventSource
        self.defaultAssigned = defaultAssigned
        self.statCode = statCode
        self.targetValue = targetValue
        self.progressMode = progressMode
        self.rotation = rotation
        self.reward = reward
        self.prerequisites = prerequisites
    }
}
