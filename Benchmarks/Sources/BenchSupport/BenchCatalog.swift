import Catalog
import Foundation

/// The benchmark's catalog: 10 challenges x 50 statistic goals, `goal-000`...`goal-499`, goal `j`
/// in challenge `j / 50`, all default-assigned; built through the real loader.
public enum BenchCatalog {
    public static func make() -> Catalog {
        do {
            return try Catalog.parse(Data(json(statCode: { "stat-\($0 % 5)" }).utf8), fileName: "bench-catalog.json").catalog
        } catch {
            fatalError("the benchmark catalog does not load: \(error)")
        }
    }

    /// The catalog as `challenges.json` text, goal `j` on statistic code `statCode(j)`.
    public static func json(statCode: (Int) -> String) -> String {
        var challenges: [String] = []
        for c in 0..<10 {
            var goals: [String] = []
            for g in 0..<50 {
                let j = c * 50 + g
                goals.append(
                    """
                    {"goalId": "goal-\(String(format: "%03d", j))", "name": "Goal \(j)", "eventSource": "statistic",
                     "defaultAssigned": true,
                     "requirement": {"statCode": "\(statCode(j))", "operator": ">=", "targetValue": 1000000},
                     "reward": {"type": "ITEM", "rewardId": "item-\(j)", "quantity": 1}, "prerequisites": []}
                    """)
            }
            challenges.append(
                #"{"challengeId": "challenge-\#(c)", "name": "Challenge \#(c)", "goals": [\#(goals.joined(separator: ","))]}"#)
        }
        return #"{"challenges": [\#(challenges.joined(separator: ","))]}"#
    }

    /// The load profiles' catalog (`make bench`): 10 challenges x 50 goals, shaped like a live
    /// game's. Goal 0 of each challenge counts logins (targets 1, 3, 5, 7, 10, 14, 20, 30, 50,
    /// 100); goals 1-49 follow statistics `stat-0`...`stat-48`, one per goal, so each statistic
    /// drives one goal in every challenge (targets 1-50). A login therefore moves 10 rows, and
    /// a stat event on one of the load's five codes (`stat-0`...`stat-4`) moves 10 rows too.
    public static var profileJSON: String {
        let loginTargets = [1, 3, 5, 7, 10, 14, 20, 30, 50, 100]
        var challenges: [String] = []
        for c in 0..<10 {
            var goals: [String] = []
            goals.append(
                """
                {"goalId": "c\(c)-login", "name": "Log in \(loginTargets[c]) times", "eventSource": "login",
                 "defaultAssigned": true, "requirement": {"operator": ">=", "targetValue": \(loginTargets[c])},
                 "reward": {"type": "WALLET", "rewardId": "GOLD", "quantity": \(10 * (c + 1))}, "prerequisites": []}
                """)
            for g in 1..<50 {
                goals.append(
                    """
                    {"goalId": "c\(c)-g\(String(format: "%02d", g))", "name": "Statistic \(g - 1), step \(c + 1)", "eventSource": "statistic",
                     "defaultAssigned": true,
                     "requirement": {"statCode": "stat-\(g - 1)", "operator": ">=", "targetValue": \((c + 1) * 5)},
                     "reward": {"type": "ITEM", "rewardId": "item-\(c)-\(g)", "quantity": 1}, "prerequisites": []}
                    """)
            }
            challenges.append(
                #"{"challengeId": "challenge-\#(c)", "name": "Challenge \#(c)", "goals": [\#(goals.joined(separator: ","))]}"#)
        }
        return #"{"challenges": [\#(challenges.joined(separator: ","))]}"#
    }

    /// A 36-character, UUID-shaped user id, the same for the same `i` in every run.
    public static func userID(_ i: Int) -> String {
        String(format: "%08x-%04x-4%03x-8%03x-%012x", i, i % 65_536, i % 4_096, (i * 7) % 4_096, i &* 2_654_435_761 % 281_474_976_710_656)
    }

    /// The 50 catalog indices of user `i`'s goals.
    public static func goals(ofUser i: Int) -> Range<Int32> {
        let first = Int32((i % 10) * 50)
        return first..<(first + 50)
    }
}
