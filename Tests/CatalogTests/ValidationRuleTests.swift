import Catalog
import Testing

/// One broken rule per case: the document is `Fixture.document` with `edits` applied, and loading
/// it must fail with exactly `expected` (each line naming the file, the goal or challenge, and
/// the field).
struct RuleCase: Sendable, CustomTestStringConvertible {
    let rule: String
    /// Paths relative to the document root; nil removes the key.
    let edits: [(path: String, value: TestJSON?)]
    let expected: [String]

    var testDescription: String { rule }

    var document: TestJSON {
        edits.reduce(Fixture.document) { $0.setting($1.path, to: $1.value) }
    }

    /// A case that edits goal `g1` (`challenges.0.goals.0`); its problems are located there.
    static func goal(_ rule: String, _ edits: [(String, TestJSON?)], _ messages: String...) -> RuleCase {
        RuleCase(
            rule: rule,
            edits: edits.map { ("\(Fixture.g1).\($0.0)", $0.1) },
            expected: messages.map { "test.json: goal \"g1\" (challenge \"c1\"): \($0)" })
    }

    static func goal(_ rule: String, _ path: String, _ value: TestJSON?, _ message: String) -> RuleCase {
        goal(rule, [(path, value)], message)
    }
}

/// Problems of `document`, or [] when it loads.
func problems(_ document: TestJSON, fileName: String = Fixture.fileName) -> [String] {
    do {
        _ = try Catalog.parse(document.bytes, fileName: fileName)
        return []
    } catch {
        return error.problems
    }
}

@Suite("Validation rules")
struct ValidationRuleTests {
    static let long = String(repeating: "é", count: 51)  // 102 UTF-8 bytes, 51 characters
    static let hundredBytes = String(repeating: "x", count: 100)
    static let relative: (String, TestJSON?) = ("requirement.progressMode", "relative")

    static let goalRules: [RuleCase] = [
        // goalId
        RuleCase(
            rule: "goalId is required", edits: [("\(Fixture.g1).goalId", nil)],
            expected: ["test.json: goal challenges[0].goals[0] (challenge \"c1\"): goalId is required"]),
        RuleCase(
            rule: "goalId is non-empty", edits: [("\(Fixture.g1).goalId", "")],
            expected: ["test.json: goal challenges[0].goals[0] (challenge \"c1\"): goalId must not be empty"]),
        RuleCase(
            rule: "goalId holds no NUL (every write of the goal would fail)", edits: [("\(Fixture.g1).goalId", "g\u{0}x")],
            expected: [
                "test.json: goal \"g\\u0000x\" (challenge \"c1\"): goalId must not contain control characters (U+0000 at byte 1)"
            ]),
        RuleCase(
            rule: "goalId is a string", edits: [("\(Fixture.g1).goalId", 7)],
            expected: ["test.json: goal challenges[0].goals[0] (challenge \"c1\"): goalId must be a string, got number 7"]),
        RuleCase(
            rule: "goalId is at most 100 bytes", edits: [("\(Fixture.g1).goalId", .string(long))],
            expected: [
                "test.json: goal \"\(long)\" (challenge \"c1\"): goalId must be at most 100 bytes (it is stored in a VARCHAR(100) column), got 102 bytes"
            ]),
        // name, defaultAssigned, eventSource
        .goal("name is required", "name", nil, "name is required"),
        .goal("name is a string", "name", ["x"], "name must be a string, got an array"),
        .goal("description is a string", "description", 3, "description must be a string, got number 3"),
        .goal("eventSource is required", "eventSource", nil, "eventSource is required"),
        .goal("eventSource is login or statistic", "eventSource", "kill", "eventSource must be \"login\" or \"statistic\", got \"kill\""),
        .goal("defaultAssigned is required", "defaultAssigned", nil, "defaultAssigned is required"),
        .goal("defaultAssigned is a boolean, not a string", "defaultAssigned", "yes", "defaultAssigned must be true or false, got string \"yes\""),
        .goal("defaultAssigned is a boolean, not a number", "defaultAssigned", 1, "defaultAssigned must be true or false, got number 1"),
        .goal("defaultAssigned is not null", "defaultAssigned", .null, "defaultAssigned must be true or false, got null"),
        // requirement
        .goal("requirement is required", "requirement", nil, "requirement is required"),
        .goal("requirement is an object", "requirement", [1], "requirement must be an object, got an array"),
        .goal("statCode is required for statistic goals", "requirement.statCode", nil, "requirement.statCode is required for a statistic goal"),
        .goal("statCode is non-empty", "requirement.statCode", "", "requirement.statCode must not be empty"),
        .goal("statCode is a string", "requirement.statCode", true, "requirement.statCode must be a string, got boolean true"),
        .goal(
            "statCode is at most 100 bytes", "requirement.statCode", .string(long),
            "requirement.statCode must be at most 100 bytes (it is stored in a VARCHAR(100) column), got 102 bytes"),
        .goal("operator is required", "requirement.operator", nil, "requirement.operator is required"),
        .goal("operator is only >=", "requirement.operator", ">", "requirement.operator must be \">=\", got \">\""),
        .goal("targetValue is required", "requirement.targetValue", nil, "requirement.targetValue is required"),
        .goal("targetValue > 0 (zero)", "requirement.targetValue", 0, "requirement.targetValue must be > 0, got 0"),
        .goal("targetValue > 0 (negative)", "requirement.targetValue", -5, "requirement.targetValue must be > 0, got -5"),
        .goal(
            "targetValue fits in Int32", "requirement.targetValue", .number("2147483648"),
            "requirement.targetValue must be at most 2147483647 (a 32-bit integer), got 2147483648"),
        .goal(
            "targetValue far beyond Int64", "requirement.targetValue", .number("99999999999999999999999"),
            "requirement.targetValue must be at most 2147483647 (a 32-bit integer), got 99999999999999999999999"),
        .goal("targetValue is whole", "requirement.targetValue", .number("1.5"), "requirement.targetValue must be a whole number, got 1.5"),
        .goal("targetValue has no exponent", "requirement.targetValue", .number("1e3"), "requirement.targetValue must be a whole number, got 1e3"),
        .goal("targetValue is a number", "requirement.targetValue", "10", "requirement.targetValue must be a number, got string \"10\""),
        .goal(
            "progressMode is absolute or relative", "requirement.progressMode", "delta",
            "requirement.progressMode must be \"absolute\" or \"relative\", got \"delta\""),
        // reward
        .goal("reward is required", "reward", nil, "reward is required"),
        .goal("reward.type is ITEM or WALLET", "reward.type", "item", "reward.type must be \"ITEM\" or \"WALLET\", got \"item\""),
        .goal("reward.type is required", "reward.type", nil, "reward.type is required"),
        .goal("reward.rewardId is non-empty", "reward.rewardId", "", "reward.rewardId must not be empty"),
        .goal(
            "reward.rewardId is at most 100 bytes", "reward.rewardId", .string(long),
            "reward.rewardId must be at most 100 bytes (it is stored in a VARCHAR(100) column), got 102 bytes"),
        .goal("reward.quantity > 0", "reward.quantity", 0, "reward.quantity must be > 0, got 0"),
        .goal("reward.quantity is a whole number", "reward.quantity", .number("2.5"), "reward.quantity must be a whole number, got 2.5"),
        // prerequisites
        .goal("prerequisites is required", "prerequisites", nil, "prerequisites is required"),
        .goal("prerequisites is an array", "prerequisites", "g2", "prerequisites must be an array, got string \"g2\""),
        .goal("prerequisites holds strings", "prerequisites", [1], "prerequisites[0] must be a string, got number 1"),
        .goal("prerequisites may not name the goal itself", "prerequisites", ["g1"], "prerequisites[0] names the goal itself"),
        .goal(
            "prerequisites name existing goals", "prerequisites", ["g2", "nope"],
            "prerequisites[1] names \"nope\", which is not a goalId in this file"),
        RuleCase(
            rule: "prerequisites may not form a cycle",
            edits: [("\(Fixture.g1).prerequisites", ["g2"]), ("\(Fixture.g2).prerequisites", ["g1"])],
            expected: ["test.json: goal \"g1\" (challenge \"c1\"): prerequisites form a cycle: \"g1\" → \"g2\" → \"g1\""]),
        // rotation
        .goal(
            "rotation needs relative (default absolute)", "rotation", Fixture.rotation,
            "rotation needs requirement.progressMode \"relative\", got \"absolute\" (the default)"),
        .goal(
            "rotation needs relative (written absolute)", [("rotation", Fixture.rotation), ("requirement.progressMode", "absolute")],
            "rotation needs requirement.progressMode \"relative\", got \"absolute\""),
        .goal("rotation is an object", [relative, ("rotation", true)], "rotation must be an object, got boolean true"),
        .goal("rotation.enabled is required", [relative, ("rotation", Fixture.rotation.setting("enabled", to: nil))], "rotation.enabled is required"),
        .goal(
            "rotation.type is global", [relative, ("rotation", Fixture.rotation.setting("type", to: "local"))],
            "rotation.type must be \"global\", got \"local\""),
        .goal(
            "rotation.schedule is daily, weekly or monthly", [relative, ("rotation", Fixture.rotation.setting("schedule", to: "hourly"))],
            "rotation.schedule must be one of \"daily\", \"weekly\", \"monthly\", got \"hourly\""),
        .goal("rotation.onExpiry is required", [relative, ("rotation", Fixture.rotation.setting("onExpiry", to: nil))], "rotation.onExpiry is required"),
        .goal(
            "rotation.onExpiry.resetProgress is a boolean",
            [relative, ("rotation", Fixture.rotation.setting("onExpiry.resetProgress", to: "yes"))],
            "rotation.onExpiry.resetProgress must be true or false, got string \"yes\""),
        .goal(
            "rotation.onExpiry.allowReselection is required",
            [relative, ("rotation", Fixture.rotation.setting("onExpiry.allowReselection", to: nil))],
            "rotation.onExpiry.allowReselection is required"),
        // legacy keys: accepted, but with their old values only
        .goal(
            "legacy type is absolute, increment or daily", "type", "sometimes",
            "type must be one of \"absolute\", \"increment\", \"daily\", got \"sometimes\""),
        .goal("legacy daily is a boolean", "daily", "no", "daily must be true or false, got string \"no\""),
    ]

    @Test(arguments: goalRules)
    func goalRuleIsEnforced(_ rule: RuleCase) {
        #expect(problems(rule.document) == rule.expected)
    }

    static let challengeRules: [RuleCase] = [
        RuleCase(
            rule: "challengeId is required", edits: [("challenges.0.challengeId", nil)],
            expected: ["test.json: challenge challenges[0]: challengeId is required"]),
        RuleCase(
            rule: "challengeId is non-empty", edits: [("challenges.0.challengeId", "")],
            expected: ["test.json: challenge challenges[0]: challengeId must not be empty"]),
        RuleCase(
            rule: "challengeId holds no newline (it would forge a log line)", edits: [("challenges.0.challengeId", "c\n1")],
            expected: ["test.json: challenge \"c\\n1\": challengeId must not contain control characters (U+000A at byte 1)"]),
        RuleCase(
            rule: "challengeId is at most 100 bytes", edits: [("challenges.0.challengeId", .string(long))],
            expected: [
                "test.json: challenge \"\(long)\": challengeId must be at most 100 bytes (it is stored in a VARCHAR(100) column), got 102 bytes"
            ]),
        RuleCase(
            rule: "challengeId is unique",
            edits: [("challenges.1", ["challengeId": "c1", "name": "Again", "goals": [Fixture.statGoal("g3", statCode: "kills")]])],
            expected: ["test.json: challenge \"c1\": challengeId \"c1\" is already used by challenges[0]"]),
        RuleCase(
            rule: "challenge name is required", edits: [("challenges.0.name", nil)],
            expected: ["test.json: challenge \"c1\": name is required"]),
        RuleCase(
            rule: "a challenge has at least one goal", edits: [("challenges.0.goals", [])],
            expected: ["test.json: challenge \"c1\": goals must contain at least one goal"]),
        RuleCase(
            rule: "goals is an array", edits: [("challenges.0.goals", ["goalId": "g1"])],
            expected: ["test.json: challenge \"c1\": goals must be an array, got an object"]),
        RuleCase(
            rule: "a goal is an object", edits: [("\(Fixture.g2)", "g2")],
            expected: ["test.json: goal challenges[0].goals[1] (challenge \"c1\"): it must be an object, got string \"g2\""]),
        RuleCase(
            rule: "a challenge is an object", edits: [("challenges.1", 5)],
            expected: ["test.json: challenge challenges[1]: it must be an object, got number 5"]),
        RuleCase(
            rule: "challenges is required", edits: [("challenges", nil)],
            expected: ["test.json: challenges is required"]),
        RuleCase(
            rule: "challenges is an array", edits: [("challenges", ["c1": 1])],
            expected: ["test.json: challenges must be an array, got an object"]),
        RuleCase(
            rule: "at least one challenge", edits: [("challenges", [])],
            expected: ["test.json: challenges must contain at least one challenge"]),
    ]

    @Test(arguments: challengeRules)
    func challengeRuleIsEnforced(_ rule: RuleCase) {
        #expect(problems(rule.document) == rule.expected)
    }

    @Test func topLevelMustBeAnObject() {
        #expect(problems(["challenges"]) == ["test.json: the top level must be an object {\"challenges\": [...]}, got an array"])
        #expect(problems(.null) == ["test.json: the top level must be an object {\"challenges\": [...]}, got null"])
    }

    @Test func hundredByteIdsAreAccepted() throws {
        let document = Fixture.document
            .setting("challenges.0.challengeId", to: .string(Self.hundredBytes))
            .setting("\(Fixture.g1).goalId", to: .string(Self.hundredBytes))
            .setting("\(Fixture.g1).requirement.statCode", to: .string(Self.hundredBytes))
            .setting("\(Fixture.g2).prerequisites", to: [.string(Self.hundredBytes)])
        let catalog = try Catalog.parse(document.bytes, fileName: Fixture.fileName).catalog
        #expect(catalog.goals[0].goalId.utf8.count == 100)
        #expect(catalog.goals(forStatCode: Self.hundredBytes) == [0])
    }

    @Test func largestTargetValueIsAccepted() throws {
        let document = Fixture.document.setting("\(Fixture.g1).requirement.targetValue", to: .number("2147483647"))
        #expect(try Catalog.parse(document.bytes, fileName: Fixture.fileName).catalog.goals[0].targetValue == Int32.max)
    }
}
