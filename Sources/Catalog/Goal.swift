/// Which events move a goal. A goal listens to one source only.
public enum EventSource: String, Sendable {
    case login
    case statistic
}

/// How a goal's progress is counted: `absolute` shows the stat's value, `relative` counts from a
/// baseline taken on first write (and at each rotation with `resetProgress`).
public enum ProgressMode: String, Sendable {
    case absolute
    case relative
}

public enum RotationSchedule: String, Sendable {
    case daily
    case weekly
    case monthly
}

public struct Rotation: Sendable, Equatable {
    public var enabled: Bool
    public var schedule: RotationSchedule
    public var resetProgress: Bool
    public var allowReselection: Bool
}

public struct Reward: Sendable, Equatable {
    /// `ITEM` or `WALLET`.
    public var type: String
    public var rewardId: String
    public var quantity: Int
}

/// One goal of `challenges.json`, validated.
public struct Goal: Sendable, Equatable {
    /// Position in `Catalog.goals`; the buffer keys pending entries by it.
    public let index: Int32
    public let goalId: String
    public let challengeId: String
    public let name: String
    public let eventSource: EventSource
    public let defaultAssigned: Bool
    /// The stat this goal follows; nil for login goals.
    public let statCode: String?
    public let targetValue: Int32
    public let progressMode: ProgressMode
    public let rotation: Rotation?
    public let reward: Reward
    public let prerequisites: [String]
}
