/// When a rotating goal's period ends. Boundaries are UTC: daily at 00:00, weekly on Monday at
/// 00:00, monthly on the 1st at 00:00.
public enum RotationSchedule: String, Sendable {
    case daily
    case weekly
    case monthly
}

/// A goal's `rotation` block. Only `type: "global"` exists (every player shares the boundaries),
/// so the type is not kept.
public struct Rotation: Sendable, Equatable {
    /// False: the block is present but switched off; the goal does not rotate.
    public let enabled: Bool
    public let schedule: RotationSchedule
    /// `onExpiry.resetProgress`: at a boundary, progress restarts from a new baseline.
    public let resetProgress: Bool
    /// `onExpiry.allowReselection`: at a boundary, a claimed row is reopened.
    public let allowReselection: Bool

    public init(enabled: Bool, schedule: RotationSchedule, resetProgress: Bool, allowReselection: Bool) {
        self.enabled = enabled
        self.schedule = schedule
        self.resetProgress = resetProgress
        self.allowReselection = allowReselection
    }
}
