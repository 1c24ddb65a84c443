/// Parses and validates a challenges document (product.md, "Goal semantics"), collecting every
/// problem before refusing it, so one start-up attempt shows everything to fix.
///
/// Keys are matched as the incumbent (Go's `encoding/json`) matches them, so that a file it runs
/// with starts this service too, and one the two would read differently is refused with a message
/// saying so: an unknown key, which both ignore, is a warning naming file, location and key; a
/// case variant of a known key (`GoalId`, which Go reads as `goalId`) and a key given twice (Go
/// keeps the last) are problems. Known keys must be of the right JSON type, and:
/// - top level `{"challenges": [...]}` with at least one challenge;
/// - `challengeId` and `goalId`: 1…100 UTF-8 bytes; challenge ids unique, goal ids unique across
///   the file; a challenge has at least one goal;
/// - `eventSource` login | statistic; statistic goals need `requirement.statCode` (1…100 bytes),
///   login goals ignore it (it may be absent or anything);
/// - `requirement.operator` is `>=`; `targetValue` an integer in 1…2^31−1; `progressMode`
///   absolute (default) | relative;
/// - `reward.type` ITEM | WALLET; `rewardId` 1…100 bytes; `quantity` an integer in 1…2^31−1;
/// - `prerequisites`: goal ids of this file, not the goal itself, without cycles;
/// - `rotation` (optional): `enabled`, `type` global, `schedule` daily | weekly | monthly,
///   `onExpiry` {`resetProgress`, `allowReselection`}; an enabled rotation needs
///   `progressMode: relative`;
/// - the legacy goal keys `type` (absolute | increment | daily) and `daily` (boolean) are
///   accepted, ignored, and reported as warnings naming them and the goals that carry them
///   (their value is checked, so they count as known keys here: a case variant is refused).
struct CatalogLoader {
    private static let topKeys = ["challenges"]
    private static let challengeKeys = ["challengeId", "name", "description", "goals"]
    private static let goalKeys = [
        "goalId", "name", "description", "eventSource", "defaultAssigned", "requirement", "reward",
        "prerequisites", "rotation",
    ]
    private static let requirementKeys = ["statCode", "operator", "targetValue", "progressMode"]
    private static let rewardKeys = ["type", "rewardId", "quantity"]
    private static let rotationKeys = ["enabled", "type", "schedule", "onExpiry"]
    private static let onExpiryKeys = ["resetProgress", "allowReselection"]
    private static let legacyTypeKey = "type"
    private static let legacyDailyKey = "daily"

    let fileName: String
    private(set) var problems: [String] = []
    /// One line per unknown key, in reading order: keys the incumbent ignores as well, so they
    /// are worth a look (a typo?) but no reason to refuse a file it runs with.
    private(set) var unknownKeys: [String] = []
    /// Goal labels per legacy key, for one warning per key.
    private var legacyUses: [String: [String]] = [:]
    /// Every goal id seen (valid goal or not), with its goal's location, for duplicate and
    /// prerequisite checks that do not cascade from a goal's other problems.
    private var goalLocations: [String: String] = [:]
    /// Prerequisites to resolve once every goal id is known.
    private var pendingPrerequisites: [(location: String, goalId: String, prerequisites: [String])] = []

    private init(fileName: String) {
        self.fileName = fileName
    }

    /// Parses `bytes` as a challenges document named `fileName` in messages.
    static func load(_ bytes: [UInt8], fileName: String) throws(CatalogError) -> LoadedCatalog {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw CatalogError(file: fileName, problems: ["\(fileName): \(error.description)"])
        }
        var loader = CatalogLoader(fileName: fileName)
        let goals = loader.readDocument(document)
        loader.checkPrerequisites()
        guard loader.problems.isEmpty else { throw CatalogError(file: fileName, problems: loader.problems) }
        return LoadedCatalog(catalog: Catalog(goals: goals), warnings: loader.warnings())
    }

    /// Records a problem at `location` (empty: the file as a whole).
    mutating func report(_ location: String, _ message: String) {
        problems.append(line(location, message))
    }

    /// Records an unknown key at `location`, for the warnings.
    mutating func warn(_ location: String, _ message: String) {
        unknownKeys.append(line(location, message))
    }

    /// A self-contained message: the file name, the location when there is one, the message.
    private func line(_ location: String, _ message: String) -> String {
        location.isEmpty ? "\(fileName): \(message)" : "\(fileName): \(location): \(message)"
    }

    // MARK: - Levels

    private mutating func readDocument(_ document: JSONValue) -> [Goal] {
        guard case .object = document else {
            report("", "the top level must be an object {\"challenges\": [...]}, got \(document.described)")
            return []
        }
        guard let top = objectFields(document, location: "", path: "", allowed: Self.topKeys),
            let challenges = array(top, "challenges")
        else { return [] }
        if challenges.isEmpty { report("", "challenges must contain at least one challenge") }
        var goals: [Goal] = []
        var challengeLocations: [String: String] = [:]
        for (position, challenge) in challenges.enumerated() {
            readChallenge(challenge, position: position, challengeLocations: &challengeLocations, into: &goals)
        }
        return goals
    }

    private mutating func readChallenge(
        _ value: JSONValue, position: Int, challengeLocations: inout [String: String], into goals: inout [Goal]
    ) {
        let path = "challenges[\(position)]"
        let location = "challenge \(Self.label(of: value, key: "challengeId") ?? path)"
        guard let fields = objectFields(value, location: location, path: "", allowed: Self.challengeKeys) else { return }
        let challengeId = identifier(fields, "challengeId")
        if let challengeId {
            if let first = challengeLocations[challengeId] {
                report(location, "challengeId \(quoted(challengeId)) is already used by \(first)")
            } else {
                challengeLocations[challengeId] = path
            }
        }
        _ = string(fields, "name")
        _ = string(fields, "description", required: false)
        guard let goalValues = array(fields, "goals") else { return }
        if goalValues.isEmpty { report(location, "goals must contain at least one goal") }
        for (goalPosition, goalValue) in goalValues.enumerated() {
            let goalPath = "\(path).goals[\(goalPosition)]"
            let goalLocation = "goal \(Self.label(of: goalValue, key: "goalId") ?? goalPath) (\(location))"
            let problemsBefore = problems.count
            let goal = readGoal(
                goalValue, index: Int32(clamping: goals.count), challengeId: challengeId ?? "", location: goalLocation)
            if let goal, problems.count == problemsBefore { goals.append(goal) }
        }
    }

    private mutating func readGoal(_ value: JSONValue, index: Int32, challengeId: String, location: String) -> Goal? {
        guard
            let fields = objectFields(
                value, location: location, path: "", allowed: Self.goalKeys,
                legacy: [Self.legacyTypeKey, Self.legacyDailyKey])
        else { return nil }
        let goalId = identifier(fields, "goalId")
        if let goalId {
            if let first = goalLocations[goalId] {
                report(location, "goalId \(quoted(goalId)) is already used by \(first)")
            } else {
                goalLocations[goalId] = location
            }
        }
        let name = string(fields, "name")
        _ = string(fields, "description", required: false)
        readLegacyKeys(fields)
        let eventSource = choice(fields, "eventSource", [EventSource.login, .statistic])
        let defaultAssigned = bool(fields, "defaultAssigned")

        var statCode: String?
        var targetValue: Int32?
        var progressMode: ProgressMode?
        if let requirement = object(fields, "requirement", allowed: Self.requirementKeys) {
            if eventSource == .statistic {
                if requirement.values["statCode"] == nil {
                    report(location, "requirement.statCode is required for a statistic goal")
                } else {
                    statCode = identifier(requirement, "statCode", refusingControls: false)
                }
            }
            _ = choice(requirement, "operator", [Literal(rawValue: ">=")])
            targetValue = positiveInt32(requirement, "targetValue")
            progressMode = choice(requirement, "progressMode", [ProgressMode.absolute, .relative], fallback: .absolute)
        }
        let reward = readReward(fields)
        let rotation = readRotation(fields, progressMode: progressMode)
        let prerequisites = readPrerequisites(fields, goalId: goalId)

        guard let goalId, let name, let eventSource, let defaultAssigned, let targetValue, let progressMode,
            let reward, let prerequisites, rotation.valid
        else { return nil }
        return Goal(
            index: index, goalId: goalId, challengeId: challengeId, name: name, eventSource: eventSource,
            defaultAssigned: defaultAssigned, statCode: statCode, targetValue: targetValue,
            progressMode: progressMode, rotation: rotation.rotation, reward: reward, prerequisites: prerequisites)
    }

    private mutating func readReward(_ goal: ObjectFields) -> Reward? {
        guard let reward = object(goal, "reward", allowed: Self.rewardKeys) else { return nil }
        let type = choice(reward, "type", [Literal(rawValue: "ITEM"), Literal(rawValue: "WALLET")])
        let rewardId = identifier(reward, "rewardId")
        let quantity = positiveInt32(reward, "quantity")
        guard let type, let rewardId, let quantity else { return nil }
        return Reward(type: type.rawValue, rewardId: rewardId, quantity: Int(quantity))
    }

    /// The goal's rotation (nil when absent) and whether it was valid. `progressMode` is nil when
    /// the requirement was unreadable; the relative rule is then not checked (no cascade).
    private mutating func readRotation(
        _ goal: ObjectFields, progressMode: ProgressMode?
    ) -> (rotation: Rotation?, valid: Bool) {
        guard goal.values["rotation"].map({ $0 != .null }) ?? false else { return (nil, true) }
        guard let rotation = object(goal, "rotation", allowed: Self.rotationKeys, required: false) else {
            return (nil, false)
        }
        let enabled = bool(rotation, "enabled")
        _ = choice(rotation, "type", [Literal(rawValue: "global")])
        let schedule = choice(rotation, "schedule", [RotationSchedule.daily, .weekly, .monthly])
        let onExpiry = object(rotation, "onExpiry", allowed: Self.onExpiryKeys)
        let resetProgress = onExpiry.flatMap { bool($0, "resetProgress") }
        let allowReselection = onExpiry.flatMap { bool($0, "allowReselection") }
        if enabled == true, let progressMode, progressMode != .relative {
            let written = goal.values["requirement"].flatMap { requirementValue -> JSONValue? in
                guard case .object(let members) = requirementValue else { return nil }
                return members.first { $0.key == "progressMode" }?.value
            }
            report(
                goal.location,
                "rotation needs requirement.progressMode \"relative\", got \(quoted(progressMode.rawValue))\(written == nil ? " (the default)" : "")"
            )
            return (nil, false)
        }
        guard let enabled, let schedule, let resetProgress, let allowReselection else { return (nil, false) }
        return (
            Rotation(enabled: enabled, schedule: schedule, resetProgress: resetProgress, allowReselection: allowReselection),
            true
        )
    }

    private mutating func readPrerequisites(_ goal: ObjectFields, goalId: String?) -> [String]? {
        guard let elements = array(goal, "prerequisites") else { return nil }
        var prerequisites: [String] = []
        var valid = true
        for (position, element) in elements.enumerated() {
            guard case .string(let id) = element else {
                report(goal.location, "prerequisites[\(position)] must be a string, got \(element.described)")
                valid = false
                continue
            }
            if id == goalId {
                report(goal.location, "prerequisites[\(position)] names the goal itself")
                valid = false
            }
            prerequisites.append(id)
        }
        if let goalId { pendingPrerequisites.append((goal.location, goalId, prerequisites)) }
        return valid ? prerequisites : nil
    }

    private mutating func readLegacyKeys(_ goal: ObjectFields) {
        if goal.values[Self.legacyTypeKey] != nil {
            legacyUses[Self.legacyTypeKey, default: []].append(goal.location)
            _ = choice(goal, Self.legacyTypeKey, ["absolute", "increment", "daily"].map(Literal.init(rawValue:)))
        }
        if goal.values[Self.legacyDailyKey] != nil {
            legacyUses[Self.legacyDailyKey, default: []].append(goal.location)
            _ = bool(goal, Self.legacyDailyKey)
        }
    }

    // MARK: - Cross-references

    /// Prerequisites must name goals of this file and may not form a cycle.
    private mutating func checkPrerequisites() {
        var edges: [String: [String]] = [:]
        for pending in pendingPrerequisites {
            for (position, id) in pending.prerequisites.enumerated() where id != pending.goalId {
                if goalLocations[id] == nil {
                    report(pending.location, "prerequisites[\(position)] names \(quoted(id)), which is not a goalId in this file")
                } else {
                    edges[pending.goalId, default: []].append(id)
                }
            }
        }
        // Depth-first search in file order; each cycle is reported once, at its first goal.
        var state: [String: Bool] = [:]  // false: on the current path, true: done
        var path: [String] = []
        func visit(_ id: String, _ loader: inout CatalogLoader) {
            state[id] = false
            path.append(id)
            for next in edges[id] ?? [] {
                switch state[next] {
                case nil:
                    visit(next, &loader)
                case false?:
                    guard let start = path.lastIndex(of: next) else { break }
                    let cycle = path[start...] + [next]
                    loader.report(
                        loader.goalLocations[next] ?? "goal \(quoted(next))",
                        "prerequisites form a cycle: \(cycle.map(quoted).joined(separator: " → "))")
                case true?:
                    break
                }
            }
            path.removeLast()
            state[id] = true
        }
        for pending in pendingPrerequisites where state[pending.goalId] == nil {
            visit(pending.goalId, &self)
        }
    }

    // MARK: - Helpers

    /// One warning per unknown key occurrence, then one per legacy key, naming it and the goals
    /// that carry it.
    private func warnings() -> [String] {
        var warnings = unknownKeys
        if let goals = legacyUses[Self.legacyTypeKey] {
            warnings.append(
                "\(fileName): legacy goal key \"type\" is ignored (progress follows eventSource and requirement.progressMode); found on \(Self.list(goals))"
            )
        }
        if let goals = legacyUses[Self.legacyDailyKey] {
            warnings.append(
                "\(fileName): legacy goal key \"daily\" is ignored (for a daily goal use progressMode \"relative\" with a daily rotation); found on \(Self.list(goals))"
            )
        }
        return warnings
    }

    /// `goal "a" (challenge "x"), goal "b" (challenge "x")`, shortened after 10.
    private static func list(_ locations: [String]) -> String {
        let shown = locations.prefix(10).joined(separator: ", ")
        return locations.count > 10 ? "\(shown) and \(locations.count - 10) more" : shown
    }

    /// The quoted id under `key` when `value` is an object with a non-empty string there; the
    /// object's position names it otherwise.
    private static func label(of value: JSONValue, key: String) -> String? {
        guard case .object(let members) = value,
            case .string(let id)? = members.first(where: { $0.key == key })?.value, !id.isEmpty
        else { return nil }
        return quoted(id)
    }
}
