import Catalog
import Testing

/// Unknown and duplicated keys, cross-goal rules, and reporting every problem at once.
@Suite("Keys, cross-references and collected errors")
struct StructureTests {
    struct UnknownKeyCase: Sendable, CustomTestStringConvertible {
        let level: String
        let path: String
        let expected: String
        var testDescription: String { level }
    }

    static let unknownKeys: [UnknownKeyCase] = [
        UnknownKeyCase(level: "top level", path: "version", expected: "test.json: unknown key \"version\" (known keys: challenges)"),
        UnknownKeyCase(
            level: "challenge", path: "challenges.0.owner",
            expected: "test.json: challenge \"c1\": unknown key \"owner\" (known keys: challengeId, name, description, goals)"),
        UnknownKeyCase(
            level: "goal", path: "\(Fixture.g1).priority",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"priority\" (known keys: goalId, name, description, eventSource, defaultAssigned, requirement, reward, prerequisites, rotation)"
        ),
        UnknownKeyCase(
            level: "requirement", path: "\(Fixture.g1).requirement.targetVal",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"requirement.targetVal\" (known keys in requirement: statCode, operator, targetValue, progressMode)"
        ),
        UnknownKeyCase(
            level: "reward", path: "\(Fixture.g1).reward.amount",
            expected: "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"reward.amount\" (known keys in reward: type, rewardId, quantity)"),
        UnknownKeyCase(
            level: "rotation", path: "\(Fixture.g1).rotation.timezone",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"rotation.timezone\" (known keys in rotation: enabled, type, schedule, onExpiry)"
        ),
        UnknownKeyCase(
            level: "onExpiry", path: "\(Fixture.g1).rotation.onExpiry.notify",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"rotation.onExpiry.notify\" (known keys in rotation.onExpiry: resetProgress, allowReselection)"
        ),
    ]

    @Test(arguments: unknownKeys)
    func unknownKeyIsRefused(_ unknown: UnknownKeyCase) {
        let document = Fixture.document
            .setting("\(Fixture.g1).requirement.progressMode", to: "relative")
            .setting("\(Fixture.g1).rotation", to: Fixture.rotation)
            .setting(unknown.path, to: "surprise")
        #expect(problems(document) == [unknown.expected])
    }

    @Test func legacyKeysAreOnlyKnownOnGoals() {
        let document = Fixture.document.setting("challenges.0.daily", to: true)
        #expect(problems(document) == [
            "test.json: challenge \"c1\": unknown key \"daily\" (known keys: challengeId, name, description, goals)"
        ])
    }

    @Test func duplicateKeysAreRefused() {
        let text = """
            {"challenges": [{"challengeId": "c1", "name": "C", "goals": [
              {"goalId": "g1", "name": "G", "eventSource": "statistic", "defaultAssigned": true,
               "requirement": {"statCode": "kills", "operator": ">=", "targetValue": 5, "targetValue": 0},
               "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": [], "name": "again"}
            ]}]}
            """
        let error = #expect(throws: CatalogError.self) { try Catalog.parse(Array(text.utf8), fileName: "d.json") }
        #expect(error?.problems == [
            "d.json: goal \"g1\" (challenge \"c1\"): duplicate key \"name\"",
            "d.json: goal \"g1\" (challenge \"c1\"): duplicate key \"requirement.targetValue\"",
        ])
    }

    @Test func duplicateGoalIdsAcrossChallenges() {
        let document = Fixture.document.setting(
            "challenges.1",
            to: ["challengeId": "c2", "name": "Two", "goals": [Fixture.statGoal("a", statCode: "x"), Fixture.statGoal("g2", statCode: "y")]])
        #expect(problems(document) == [
            "test.json: goal \"g2\" (challenge \"c2\"): goalId \"g2\" is already used by goal \"g2\" (challenge \"c1\")"
        ])
    }

    @Test func duplicateGoalIdsWithinAChallenge() {
        let document = Fixture.document.setting("\(Fixture.g2).goalId", to: "g1").setting("\(Fixture.g2).prerequisites", to: [])
        #expect(problems(document) == [
            "test.json: goal \"g1\" (challenge \"c1\"): goalId \"g1\" is already used by goal \"g1\" (challenge \"c1\")"
        ])
    }

    @Test func prerequisitesMayNameGoalsOfOtherChallengesInAnyOrder() throws {
        let document = Fixture.document
            .setting("\(Fixture.g1).prerequisites", to: ["later"])
            .setting("challenges.1", to: ["challengeId": "c2", "name": "Two", "goals": [Fixture.statGoal("later", statCode: "x")]])
        #expect(throws: Never.self) { try Catalog.parse(document.bytes, fileName: Fixture.fileName) }
    }

    @Test func prerequisitesToMissingGoalsAreEachReported() {
        let document = Fixture.document
            .setting("\(Fixture.g1).prerequisites", to: ["ghost"])
            .setting("\(Fixture.g2).prerequisites", to: ["g1", "phantom", "ghost"])
        #expect(problems(document) == [
            "test.json: goal \"g1\" (challenge \"c1\"): prerequisites[0] names \"ghost\", which is not a goalId in this file",
            "test.json: goal \"g2\" (challenge \"c1\"): prerequisites[1] names \"phantom\", which is not a goalId in this file",
            "test.json: goal \"g2\" (challenge \"c1\"): prerequisites[2] names \"ghost\", which is not a goalId in this file",
        ])
    }

    @Test func prerequisiteNamingAnInvalidGoalDoesNotCascade() {
        // g1 is broken (targetValue 0), but it exists: g2's prerequisite on it is not a second problem.
        let document = Fixture.document
            .setting("\(Fixture.g1).requirement.targetValue", to: 0)
            .setting("\(Fixture.g2).prerequisites", to: ["g1"])
        #expect(problems(document) == ["test.json: goal \"g1\" (challenge \"c1\"): requirement.targetValue must be > 0, got 0"])
    }

    @Test func rotationWithoutRelativeIsRefusedAndWithRelativeAccepted() throws {
        let absolute = Fixture.document.setting("\(Fixture.g1).rotation", to: Fixture.rotation.setting("schedule", to: "weekly"))
        #expect(problems(absolute) == [
            "test.json: goal \"g1\" (challenge \"c1\"): rotation needs requirement.progressMode \"relative\", got \"absolute\" (the default)"
        ])
        let relative = absolute.setting("\(Fixture.g1).requirement.progressMode", to: "relative")
        let goal = try Catalog.parse(relative.bytes, fileName: Fixture.fileName).catalog.goals[0]
        #expect(goal.rotation?.schedule == .weekly)
    }

    @Test func everyProblemIsReportedTogetherInFileOrder() throws {
        let document = Fixture.document
            .setting("version", to: 2)
            .setting("\(Fixture.g1).requirement.targetValue", to: 0)
            .setting("\(Fixture.g1).reward.type", to: "GEMS")
            .setting("\(Fixture.g2).eventSource", to: "logins")
            .setting("\(Fixture.g2).prerequisites", to: ["nobody"])
            .setting("challenges.1", to: ["challengeId": "c2", "name": "Two", "goals": []])
        let error = try #require(throws: CatalogError.self) { try Catalog.parse(document.bytes, fileName: "many.json") }
        let expected = [
            "many.json: unknown key \"version\" (known keys: challenges)",
            "many.json: goal \"g1\" (challenge \"c1\"): requirement.targetValue must be > 0, got 0",
            "many.json: goal \"g1\" (challenge \"c1\"): reward.type must be \"ITEM\" or \"WALLET\", got \"GEMS\"",
            "many.json: goal \"g2\" (challenge \"c1\"): eventSource must be \"login\" or \"statistic\", got \"logins\"",
            "many.json: challenge \"c2\": goals must contain at least one goal",
            "many.json: goal \"g2\" (challenge \"c1\"): prerequisites[0] names \"nobody\", which is not a goalId in this file",
        ]
        #expect(error.file == "many.json")
        #expect(error.problems == expected)
        #expect(error.description == expected.joined(separator: "\n"))
    }

    @Test func aValidDocumentLoads() throws {
        let loaded = try Catalog.parse(Fixture.document.bytes, fileName: Fixture.fileName)
        #expect(loaded.warnings.isEmpty)
        #expect(loaded.catalog.goals.map(\.goalId) == ["g1", "g2"])
    }
}
