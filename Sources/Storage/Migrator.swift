import Foundation
import Logging

/// Applies `NNN_description.sql` files in version order, each in its own transaction, and
/// records them in `schema_migrations`.
///
/// A session advisory lock makes instances that start together take turns: the second finds the
/// first one's work recorded and applies nothing. A recorded file whose bytes changed is
/// refused (history is not rewritten: add a new file instead). Blocking, like the connection.
public struct Migrator: Sendable {
    public let directory: String
    private let logger: Logger

    /// The advisory lock key (an arbitrary constant: "EVNTMIG" in ASCII).
    static let lockKey: Int64 = 0x45_564E_544D_4947

    static let createTableSQL = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INT PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """

    public init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// The migration files, by version. Throws `MigrationError` for an unreadable directory or
    /// file, a `.sql` file not named `NNN_description.sql`, or two files with one version.
    /// Files not ending in `.sql` are ignored.
    public func migrations() throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError(file: directory, message: "cannot read the migrations directory (\(error.localizedDescription))")
        }
        var byVersion: [Int: Migration] = [:]
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let version = Self.version(of: name) else {
                throw MigrationError(file: path(name), message: "migration files are named NNN_description.sql")
            }
            if let other = byVersion[version] {
                throw MigrationError(file: path(name), message: "version \(version) is also \(other.name)")
            }
            guard let data = FileManager.default.contents(atPath: path(name)) else {
                throw MigrationError(file: path(name), message: "cannot read the file")
            }
            byVersion[version] = Migration(
                version: version, name: name, sql: String(decoding: data, as: UTF8.self),
                checksum: Migration.checksum(of: data))
        }
        return byVersion.values.sorted { $0.version < $1.version }
    }

    /// Applies the pending files under the advisory lock and returns their versions (empty when
    /// none was pending). Throws `MigrationError` naming the file for a changed checksum or a
    /// failed migration (that one is rolled back; earlier ones stay applied), and `PostgresError`
    /// when the database cannot be reached.
    @discardableResult
    public func migrate(on connection: PostgresConnection) throws -> [Int] {
        let files = try migrations()
        try connection.execute("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try connection.execute(Self.createTableSQL)
        let applied = try recordedChecksums(on: connection)
        try verify(files, against: applied)
        var done: [Int] = []
        for migration in files where applied[migration.version] == nil {
            try apply(migration, on: connection)
            logger.info("migration applied", metadata: ["file": "\(migration.name)", "version": "\(migration.version)"])
            done.append(migration.version)
        }
        return done
    }

    /// The versions not applied yet (all of them when `schema_migrations` does not exist).
    /// Throws like `migrate` when an applied file changed.
    public func pending(on connection: PostgresConnection) throws -> [Int] {
        let files = try migrations()
        let exists = try connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")[0, 0] == "t"
        let applied = exists ? try recordedChecksums(on: connection) : [:]
        try verify(files, against: applied)
        return files.map(\.version).filter { applied[$0] == nil }
    }

    // MARK: - Internals

    private func apply(_ migration: Migration, on connection: PostgresConnection) throws {
        do {
            try connection.execute("BEGIN")
            try connection.execute(migration.sql)
            try connection.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)",
                [.text(String(migration.version)), .text(migration.name), .text(migration.checksum)])
            try connection.execute("COMMIT")
        } catch let error as PostgresError where error.isConnectionFailure {
            throw error  // nothing was committed; the caller may retry on a new connection
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw MigrationError(file: path(migration.name), message: "failed and was rolled back: \(error)")
        }
    }

    private func recordedChecksums(on connection: PostgresConnection) throws -> [Int: String] {
        var recorded: [Int: String] = [:]
        for row in try connection.execute("SELECT version, checksum FROM schema_migrations").rows {
            if let version = row[0].flatMap({ Int($0) }) { recorded[version] = row[1] ?? "" }
        }
        return recorded
    }

    private func verify(_ files: [Migration], against recorded: [Int: String]) throws {
        for migration in files {
            if let checksum = recorded[migration.version], checksum != migration.checksum {
                throw MigrationError(
                    file: path(migration.name),
                    message: "changed after it was applied (checksum \(checksum), now \(migration.checksum)); add a new migration instead")
            }
        }
    }

    private func path(_ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// NNN of `NNN_description.sql`: ASCII digits, an underscore, a non-empty description.
    private static func version(of name: String) -> Int? {
        let stem = name.dropLast(".sql".count)
        let digits = stem.prefix { $0.isASCII && $0.isNumber }
        let rest = stem.dropFirst(digits.count)
        guard !digits.isEmpty, rest.first == "_", rest.count > 1 else { return nil }
        return Int(digits)
    }
}
