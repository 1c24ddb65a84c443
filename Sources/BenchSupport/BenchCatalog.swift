import Catalog
import Foundation

/// The benchmark's catalog: 10 challenges x 50 statistic goals, `goal-000`...`goal-499`, goal `j`
/// in challenge `j / 50`, all default-assigned; built through the real loader.
public enum BenchCatalog {
    public static func make() -> Catalog {
        var challenges: [String] = []
        for c in 0..<10 {
            var goals: [String] = []
            for g in 0..<50 {
                let j = c * 50 + g
                goals.append(
                    """
                    {"goalId": "goal-\(String(format: "%03d", j))", "name": "Goal \(j)", "eventSource": "statistic",
                     "defaultAssigned": true,
                     "requirement": {"statCode": "stat-\(j % 5)", "operator": ">=", "targetValue": 1000000},
                     "reward": {"type": "ITEM", "rewardId": "item-\(j)", "quantity": 1}, "prerequisites": []}
                    """)
            }
            challenges.append(
                #"{"challengeId": "challenge-\#(c)", "name": "Challenge \#(c)", "goals": [\#(goals.joined(separator: ","))]}"#)
        }
        let json = #"{"challenges": [\#(challenges.joined(separator: ","))]}"#
        do {
            return try Catalog.parse(Data(json.utf8), fileName: "bench-catalog.json").catalog
        } catch {
            fatalError("the benchmark catalog does not load: \(error)")
        }
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
