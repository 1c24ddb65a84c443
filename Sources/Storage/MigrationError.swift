/// A migrations directory the migrator refuses, or a migration that failed; names the file.
/// (Failures to reach the database stay `PostgresError`s, so callers can retry those.)
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
