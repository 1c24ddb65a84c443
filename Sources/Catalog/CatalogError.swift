/// Why a challenges file was refused: every problem found, not just the first.
///
/// Each problem is one self-contained line that starts with the file name and names the
/// challenge or goal and the field, e.g.
/// `challenges.json: goal "win-10" (challenge "weekly"): requirement.targetValue must be > 0, got 0`.
/// An unreadable file or invalid JSON is a single problem.
public struct CatalogError: Error, CustomStringConvertible, Sendable {
    /// The path or name the file was loaded under.
    public let file: String
    /// One line per problem, in file order (cross-references last).
    public let problems: [String]

    public init(file: String, problems: [String]) {
        self.file = file
        self.problems = problems
    }

    /// The problems, one per line.
    public var description: String {
        problems.joined(separator: "\n")
    }
}
