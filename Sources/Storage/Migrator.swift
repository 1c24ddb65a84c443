import Foundation
import Logging

/// Applies `NNN_description.sql` migrations in version order, each in its own transaction, and
/// records them in `event_handler_migrations`.
///
/// - The migrations come from the binary (`migrations/` as it was at build time) unless a
///   directory is named (`MIGRATIONS_PATH`), so `event-handler migrate` works from anywhere.
/// - The bookkeeping table's name is ours alone: `schema_migrations` belongs to golang-migrate,
///   which the incumbent's REST service runs over the same database at each of its starts, and
///   is never read or written here. A database that holds our bookkeeping under that old name
///   (our columns: `version, name, checksum, applied_at`) has it renamed on the first migrate.
/// - A file whose first lines say `-- scope: <table>` migrates a table another tool may own;
///   with that table in `externalTables`, the file is neither applied nor pending.
/// - A session advisory lock makes instances that start together take turns: the second finds
///   the first one's work recorded and applies nothing.
/// - A recorded file whose bytes changed is refused (history is not rewritten: add a new file),
///   except for the rewrites listed in `formerChecksums`, whose record is brought up to date.
///
/// Blocking, like the connection.
public struct Migrator: Sendable {
    /// Where the migration files come from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// The files compiled into the binary.
        case bundled
        /// A directory of `NNN_description.sql` files (other files are ignored).
        case directory(String)

        public var description: String {
            switch self {
            case .bundled: "the migrations built into the binary"
            case .directory(let path): path
            }
        }
    }

    public let source: Source
    /// Tables this service must not migrate (their `-- scope:` files are skipped).
    public let externalTables: Set<String>
    private let logger: Logger

    /// Our bookkeeping table.
    public static let table = "event_handler_migrations"
    /// The name our bookkeeping had before golang-migrate's table was found to share it.
    static let formerTable = "schema_migrations"

    /// The advisory lock key (an arbitrary constant: "EVNTMIG" in ASCII).
    static let lockKey: Int64 = 0x45_564E_544D_4947

    /// Checksums of earlier texts of a file that databases may have recorded, accepted as the
    /// same migration. 001 became idempotent (constraints and indexes compared by definition)
    /// and 001 and 002 gained their `-- scope:` line; what they do on a table this service
    /// created is unchanged.
    static let formerChecksums: [Int: Set<String>] = [
        1: ["50c1da16d7bf88b7"],
        2: ["520b1ab3545f3f1d"],
    ]

    static let createTableSQL = """
        CREATE TABLE IF NOT EXISTS \(table) (
            version    INT PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """

    public init(source: Source = .bundled, externalTables: Set<String> = [], logger: Logger) {
        self.source = source
        self.externalTables = externalTables
        self.logger = logger
    }

    public init(directory: String, logger: Logger) {
        self.init(source: .directory(directory), logger: logger)
    }

    /// Every migration of the source, by version (including those scoped to external tables).
    /// Throws `MigrationError` for an unreadable directory or file, a `.sql` file not named
    /// `NNN_description.sql`, or two files with one version.
    public func migrations() throws -> [Migration] {
        let files: [(name: String, bytes: [UInt8])]
        switch source {
        case .bundled:
            files = Self.bundled.map { ($0.name, Array($0.sql.utf8)) }
        case .directory(let directory):
            files = try Self.read(directory: directory)
        }
        var byVersion: [Int: Migration] = [:]
        for file in files.sorted(by: { $0.name < $1.name }) {
            guard let version = Self.version(of: file.name) else {
                throw MigrationError(file: path(file.name), message: "migration files are named NNN_description.sql")
            }
            if let other = byVersion[version] {
                throw MigrationError(file: path(file.name), message: "version \(version) is also \(other.name)")
            }
            byVersion[version] = Migration(
                version: version, name: file.name, sql: String(decoding: file.bytes, as: UTF8.self),
                checksum: Migration.checksum(of: file.bytes))
        }
        return byVersion.values.sorted { $0.version < $1.version }
    }

    /// The migrations this instance applies: all but those scoped to an external table.
    public func ownMigrations() throws -> [Migration] {
        try migrations().filter { migration in migration.scope.map { !externalTables.contains($0) } ?? true }
    }

    /// Applies the pending files under the advisory lock and returns their versions (empty when
    /// none was pending). Throws `MigrationError` naming the file for a changed checksum or a
    /// failed migration (that one is rolled back; earlier ones stay applied), and `PostgresError`
    /// when the database cannot be reached.
    @discardableResult
    public func migrate(on connection: PostgresConnection) throws -> [Int] {
        let files = try ownMigrations()
        try connection.execute("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try adoptFormerTable(on: connection)
        try connection.execute(Self.createTableSQL)
        var applied = try recordedChecksums(on: connection, table: Self.table)
        try updateRewrittenRecords(files, recorded: &applied, on: connection)
        try verify(files, against: applied)
        var done: [Int] = []
        for migration in files where applied[migration.version] == nil {
            try apply(migration, on: connection)
            logger.info("migration applied", metadata: ["file": "\(migration.name)", "version": "\(migration.version)"])
            done.append(migration.version)
        }
        return done
    }

    /// The versions not applied yet (all of them when nothing was recorded). Writes nothing.
    /// Throws like `migrate` when an applied file changed.
    public func pending(on connection: PostgresConnection) throws -> [Int] {
        let files = try ownMigrations()
        let table: String? =
            if try exists(Self.table, on: connection) { Self.table }
            else if try holdsOurBookkeeping(Self.formerTable, on: connection) { Self.formerTable }
            else { nil }
        var applied = try table.map { try recordedChecksums(on: connection, table: $0) } ?? [:]
        for file in files {
            if let recorded = applied[file.version], Self.formerChecksums[file.version]?.contains(recorded) == true {
                applied[file.version] = file.checksum
            }
        }
        try verify(files, against: applied)
        return files.map(\.version).filter { applied[$0] == nil }
    }

    // MARK: - Internals

    /// Renames our bookkeeping from `schema_migrations` when that table has our columns and the
    /// new one does not exist yet. golang-migrate's (`version bigint, dirty boolean`) is left be.
    private func adoptFormerTable(on connection: PostgresConnection) throws {
        guard try !exists(Self.table, on: connection), try holdsOurBookkeeping(Self.formerTable, on: connection) else {
            return
        }
        try connection.execute("ALTER TABLE \(Self.formerTable) RENAME TO \(Self.table)")
        logger.notice(
            "migration bookkeeping renamed: schema_migrations is golang-migrate's name (the REST service's)",
            metadata: ["from": "\(Self.formerTable)", "to": "\(Self.table)"])
    }

    private func exists(_ table: String, on connection: PostgresConnection) throws -> Bool {
        try connection.execute("SELECT to_regclass($1) IS NOT NULL", [.text(table)])[0, 0] == "t"
    }

    /// Whether `table` exists with our bookkeeping's `checksum` column.
    private func holdsOurBookkeeping(_ table: String, on connection: PostgresConnection) throws -> Bool {
        try connection.execute(
            """
            SELECT EXISTS (SELECT 1 FROM pg_attribute
                           WHERE attrelid = to_regclass($1) AND attname = 'checksum' AND NOT attisdropped)
            """, [.text(table)])[0, 0] == "t"
    }

    /// Records written for an earlier text of a rewritten file get the current checksum.
    private func updateRewrittenRecords(
        _ files: [Migration], recorded: inout [Int: String], on connection: PostgresConnection
    ) throws {
        for file in files {
            guard let checksum = recorded[file.version], checksum != file.checksum,
                Self.formerChecksums[file.version]?.contains(checksum) == true
            else { continue }
            try connection.execute(
                "UPDATE \(Self.table) SET checksum = $1 WHERE version = $2::int",
                [.text(file.checksum), .text(String(file.version))])
            recorded[file.version] = file.checksum
            logger.info(
                "migration record updated to the file's current text (same effect)",
                metadata: ["file": "\(file.name)", "from": "\(checksum)", "to": "\(file.checksum)"])
        }
    }

    private func apply(_ migration: Migration, on connection: PostgresConnection) throws {
        do {
            try connection.execute("BEGIN")
            try connection.execute(migration.sql)
            try connection.execute(
                "INSERT INTO \(Self.table) (version, name, checksum) VALUES ($1::int, $2, $3)",
                [.text(String(migration.version)), .text(migration.name), .text(migration.checksum)])
            try connection.execute("COMMIT")
        } catch let error as PostgresError where error.isConnectionFailure {
            throw error  // nothing was committed; the caller may retry on a new connection
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw MigrationError(file: path(migration.name), message: "failed and was rolled back: \(error)")
        }
    }

    private func recordedChecksums(on connection: PostgresConnection, table: String) throws -> [Int: String] {
        var recorded: [Int: String] = [:]
        for row in try connection.execute("SELECT version, checksum FROM \(table)").rows {
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

    private static func read(directory: String) throws -> [(name: String, bytes: [UInt8])] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError(file: directory, message: "cannot read the migrations directory (\(error.localizedDescription))")
        }
        return try names.filter { $0.hasSuffix(".sql") }.map { name in
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                throw MigrationError(file: path, message: "cannot read the file")
            }
            return (name, Array(data))
        }
    }

    private func path(_ name: String) -> String {
        switch source {
        case .bundled: "(built in) " + name
        case .directory(let directory): directory.hasSuffix("/") ? directory + name : directory + "/" + name
        }
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
