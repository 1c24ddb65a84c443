import Catalog

/// What the fuzz targets share: the catalog events are matched against, and how a target says
/// that a property failed (a trap: libFuzzer records the input as a crash).
public enum FuzzSupport {
    /// The namespace the targets' events are checked against.
    public static let namespace = "mygame"

    /// A small catalog in the shape of config/challenges.json: login goals and statistic goals on
    /// the stat codes the seed events use.
    public static let catalog: Catalog = {
        let json = """
            {"challenges": [
              {"challengeId": "daily-login", "name": "Daily", "goals": [
                {"goalId": "login-first", "name": "Welcome", "eventSource": "login", "defaultAssigned": true,
                 "requirement": {"operator": ">=", "targetValue": 1},
                 "reward": {"type": "WALLET", "rewardId": "GOLD", "quantity": 50}, "prerequisites": []},
                {"goalId": "login-7", "name": "Regular", "eventSource": "login", "defaultAssigned": false,
                 "requirement": {"operator": ">=", "targetValue": 7, "progressMode": "relative"},
                 "reward": {"type": "ITEM", "rewardId": "badge", "quantity": 1}, "prerequisites": ["login-first"]}]},
              {"challengeId": "combat", "name": "Combat", "goals": [
                {"goalId": "kills-10", "name": "First Blood", "eventSource": "statistic", "defaultAssigned": true,
                 "requirement": {"statCode": "kills", "operator": ">=", "targetValue": 10},
                 "reward": {"type": "ITEM", "rewardId": "sword", "quantity": 1}, "prerequisites": []},
                {"goalId": "kills-weekly", "name": "Weekly", "eventSource": "statistic", "defaultAssigned": true,
                 "requirement": {"statCode": "kills", "operator": ">=", "targetValue": 100, "progressMode": "relative"},
                 "reward": {"type": "WALLET", "rewardId": "GOLD", "quantity": 10}, "prerequisites": [],
                 "rotation": {"enabled": true, "type": "global", "schedule": "weekly",
                              "onExpiry": {"resetProgress": true, "allowReselection": false}}},
                {"goalId": "wins-5", "name": "Winner", "eventSource": "statistic", "defaultAssigned": true,
                 "requirement": {"statCode": "matches-won", "operator": ">=", "targetValue": 5},
                 "reward": {"type": "ITEM", "rewardId": "crown", "quantity": 1}, "prerequisites": []}]}
            ]}
            """
        do {
            return try Catalog.parse(Array(json.utf8), fileName: "fuzz-catalog.json").catalog
        } catch {
            fatalError("the fuzz targets' catalog: \(error)")
        }
    }()

    /// Traps, naming the target and the property, unless `condition` holds.
    public static func require(_ condition: Bool, _ target: String, _ property: @autoclosure () -> String) {
        if !condition { fail(target, property()) }
    }

    public static func fail(_ target: String, _ property: String) -> Never {
        fatalError("\(target): property violated: \(property)")
    }
}
