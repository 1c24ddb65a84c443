import Foundation

/// The goals of `challenges.json`, indexed for the per-event hot path. Immutable after loading.
///
/// Cost: `goals(forStatCode:)`, `loginGoals` and `goal(id:)` are one dictionary lookup or a stored
/// array; the returned arrays share storage with the catalog (no copy, no allocation).
public struct Catalog: Sendable {
    /// Every goal, in file order; `goals[i].index == i`.
    public let goals: [Goal]
    /// Indices of the goals that login events move, ascending.
    public let loginGoals: [Int32]
    private let statisticGoals: [String: [Int32]]
    private let goalIndices: [String: Int32]

    /// Builds the indexes over `goals`, for tests and benchmarks that make a catalog in code.
    ///
    /// It does not validate the goals against the file rules (use `parse` for that); it only
    /// requires what the indexes depend on: `goals[i].index == i` and unique `goalId`s (a
    /// violation traps). Statistic goals without a `statCode` are unreachable by events.
    public init(goals: [Goal]) {
        var loginGoals: [Int32] = []
        var statisticGoals: [String: [Int32]] = [:]
        var goalIndices: [String: Int32] = [:]
        goalIndices.reserveCapacity(goals.count)
        for (position, goal) in goals.enumerated() {
            precondition(Int(goal.index) == position, "goal \"\(goal.goalId)\" has index \(goal.index) at position \(position)")
            let previous = goalIndices.updateValue(goal.index, forKey: goal.goalId)
            precondition(previous == nil, "goalId \"\(goal.goalId)\" appears twice")
            switch goal.eventSource {
            case .login:
                loginGoals.append(goal.index)
            case .statistic:
                if let statCode = goal.statCode { statisticGoals[statCode, default: []].append(goal.index) }
            }
        }
        self.goals = goals
        self.loginGoals = loginGoals
        self.statisticGoals = statisticGoals
        self.goalIndices = goalIndices
    }

    /// Indices of the statistic goals that follow `statCode`, ascending; `[]` if none.
    /// One hash lookup: this is on the per-event hot path.
    public func goals(forStatCode statCode: String) -> [Int32] {
        statisticGoals[statCode] ?? []
    }

    /// The goal with `goalId == id`, or nil.
    public func goal(id: String) -> Goal? {
        guard let index = goalIndices[id] else { return nil }
        return goals[Int(index)]
    }

    /// Reads and validates the challenges file at `path`.
    ///
    /// Throws `CatalogError` naming `path` when the file cannot be read, is not JSON, or breaks
    /// any rule (all problems together). This is the module's only I/O.
    public static func load(path: String) throws(CatalogError) -> LoadedCatalog {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CatalogError(file: path, problems: ["\(path): cannot read the file: \(readFailure(error, path: path))"])
        }
        return try parse(data, fileName: path)
    }

    /// Validates a challenges document. `fileName` only names the file in messages.
    public static func parse(_ data: Data, fileName: String) throws(CatalogError) -> LoadedCatalog {
        try parse(Array(data), fileName: fileName)
    }

    /// Validates a challenges document. `fileName` only names the file in messages.
    public static func parse(_ bytes: [UInt8], fileName: String) throws(CatalogError) -> LoadedCatalog {
        try CatalogLoader.load(bytes, fileName: fileName)
    }

    /// Why a read failed, in a few words; Foundation's own message varies by platform.
    private static func readFailure(_ error: any Error, path: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) { return "no such file" }
        if isDirectory.boolValue { return "it is a directory" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return error.localizedDescription
    }
}
