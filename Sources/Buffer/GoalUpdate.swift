/// What one event does to one goal of one user, before it is merged.
///
/// The buffer knows two kinds of change, and nothing about where they came from:
/// - `absolute`: the goal's progress becomes `value` (a stat's latest value); a newer one wins.
/// - `increment`: the goal's progress grows by `value` (a login counts one); increments add up.
///
/// `increase` is how much this event raised the underlying number (a stat's `inc`, or the login
/// count). Relative goals need the sum of increases of a flush window to place their baseline, so
/// the buffer keeps that sum for both kinds.
public struct GoalUpdate: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case absolute
        case increment
    }

    /// Index of the goal in the catalog (`Catalog.goals[goal]`).
    public var goal: Int32
    public var kind: Kind
    /// `absolute`: the new progress, already clamped to 0...Int32.max. `increment`: the amount.
    public var value: Int64
    /// How much the underlying number rose with this event.
    public var increase: Int64

    public init(goal: Int32, kind: Kind, value: Int64, increase: Int64) {
        self.goal = goal
        self.kind = kind
        self.value = value
        self.increase = increase
    }

    public static func absolute(goal: Int32, value: Int64, increase: Int64 = 0) -> GoalUpdate {
        GoalUpdate(goal: goal, kind: .absolute, value: value, increase: increase)
    }

    public static func increment(goal: Int32, by amount: Int64 = 1) -> GoalUpdate {
        GoalUpdate(goal: goal, kind: .increment, value: amount, increase: amount)
    }
}
