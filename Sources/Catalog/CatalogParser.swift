import Foundation

/// Parses and validates a challenges document, collecting every problem before refusing it.
///
/// Rules (product.md "Goal semantics"): known keys only, at every level (the legacy goal keys
/// `type` and `daily` are accepted with a warning); ids non-empty, at most 100 bytes (they are
/// stored in VARCHAR(100) columns) and unique; `eventSource` login|statistic; statistic goals name
/// a `statCode`; `operator` is `>=`; `targetValue` > 0 and fits INT; `progressMode`
/// absolute|relative; reward type ITEM|WALLET with `quantity` > 0; prerequisites name other,
/// existing goals; a rotation needs `progressMode: relative`.
struct CatalogParser {
    let fileName: String
    private static let maxIDBytes = 100

    private static let topKeys: Set<String> = ["challenges"]
    private static let challengeKeys: Set<String> = ["challengeId", "name", "description", "goals"]
    private static let goalKeys: Set<String> = [
        "goalId", "name", "description", "eventSource", "defaultAssigned", "requirement", "reward",
        "prerequisites", "rotation",
    ]
    private static let legacyGoalKeys: Set<String> = ["type", "daily"]
    private static let requirementKeys: Set<String> = ["statCode", "operator", "targetValue", "progressMode"]
    private static let rewardKeys: Set<String> = ["type", "rewardId", "quantity"]
    private static let rotationKeys: Set<String> = ["enabled", "type", "schedule", "onExpiry"]
    private static let onExpiryKeys: Set<String> = ["resetProgress", "allowReselection"]

    func parse(_ data: Data) throws -> LoadedCatalog {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw CatalogError(file: fileName, problems: ["not valid JSON: \(error.localizedDescription)"])
        }
        var problems: [String] = []
        var warnings: [String] = []
        guard let top = root as? [String: Any] else {
            throw CatalogError(file: fileName, problems: ["the top level must be an object {\"challenges\": [...]}"])
        }
        unknownKeys(in: top, allowed: Self.topKeys, at: "top level", into: &problems)
        guard let challenges = top["challenges"] as? [Any] else {
            throw CatalogError(file: fileName, problems: problems + ["top level: \"challenges\" must be an array"])
        }

        var goals: [Goal] = []
        var challengeIDs = Set<String>()
        var goalPlaces: [String: String] = [:]
        for (c, rawChallenge) in challenges.enumerated() {
            guard let challenge = rawChallenge as? [String: Any] else {
                problems.append("challenges[\(c)]: must be an object")
                continue
            }
            let challengeID = (challenge["challengeId"] as? String) ?? ""
            let place = challengeID.isEmpty ? "challenges[\(c)]" : "challenge \"\(challengeID)\""
            unknownKeys(in: challenge, allowed: Self.challengeKeys, at: place, into: &problems)
            checkID(challenge["challengeId"], field: "challengeId", at: place, into: &problems)
            if !challengeID.isEmpty && !challengeIDs.insert(challengeID).inserted {
                problems.append("\(place): challengeId is used by another challenge")
            }
            requireString(challenge["name"], field: "name", at: place, into: &problems)
            optionalString(challenge["description"], field: "description", at: place, into: &problems)
            guard let rawGoals = challenge["goals"] as? [Any], !rawGoals.isEmpty else {
                problems.append("\(place): goals must be a non-empty array")
                continue
            }
            for (g, rawGoal) in rawGoals.enumerated() {
                guard let goal = rawGoal as? [String: Any] else {
                    problems.append("\(place): goals[\(g)] must be an object")
                    continue
                }
                let goalID = (goal["goalId"] as? String) ?? ""
                let goalPlace = goalID.isEmpty
                    ? "\(place), goals[\(g)]" : "goal \"\(goalID)\" (challenge \"\(challengeID)\")"
                if let parsed = parseGoal(
                    goal, index: Int32(goals.count), challengeID: challengeID, at: goalPlace,
                    problems: &problems, warnings: &warnings)
                {
                    if let other = goalPlaces[parsed.goalId] {
                        problems.append("\(goalPlace): goalId is already used by \(other)")
                    } else {
                        goalPlaces[parsed.goalId] = goalPlace
                        goals.append(parsed)
                    }
                }
            }
        }
        if challenges.isEmpty { problems.append("top level: \"challenges\" is empty") }

        for goal in goals {
            let place = goalPlaces[goal.goalId] ?? goal.goalId
            for prerequisite in goal.prerequisites {
                if prerequisite == goal.goalId {
                    problems.append("\(place): prerequisites names the goal itself")
                } else if goalPlaces[prerequisite] == nil {
                    problems.append("\(place): prerequisites names \"\(prerequisite)\", which is not a goal of this file")
                }
            }
        }
        if !problems.isEmpty { throw CatalogError(file: fileName, problems: problems) }
        return LoadedCatalog(catalog: Catalog(goals: goals), warnings: warnings.map { "\(fileName): \($0)" })
    }

    private func parseGoal(
        _ goal: [String: Any], index: Int32, challengeID: String, at place: String,
        problems: inout [String], warnings: inout [String]
    ) -> Goal? {
        let before = problems.count
        unknownKeys(in: goal, allowed: Self.goalKeys.union(Self.legacyGoalKeys), at: place, into: &problems)
        let legacy = Self.legacyGoalKeys.filter { goal[$0] != nil }.sorted()
        if !legacy.isEmpty {
            warnings.append(
                "\(place): legacy key\(legacy.count > 1 ? "s" : "") \(legacy.map { "\"\($0)\"" }.joined(separator: " and ")) ignored (the incumbent's older format; use requirement.progressMode and rotation)")
        }
        checkID(goal["goalId"], field: "goalId", at: place, into: &problems)
        requireString(goal["name"], field: "name", at: place, into: &problems)
        optionalString(goal["description"], field: "description", at: place, into: &problems)

        let source = (goal["eventSource"] as? String).flatMap(EventSource.init(rawValue:))
        if source == nil {
            problems.append("\(place): eventSource must be \"login\" or \"statistic\", got \(describe(goal["eventSource"]))")
        }
        let defaultAssigned = goal["defaultAssigned"] as? Bool
        if defaultAssigned == nil {
            problems.append("\(place): defaultAssigned must be true or false, got \(describe(goal["defaultAssigned"]))")
        }

        // requirement
        var statCode: String?
        var target: Int32 = 0
        var mode = ProgressMode.absolute
        if let requirement = goal["requirement"] as? [String: Any] {
            unknownKeys(in: requirement, allowed: Self.requirementKeys, at: "\(place): requirement", into: &problems)
            if let code = requirement["statCode"] as? String, !code.isEmpty {
                if code.utf8.count > Self.maxIDBytes {
                    problems.append("\(place): requirement.statCode must be at most \(Self.maxIDBytes) bytes")
                }
                statCode = code
            } else if source == .statistic {
                problems.append("\(place): requirement.statCode is required for a statistic goal")
            } else if let code = requirement["statCode"], !(code is String) {
                problems.append("\(place): requirement.statCode must be a string")
            }
            if (requirement["operator"] as? String) != ">=" {
                problems.append("\(place): requirement.operator must be \">=\", got \(describe(requirement["operator"]))")
            }
            if let value = integer(requirement["targetValue"]) {
                if value <= 0 {
                    problems.append("\(place): requirement.targetValue must be > 0, got \(value)")
                } else if value > Int(Int32.max) {
                    problems.append("\(place): requirement.targetValue must be at most \(Int32.max), got \(value)")
                } else {
                    target = Int32(value)
                }
            } else {
                problems.append("\(place): requirement.targetValue must be a whole number, got \(describe(requirement["targetValue"]))")
            }
            if let raw = requirement["progressMode"] {
                if let parsed = (raw as? String).flatMap(ProgressMode.init(rawValue:)) {
                    mode = parsed
                } else {
                    problems.append("\(place): requirement.progressMode must be \"absolute\" or \"relative\", got \(describe(raw))")
                }
            }
        } else {
            problems.append("\(place): requirement must be an object")
        }

        // reward
        var reward = Reward(type: "", rewardId: "", quantity: 0)
        if let rawReward = goal["reward"] as? [String: Any] {
            unknownKeys(in: rawReward, allowed: Self.rewardKeys, at: "\(place): reward", into: &problems)
            if let type = rawReward["type"] as? String, type == "ITEM" || type == "WALLET" {
                reward.type = type
            } else {
                problems.append("\(place): reward.type must be \"ITEM\" or \"WALLET\", got \(describe(rawReward["type"]))")
            }
            if let id = rawReward["rewardId"] as? String, !id.isEmpty {
                reward.rewardId = id
            } else {
                problems.append("\(place): reward.rewardId must be a non-empty string")
            }
            if let quantity = integer(rawReward["quantity"]), quantity > 0 {
                reward.quantity = quantity
            } else {
                problems.append("\(place): reward.quantity must be a whole number > 0, got \(describe(rawReward["quantity"]))")
            }
        } else {
            problems.append("\(place): reward must be an object")
        }

        // prerequisites
        var prerequisites: [String] = []
        if let raw = goal["prerequisites"] {
            if let list = raw as? [Any], list.allSatisfy({ $0 is String }) {
                prerequisites = list.compactMap { $0 as? String }
            } else {
                problems.append("\(place): prerequisites must be an array of goal ids")
            }
        } else {
            problems.append("\(place): prerequisites is required (use [] for none)")
        }

        // rotation
        var rotation: Rotation?
        if let raw = goal["rotation"] {
            if let object = raw as? [String: Any] {
                rotation = parseRotation(object, mode: mode, at: place, into: &problems)
            } else {
                problems.append("\(place): rotation must be an object")
            }
        }

        guard problems.count == before, let source, let defaultAssigned, let goalID = goal["goalId"] as? String,
            let name = goal["name"] as? String
        else { return nil }
        return Goal(
            index: index, goalId: goalID, challengeId: challengeID, name: name, eventSource: source,
            defaultAssigned: defaultAssigned, statCode: source == .statistic ? statCode : nil, targetValue: target,
            progressMode: mode, rotation: rotation, reward: reward, prerequisites: prerequisites)
    }

    private func parseRotation(_ object: [String: Any], mode: ProgressMode, at place: String, into problems: inout [String]) -> Rotation? {
        let before = problems.count
        unknownKeys(in: object, allowed: Self.rotationKeys, at: "\(place): rotation", into: &problems)
        let enabled = object["enabled"] as? Bool
        if enabled == nil { problems.append("\(place): rotation.enabled must be true or false") }
        if let type = object["type"], (type as? String) != "global" {
            problems.append("\(place): rotation.type must be \"global\", got \(describe(type))")
        }
        let schedule = (object["schedule"] as? String).flatMap(RotationSchedule.init(rawValue:))
        if schedule == nil {
            problems.append("\(place): rotation.schedule must be \"daily\", \"weekly\" or \"monthly\", got \(describe(object["schedule"]))")
        }
        var reset = false, reselect = false
        if let raw = object["onExpiry"] {
            if let onExpiry = raw as? [String: Any] {
                unknownKeys(in: onExpiry, allowed: Self.onExpiryKeys, at: "\(place): rotation.onExpiry", into: &problems)
                for (key, value) in onExpiry where Self.onExpiryKeys.contains(key) && !(value is Bool) {
                    problems.append("\(place): rotation.onExpiry.\(key) must be true or false")
                }
                reset = onExpiry["resetProgress"] as? Bool ?? false
                reselect = onExpiry["allowReselection"] as? Bool ?? false
            } else {
                problems.append("\(place): rotation.onExpiry must be an object")
            }
        }
        if enabled == true && mode != .relative {
            problems.append("\(place): rotation needs requirement.progressMode \"relative\"")
        }
        guard problems.count == before, let enabled, let schedule else { return nil }
        return Rotation(enabled: enabled, schedule: schedule, resetProgress: reset, allowReselection: reselect)
    }

    // MARK: - Helpers

    private func unknownKeys(in object: [String: Any], allowed: Set<String>, at place: String, into problems: inout [String]) {
        for key in object.keys.sorted() where !allowed.contains(key) {
            problems.append("\(place): unknown key \"\(key)\"")
        }
    }

    private func checkID(_ value: Any?, field: String, at place: String, into problems: inout [String]) {
        guard let id = value as? String, !id.isEmpty else {
            problems.append("\(place): \(field) must be a non-empty string")
            return
        }
        if id.utf8.count > Self.maxIDBytes {
            problems.append("\(place): \(field) must be at most \(Self.maxIDBytes) bytes, got \(id.utf8.count)")
        }
    }

    private func requireString(_ value: Any?, field: String, at place: String, into problems: inout [String]) {
        if (value as? String)?.isEmpty ?? true {
            problems.append("\(place): \(field) must be a non-empty string")
        }
    }

    private func optionalString(_ value: Any?, field: String, at place: String, into problems: inout [String]) {
        if let value, !(value is String) { problems.append("\(place): \(field) must be a string") }
    }

    private func integer(_ value: Any?) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        let double = number.doubleValue
        guard double.rounded() == double, abs(double) < 1e15 else { return nil }
        return Int(double)
    }

    private func describe(_ value: Any?) -> String {
        switch value {
        case nil: return "nothing"
        case let string as String: return "\"\(string)\""
        case let number as NSNumber: return "\(number)"
        default: return "\(value!)"
        }
    }
}
