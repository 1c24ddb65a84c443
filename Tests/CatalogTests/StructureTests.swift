import Catalog
import Testing

/// Keys as the incumbent's decoder reads them (unknown ones ignored, case variants and repeats
/// refused), cross-goal rules, and reporting every problem at once.
@Suite("Keys, cross-references and collected errors")
struct StructureTests {
    /// One key at one level of the document, and the one message expected about it.
    struct KeyCase: Sendable, CustomTestStringConvertible {
        let level: String
        let path: String
        let expected: String
        var testDescription: String { level }
    }

    /// `Fixture.document` with a rotation on g1, so every level of the format is there.
    static let everyLevel = Fixture.document
        .setting("\(Fixture.g1).requirement.progressMode", to: "relative")
        .setting("\(Fixture.g1).rotation", to: Fixture.rotation)

    static let unknownKeys: [KeyCase] = [
        KeyCase(level: "top level", path: "version", expected: "test.json: unknown key \"version\" ignored (the incumbent ignores it too)"),
        KeyCase(
            level: "challenge", path: "challenges.0.owner",
            expected: "test.json: challenge \"c1\": unknown key \"owner\" ignored (the incumbent ignores it too)"),
        KeyCase(
            level: "goal", path: "\(Fixture.g1).challengeId",
            expected: "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"challengeId\" ignored (the incumbent ignores it too)"),
        KeyCase(
            level: "requirement", path: "\(Fixture.g1).requirement.targetVal",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"requirement.targetVal\" ignored (the incumbent ignores it too)"),
        KeyCase(
            level: "reward", path: "\(Fixture.g1).reward.amount",
            expected: "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"reward.amount\" ignored (the incumbent ignores it too)"),
        KeyCase(
            level: "rotation", path: "\(Fixture.g1).rotation.timezone",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"rotation.timezone\" ignored (the incumbent ignores it too)"),
        KeyCase(
            level: "onExpiry", path: "\(Fixture.g1).rotation.onExpiry.notify",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): unknown key \"rotation.onExpiry.notify\" ignored (the incumbent ignores it too)"
        ),
    ]

    @Test(arguments: unknownKeys)
    func unknownKeyIsAWarning(_ unknown: KeyCase) throws {
        let loaded = try Catalog.parse(Self.everyLevel.setting(unknown.path, to: "surprise").bytes, fileName: Fixture.fileName)
        #expect(loaded.warnings == [unknown.expected])
    }

    @Test func unknownKeysAtEveryLevelLoadWithOneWarningEachAndAreNotRead() throws {
        let document = Self.everyLevel
            .setting("version", to: 2)
            .setting("challenges.0.owner", to: "ops")
            .setting("challenges.0.daily", to: true)  // a legacy goal key, unknown elsewhere
            .setting("\(Fixture.g1).challengeId", to: "c1")
            .setting("\(Fixture.g1).requirement.targetVal", to: 5)
            .setting("\(Fixture.g1).reward.amount", to: 1)
            .setting("\(Fixture.g1).rotation.timezone", to: "UTC")
            .setting("\(Fixture.g1).rotation.onExpiry.notify", to: ["GoalId": 1, "targetValue": 0])  // not looked into
            .setting("\(Fixture.g2).challengeId", to: "someone-else")
        let loaded = try Catalog.parse(document.bytes, fileName: "challenges.json")
        let ignored = "ignored (the incumbent ignores it too)"
        #expect(loaded.warnings == [
            "challenges.json: unknown key \"version\" \(ignored)",
            "challenges.json: challenge \"c1\": unknown key \"owner\" \(ignored)",
            "challenges.json: challenge \"c1\": unknown key \"daily\" \(ignored)",
            "challenges.json: goal \"g1\" (challenge \"c1\"): unknown key \"challengeId\" \(ignored)",
            "challenges.json: goal \"g1\" (challenge \"c1\"): unknown key \"requirement.targetVal\" \(ignored)",
            "challenges.json: goal \"g1\" (challenge \"c1\"): unknown key \"reward.amount\" \(ignored)",
            "challenges.json: goal \"g1\" (challenge \"c1\"): unknown key \"rotation.timezone\" \(ignored)",
            "challenges.json: goal \"g1\" (challenge \"c1\"): unknown key \"rotation.onExpiry.notify\" \(ignored)",
            "challenges.json: goal \"g2\" (challenge \"c1\"): unknown key \"challengeId\" \(ignored)",
        ])
        let without = try Catalog.parse(Self.everyLevel.bytes, fileName: "challenges.json")
        #expect(loaded.catalog.goals == without.catalog.goals)
    }

    @Test func anUnknownKeyGivenTwiceIsAWarningPerOccurrence() throws {
        // Neither service reads it, so repeating it (in any case) changes nothing.
        let text = """
            {"challenges": [{"challengeId": "c1", "name": "C", "goals": [
              {"goalId": "g1", "name": "G", "eventSource": "login", "defaultAssigned": true, "note": 1,
               "requirement": {"operator": ">=", "targetValue": 5}, "note": 2, "NOTE": 3,
               "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": []}
            ]}]}
            """
        let loaded = try Catalog.parse(Array(text.utf8), fileName: "d.json")
        #expect(loaded.warnings == ["note", "note", "NOTE"].map {
            "d.json: goal \"g1\" (challenge \"c1\"): unknown key \"\($0)\" ignored (the incumbent ignores it too)"
        })
    }

    @Test func legacyKeysAreOnlyKnownOnGoals() throws {
        let loaded = try Catalog.parse(Fixture.document.setting("challenges.0.daily", to: true).bytes, fileName: Fixture.fileName)
        #expect(loaded.warnings == ["test.json: challenge \"c1\": unknown key \"daily\" ignored (the incumbent ignores it too)"])
    }

    static let caseVariants: [KeyCase] = [
        KeyCase(
            level: "top level", path: "challenges:Challenges",
            expected: "test.json: key \"Challenges\": the incumbent reads it as \"challenges\", this service would not; write it as \"challenges\""),
        KeyCase(
            level: "challenge", path: "challenges.0.name:NAME",
            expected: "test.json: challenge \"c1\": key \"NAME\": the incumbent reads it as \"name\", this service would not; write it as \"name\""),
        KeyCase(
            level: "goal", path: "\(Fixture.g1).goalId:GoalId",
            expected:
                "test.json: goal challenges[0].goals[0] (challenge \"c1\"): key \"GoalId\": the incumbent reads it as \"goalId\", this service would not; write it as \"goalId\""
        ),
        KeyCase(
            level: "requirement", path: "\(Fixture.g1).requirement.targetValue:targetvalue",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): key \"requirement.targetvalue\": the incumbent reads it as \"requirement.targetValue\", this service would not; write it as \"targetValue\""
        ),
        KeyCase(
            level: "requirement, long s", path: "\(Fixture.g1).requirement.statCode:\u{017F}tatCode",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): key \"requirement.\u{017F}tatCode\": the incumbent reads it as \"requirement.statCode\", this service would not; write it as \"statCode\""
        ),
        KeyCase(
            level: "reward", path: "\(Fixture.g1).reward.quantity:QUANTITY",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): key \"reward.QUANTITY\": the incumbent reads it as \"reward.quantity\", this service would not; write it as \"quantity\""
        ),
        KeyCase(
            level: "rotation", path: "\(Fixture.g1).rotation.schedule:Schedule",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): key \"rotation.Schedule\": the incumbent reads it as \"rotation.schedule\", this service would not; write it as \"schedule\""
        ),
        KeyCase(
            level: "onExpiry", path: "\(Fixture.g1).rotation.onExpiry.resetProgress:resetprogress",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): key \"rotation.onExpiry.resetprogress\": the incumbent reads it as \"rotation.onExpiry.resetProgress\", this service would not; write it as \"resetProgress\""
        ),
        KeyCase(
            level: "legacy goal key", path: "\(Fixture.g1).daily:Daily",
            expected:
                "test.json: goal \"g1\" (challenge \"c1\"): key \"Daily\": the incumbent reads it as \"daily\", this service would not; write it as \"daily\""
        ),
    ]

    /// `path` is `where:newKey`: the known key at `where` is renamed in place. Its value is still
    /// read (as the incumbent would), so nothing else is reported.
    @Test(arguments: caseVariants)
    func caseVariantOfAKnownKeyIsRefused(_ variant: KeyCase) {
        let parts = variant.path.split(separator: ":").map(String.init)
        let document = Self.everyLevel.setting("\(Fixture.g1).daily", to: false).renaming(parts[0], to: parts[1])
        #expect(problems(document) == [variant.expected])
    }

    @Test func keysEqualButForCaseInOneObjectAreRefused() {
        let repeated = Fixture.document
            .setting("\(Fixture.g1).GOALID", to: "other")
            .setting("\(Fixture.g1).requirement.TargetValue", to: 0)
        #expect(problems(repeated) == [
            "test.json: goal \"g1\" (challenge \"c1\"): duplicate key \"GOALID\": the incumbent reads it as \"goalId\", like \"goalId\" before it, and would take the last one; keep one, written as \"goalId\"",
            "test.json: goal \"g1\" (challenge \"c1\"): duplicate key \"requirement.TargetValue\": the incumbent reads it as \"requirement.targetValue\", like \"requirement.targetValue\" before it, and would take the last one; keep one, written as \"targetValue\"",
        ])
        // The variant first: it is also not the key this service reads.
        let variantFirst = Fixture.document.renaming("\(Fixture.g1).goalId", to: "GOALID").setting("\(Fixture.g1).goalId", to: "g1")
        #expect(problems(variantFirst) == [
            "test.json: goal \"g1\" (challenge \"c1\"): key \"GOALID\": the incumbent reads it as \"goalId\", this service would not; write it as \"goalId\"",
            "test.json: goal \"g1\" (challenge \"c1\"): duplicate key \"goalId\": the incumbent reads it as \"goalId\", like \"GOALID\" before it, and would take the last one; keep one, written as \"goalId\"",
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
            "d.json: goal \"g1\" (challenge \"c1\"): duplicate key \"name\": the incumbent would take the last one; keep one",
            "d.json: goal \"g1\" (challenge \"c1\"): duplicate key \"requirement.targetValue\": the incumbent would take the last one; keep one",
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
            .setting("version", to: 2)  // unknown: not a problem
            .setting("\(Fixture.g1).requirement.targetValue", to: 0)
            .setting("\(Fixture.g1).requirement.TARGETVALUE", to: 10)
            .setting("\(Fixture.g1).reward.type", to: "GEMS")
            .setting("\(Fixture.g2).eventSource", to: "logins")
            .setting("\(Fixture.g2).prerequisites", to: ["nobody"])
            .setting("challenges.1", to: ["challengeId": "c2", "name": "Two", "goals": []])
        let error = try #require(throws: CatalogError.self) { try Catalog.parse(document.bytes, fileName: "many.json") }
        let expected = [
            "many.json: goal \"g1\" (challenge \"c1\"): duplicate key \"requirement.TARGETVALUE\": the incumbent reads it as \"requirement.targetValue\", like \"requirement.targetValue\" before it, and would take the last one; keep one, written as \"targetValue\"",
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
