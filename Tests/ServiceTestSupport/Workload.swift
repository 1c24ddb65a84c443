import Foundation
import TestSupport

/// The realistic mix of the issue: 10 challenges x 50 goals; per challenge 2 login goals, 10
/// goals on the 5 "hot" stat codes the events use (2 per code), 38 on stat codes no event uses.
/// Some goals are default-assigned, some are not (those need a row the REST side created).
public struct TestCatalog {
    public struct GoalSpec {
        public var id: String
        public var challenge: String
        public var login: Bool
        public var statCode: String?
        public var target: Int
        public var defaultAssigned: Bool
    }

    public let goals: [GoalSpec]

    public init() {
        var goals: [GoalSpec] = []
        for c in 0..<10 {
            for k in 0..<50 {
                let id = "c\(c)-g\(String(format: "%02d", k))"
                switch k {
                case 0..<2:
                    goals.append(.init(id: id, challenge: "challenge-\(c)", login: true, statCode: nil, target: k == 0 ? 3 : 6, defaultAssigned: k == 0))
                case 2..<12:
                    goals.append(
                        .init(
                            id: id, challenge: "challenge-\(c)", login: false, statCode: "stat-\((k - 2) % 5)",
                            target: 8 + 3 * k + c, defaultAssigned: k < 9))
                default:
                    goals.append(.init(id: id, challenge: "challenge-\(c)", login: false, statCode: "cold-\(k)", target: 100, defaultAssigned: true))
                }
            }
        }
        self.goals = goals
    }

    public var loginGoals: [GoalSpec] { goals.filter(\.login) }

    public func goals(forStatCode code: String) -> [GoalSpec] { goals.filter { $0.statCode == code } }

    /// The challenges.json document.
    public var json: String {
        let challenges = Dictionary(grouping: goals, by: \.challenge).sorted { $0.key < $1.key }.map { challenge, goals in
            let goalJSON = goals.map { g in
                """
                {"goalId": "\(g.id)", "name": "Goal \(g.id)", "eventSource": "\(g.login ? "login" : "statistic")",
                 "defaultAssigned": \(g.defaultAssigned),
                 "requirement": {\(g.statCode.map { "\"statCode\": \"\($0)\", " } ?? "")"operator": ">=", "targetValue": \(g.target)},
                 "reward": {"type": "ITEM", "rewardId": "reward-\(g.id)", "quantity": 1}, "prerequisites": []}
                """
            }
            return #"{"challengeId": "\#(challenge)", "name": "\#(challenge)", "goals": [\#(goalJSON.joined(separator: ","))]}"#
        }
        return #"{"challenges": [\#(challenges.joined(separator: ",\n"))]}"#
    }
}

/// One event of the workload.
public enum TestEvent: Sendable {
    case login(id: String, user: String)
    case stat(id: String, user: String, code: String, value: Double, inc: Double)

    public var user: String {
        switch self {
        case .login(_, let user), .stat(_, let user, _, _, _): user
        }
    }
}

/// A row of `user_goal_progress` as the tests compare it.
public struct ExpectedRow: Equatable, CustomStringConvertible {
    public var challenge: String
    public var progress: Int
    public var status: String
    public var completedAtSet: Bool
    public var active: Bool

    public init(challenge: String, progress: Int, status: String, completedAtSet: Bool, active: Bool) {
        self.challenge = challenge
        self.progress = progress
        self.status = status
        self.completedAtSet = completedAtSet
        self.active = active
    }

    public var description: String { "\(challenge) progress=\(progress) status=\(status) completed_at=\(completedAtSet ? "set" : "null") active=\(active)" }
}

/// The independent model of what the table must hold: the goal semantics of product.md applied
/// event by event, in each user's order, with no buffering at all.
public struct ExpectedState {
    public var rows: [String: ExpectedRow] = [:]  // key "user|goal"
    public var unassignedEvents = 0
    public let catalog: TestCatalog
    private let loginGoals: [TestCatalog.GoalSpec]
    private let byCode: [String: [TestCatalog.GoalSpec]]

    public init(catalog: TestCatalog) {
        self.catalog = catalog
        loginGoals = catalog.loginGoals
        byCode = Dictionary(grouping: catalog.goals.filter { $0.statCode != nil }, by: { $0.statCode! })
    }

    public mutating func apply(_ event: TestEvent) {
        switch event {
        case .login(_, let user):
            for goal in loginGoals { update(user: user, goal: goal) { $0 + 1 } }
        case .stat(_, let user, let code, let value, _):
            let absolute = Int(min(max(value.rounded(.towardZero), 0), Double(Int32.max)))
            for goal in byCode[code] ?? [] { update(user: user, goal: goal) { _ in absolute } }
        }
    }

    private mutating func update(user: String, goal: TestCatalog.GoalSpec, _ progress: (Int) -> Int) {
        let key = "\(user)|\(goal.id)"
        if var row = rows[key] {
            guard row.active, row.status != "claimed" else {
                if !row.active && !goal.defaultAssigned { unassignedEvents += 1 }
                return
            }
            row.progress = progress(row.progress)
            if row.status == "completed" || row.progress >= goal.target {
                row.status = "completed"
                row.completedAtSet = true
            } else {
                row.status = row.progress > 0 ? "in_progress" : "not_started"
            }
            rows[key] = row
        } else if goal.defaultAssigned {
            let value = progress(0)
            rows[key] = ExpectedRow(
                challenge: goal.challenge, progress: value,
                status: value >= goal.target ? "completed" : value > 0 ? "in_progress" : "not_started",
                completedAtSet: value >= goal.target, active: true)
        } else {
            unassignedEvents += 1
        }
    }
}

/// `count` events over `users` users: 20% logins, 80% stat updates over the 5 hot codes; each
/// (user, stat) value only grows, as game stats do, so completion does not depend on how the
/// events were split into flushes.
public func makeWorkload(users: Int, count: Int, seed: UInt64) -> (userIDs: [String], events: [TestEvent]) {
    var random = SeededGenerator(seed: seed)
    let userIDs = (0..<users).map { i in String(format: "%08x-0000-4000-8000-%012x", i, UInt64(i) &* 2_654_435_761 % 0xFFFF_FFFF_FFFF) }
    var stats: [String: Double] = [:]
    var events: [TestEvent] = []
    events.reserveCapacity(count)
    for n in 0..<count {
        let user = userIDs[Int.random(in: 0..<users, using: &random)]
        let id = "evt-\(seed)-\(n)"
        if Int.random(in: 0..<10, using: &random) < 2 {
            events.append(.login(id: id, user: user))
        } else {
            let code = "stat-\(Int.random(in: 0..<5, using: &random))"
            let inc = Double(Int.random(in: 1...6, using: &random)) + 0.25
            let value = (stats["\(user)|\(code)"] ?? 0) + inc
            stats["\(user)|\(code)"] = value
            events.append(.stat(id: id, user: user, code: code, value: value, inc: inc))
        }
    }
    return (userIDs, events)
}
