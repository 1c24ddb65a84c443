import Catalog
import Testing

/// The lookups the per-event path uses.
@Suite("Catalog indexes")
struct CatalogIndexTests {
    /// c1: g1 (kills), g2 (login); c2: a (kills), b (deaths), c (kills), d (login).
    static func loaded() throws -> Catalog {
        let second: TestJSON = [
            "challengeId": "c2", "name": "Two",
            "goals": [
                Fixture.statGoal("a", statCode: "kills"),
                Fixture.statGoal("b", statCode: "deaths"),
                Fixture.statGoal("c", statCode: "kills", prerequisites: ["a", "g1"]),
                Fixture.statGoal("d", statCode: "ignored-for-login").setting("eventSource", to: "login"),
            ],
        ]
        let document = Fixture.document.setting("challenges.1", to: second)
        return try Catalog.parse(document.bytes, fileName: Fixture.fileName).catalog
    }

    @Test func goalsAreIndexedInFileOrder() throws {
        let catalog = try Self.loaded()
        #expect(catalog.goals.map(\.goalId) == ["g1", "g2", "a", "b", "c", "d"])
        #expect(catalog.goals.map(\.index) == [0, 1, 2, 3, 4, 5])
        #expect(catalog.goals.map(\.challengeId) == ["c1", "c1", "c2", "c2", "c2", "c2"])
    }

    @Test func loginGoalsListsExactlyTheLoginGoals() throws {
        let catalog = try Self.loaded()
        #expect(catalog.loginGoals == [1, 5])
        // A login goal's statCode is ignored: it is nil and no stat event reaches the goal.
        #expect(catalog.goal(id: "d")?.statCode == nil)
        #expect(catalog.goals(forStatCode: "ignored-for-login") == [])
    }

    @Test func statCodeLookupReturnsEveryGoalOfThatStat() throws {
        let catalog = try Self.loaded()
        #expect(catalog.goals(forStatCode: "kills") == [0, 2, 4])
        #expect(catalog.goals(forStatCode: "deaths") == [3])
        #expect(catalog.goals(forStatCode: "unknown") == [])
        #expect(catalog.goals(forStatCode: "") == [])
        #expect(catalog.goals(forStatCode: "Kills") == [], "stat codes are case-sensitive")
    }

    @Test func goalByID() throws {
        let catalog = try Self.loaded()
        let c = try #require(catalog.goal(id: "c"))
        #expect(c.index == 4)
        #expect(c.prerequisites == ["a", "g1"])
        #expect(catalog.goal(id: "missing") == nil)
    }

    @Test func parsedGoalCarriesEveryField() throws {
        let document = Fixture.document
            .setting("\(Fixture.g1).requirement.progressMode", to: "relative")
            .setting("\(Fixture.g1).rotation", to: Fixture.rotation)
        let catalog = try Catalog.parse(document.bytes, fileName: Fixture.fileName).catalog
        let expected = Goal(
            index: 0, goalId: "g1", challengeId: "c1", name: "Ten kills", eventSource: .statistic,
            defaultAssigned: true, statCode: "kills", targetValue: 10, progressMode: .relative,
            rotation: Rotation(enabled: true, schedule: .daily, resetProgress: true, allowReselection: false),
            reward: Reward(type: "ITEM", rewardId: "sword", quantity: 1), prerequisites: [])
        #expect(catalog.goals[0] == expected)
        #expect(catalog.goals[1].progressMode == .absolute, "progressMode defaults to absolute")
        #expect(catalog.goals[1].rotation == nil)
    }

    @Test func catalogBuiltInCodeIndexesLikeALoadedOne() {
        let reward = Reward(type: "ITEM", rewardId: "x", quantity: 1)
        let catalog = Catalog(goals: [
            Goal(index: 0, goalId: "l", challengeId: "c", name: "L", eventSource: .login, defaultAssigned: true,
                 statCode: nil, targetValue: 1, reward: reward),
            Goal(index: 1, goalId: "s1", challengeId: "c", name: "S1", eventSource: .statistic, defaultAssigned: true,
                 statCode: "xp", targetValue: 1, reward: reward),
            Goal(index: 2, goalId: "s2", challengeId: "c", name: "S2", eventSource: .statistic, defaultAssigned: false,
                 statCode: "xp", targetValue: 2, reward: reward),
        ])
        #expect(catalog.loginGoals == [0])
        #expect(catalog.goals(forStatCode: "xp") == [1, 2])
        #expect(catalog.goal(id: "s2")?.targetValue == 2)
    }

    @Test func disabledRotationOnAnAbsoluteGoalIsKeptAsWritten() throws {
        let document = Fixture.document.setting("\(Fixture.g1).rotation", to: Fixture.rotation.setting("enabled", to: false))
        let goal = try Catalog.parse(document.bytes, fileName: Fixture.fileName).catalog.goals[0]
        #expect(goal.progressMode == .absolute)
        #expect(goal.rotation?.enabled == false)
    }

    @Test func loginGoalAcceptsAnyStatCode() throws {
        for value: TestJSON in ["", 42, ["nested": true], .string(String(repeating: "x", count: 300)), nil] {
            let document = Fixture.document.setting("\(Fixture.g2).requirement.statCode", to: value)
            let catalog = try Catalog.parse(document.bytes, fileName: Fixture.fileName).catalog
            #expect(catalog.goals[1].statCode == nil)
        }
    }

    @Test func descriptionsAreOptionalAndNullMeansAbsent() throws {
        let document = Fixture.document
            .setting("challenges.0.description", to: "About c1")
            .setting("\(Fixture.g1).description", to: nil)
            .setting("\(Fixture.g2).description", to: .null)
            .setting("\(Fixture.g2).rotation", to: .null)
        #expect(throws: Never.self) { try Catalog.parse(document.bytes, fileName: Fixture.fileName) }
    }
}
