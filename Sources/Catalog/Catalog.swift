import Foundation

/// The goals of `challenges.json`, indexed for the per-event hot path.
public struct Catalog: Sendable {
    /// All goals; `goals[i].index == i`.
    public let goals: [Goal]
    /// Indices of the goals that logins move.
    public let loginGoals: [Int32]
    private let byStatCode: [String: [Int32]]
    private let byID: [String: Int32]

    init(goals: [Goal]) {
        self.goals = goals
        loginGoals = goals.filter { $0.eventSource == .login }.map(\.index)
        var byStatCode: [String: [Int32]] = [:]
        for goal in goals where goal.eventSource == .statistic {
            if let code = goal.statCode { byStatCode[code, default: []].append(goal.index) }
        }
        self.byStatCode = byStatCode
        byID = Dictionary(uniqueKeysWithValues: goals.map { ($0.goalId, $0.index) })
    }

    /// Indices of the statistic goals that follow `statCode` (empty if none). One hash lookup.
    public func goals(forStatCode statCode: String) -> [Int32] {
        byStatCode[statCode] ?? []
    }

    public func goal(id: String) -> Goal? {
        byID[id].map { goals[Int($0)] }
    }

    /// Reads and validates a challenges file.
    public static func load(path: String) throws -> LoadedCatalog {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CatalogError(file: path, problems: ["cannot read the file"])
        }
        return try parse(data, fileName: path)
    }

    /// Validates a challenges document; `fileName` is only used in messages.
    public static func parse(_ data: Data, fileName: String) throws -> LoadedCatalog {
        try CatalogParser(fileName: fileName).parse(data)
    }
}

/// A catalog and the warnings loading it raised (legacy keys).
public struct LoadedCatalog: Sendable {
    public let catalog: Catalog
    public let warnings: [String]
}

/// Why a challenges file was refused: every problem found, each naming the file, the
/// challenge or goal, and the field.
public struct CatalogError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problems: [String]

    public var description: String {
        "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n"
            + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
