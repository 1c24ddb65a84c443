import Buffer
import Catalog

/// Turns a valid event into the goal updates it causes, from the catalog:
/// - a login moves every login goal by one (counts add up in the buffer);
/// - a stat event moves the statistic goals with its `statCode` and nothing else; on an
///   absolute goal the progress becomes the stat's latest value, truncated toward zero and
///   clamped to 0...Int32.max.
/// A goal listens to one source only, so a login never moves a stat goal and vice versa.
public struct GoalMatcher: Sendable {
    private let loginUpdates: [GoalUpdate]
    private let catalog: Catalog

    public init(catalog: Catalog) {
        self.catalog = catalog
        self.loginUpdates = catalog.loginGoals.map { GoalUpdate.increment(goal: $0) }
    }

    public func updates(for event: IncomingEvent) -> [GoalUpdate] {
        switch event {
        case .login:
            return loginUpdates
        case .stat(let stat):
            guard let payload = stat.payload else { return [] }
            let goals = catalog.goals(forStatCode: payload.statCode)
            if goals.isEmpty { return [] }
            let value = Self.progressValue(payload.latestValue)
            let increase = Self.progressValue(payload.inc, allowNegative: true)
            return goals.map { GoalUpdate.absolute(goal: $0, value: value, increase: increase) }
        }
    }

    /// Truncates toward zero and clamps into the INT column's range (0...Int32.max, or
    /// Int32.min...Int32.max for increases, which can be negative).
    public static func progressValue(_ value: Double, allowNegative: Bool = false) -> Int64 {
        let lower: Double = allowNegative ? Double(Int32.min) : 0
        let clamped = min(max(value.rounded(.towardZero), lower), Double(Int32.max))
        return Int64(clamped)
    }
}
