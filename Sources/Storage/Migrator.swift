import Foundation
import Logging

/// Applies `migrations/NNN_name.sql` in order, each in its own transaction, and records them in
/// `schema_migrations`. A session advisory lock makes concurrent instances take turns, so each
/// file is applied once. An applied file whose bytes changed is refused: history is not rewritten.
public struct Migrator: Sendable {
    public struct Migration: Sendable, Equatable {
        public let version: Int
        public let name: String
        public let sql: String
        public let checksum: String
    }

    public let directory: String
    private let logger: Logger
    /// An arbitrary constant naming this service's migration lock.
    private static let lockKey = 0x4556_4E54_4D49_47  // "EVNTMIG"

    public init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// The migration files, sorted by version. Throws on a bad name or a duplicate version.
    public func migrations() throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError(kind: .query, sqlState: nil, message: "cannot read migrations directory \(directory): \(error)")
        }
        var found: [Int: Migration] = [:]
        for name in names where name.hasSuffix(".sql") {
            let digits = name.prefix { $0.isNumber }
            guard !digits.isEmpty, let version = Int(digits), name.dropFirst(digits.count).first == "_" else {
                throw PostgresError(kind: .query, sqlState: nil, message: "\(directory)/\(name): migration files are named NNN_description.sql")
            }
            if let existing = found[version] {
                throw PostgresError(kind: .query, sqlState: nil, message: "\(directory): \(existing.name) and \(name) share version \(version)")
            }
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)") else {
                throw PostgresError(kind: .query, sqlState: nil, message: "cannot read \(directory)/\(name)")
            }
            found[version] = Migration(
                version: version, name: name, sql: String(decoding: data, as: UTF8.self),
                checksum: Self.checksum(data))
        }
        return found.values.sorted { $0.version < $1.version }
    }

    /// Applies what is pending; returns the versions applied.
    @discardableResult
    public func migrate(on connection: PostgresConnection) throws -> [Int] {
        let files = try migrations()
        try connection.execute("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INT PRIMARY KEY,
                name       TEXT NOT NULL,
                checksum   TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """)
        let applied = try appliedChecksums(on: connection)
        try verify(files, against: applied)
        var done: [Int] = []
        for migration in files where applied[migration.version] == nil {
            do {
                try connection.execute("BEGIN")
                try connection.execute(migration.sql)
                try connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)",
                    [.text(String(migration.version)), .text(migration.name), .text(migration.checksum)])
                try connection.execute("COMMIT")
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw PostgresError(
                    kind: .query, sqlState: (error as? PostgresError)?.sqlState,
                    message: "migration \(migration.name) failed: \(error)")
            }
            logger.info("migration applied", metadata: ["file": "\(migration.name)"])
            done.append(migration.version)
        }
        return done
    }

    /// The versions not applied yet (the table may not exist: then all are pending).
    public func pending(on connection: PostgresConnection) throws -> [Int] {
        let files = try migrations()
        let exists = try connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")[0, 0] == "t"
        let applied = exists ? try appliedChecksums(on: connection) : [:]
        try verify(files, against: applied)
        return files.map(\.version).filter { applied[$0] == nil }
    }

    private func appliedChecksums(on connection: PostgresConnection) throws -> [Int: String] {
        var applied: [Int: String] = [:]
        for row in try connection.execute("SELECT version, checksum FROM schema_migrations").rows {
            if let version = row[0].flatMap({ Int($0) }) { applied[version] = row[1] ?? "" }
        }
        return applied
    }

    private func verify(_ files: [Migration], against applied: [Int: String]) throws {
        for migration in files {
            if let recorded = applied[migration.version], recorded != migration.checksum {
                throw PostgresError(
                    kind: .query, sqlState: nil,
                    message: "\(directory)/\(migration.name) changed after it was applied (checksum \(recorded) → \(migration.checksum)); add a new migration instead")
            }
        }
    }

    /// FNV-1a 64 of the file's bytes, as 16 hex digits.
    static func checksum(_ data: Data) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
