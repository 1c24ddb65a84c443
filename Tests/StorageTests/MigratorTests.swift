import Foundation
import Storage
import Testing
import TestSupport

@Suite("Migrator against a real PostgreSQL")
struct MigratorTests {
    /// Touched only on test threads: starting it blocks.
    var server: PostgresServer { .shared }

    /// A temporary migrations directory holding `files` (name → SQL).
    private func directory(_ files: [String: String]) throws -> String {
        let path = NSTemporaryDirectory() + "migrations-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, sql) in files {
            try sql.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
        return path
    }

    private static let threeFiles = [
        "010_add_column.sql": "ALTER TABLE notes ADD COLUMN tag text NOT NULL DEFAULT 'none';",
        "001_create.sql": "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);",
        "002_seed.sql": "INSERT INTO notes VALUES (1, 'first');\nINSERT INTO notes VALUES (2, 'second');",
        "README.md": "not a migration",
    ]

    @Test func appliesFilesInOrderRecordsThemAndThenHasNothingToDo() async throws {
        let path = try directory(Self.threeFiles)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let migrator = Migrator(directory: path, logger: testLogger)
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            #expect(try migrator.pending(on: connection) == [1, 2, 10])
            #expect(try migrator.migrate(on: connection) == [1, 2, 10])
            #expect(try migrator.pending(on: connection) == [])
            let recorded = try connection.execute("SELECT version, name, checksum, applied_at IS NOT NULL FROM schema_migrations ORDER BY version").rows
            #expect(recorded.map { $0[0] } == ["1", "2", "10"])
            #expect(recorded.map { $0[1] } == ["001_create.sql", "002_seed.sql", "010_add_column.sql"])
            #expect(recorded.allSatisfy { ($0[2]?.count ?? 0) == 16 && $0[3] == "t" })
            #expect(try connection.execute("SELECT id, body, tag FROM notes ORDER BY id").rows == [["1", "first", "none"], ["2", "second", "none"]])

            #expect(try migrator.migrate(on: connection) == [])
            #expect(try connection.execute("SELECT count(*) FROM notes")[0, 0] == "2")

            // A new file is the only one applied next time.
            try "UPDATE notes SET tag = 'later';".write(toFile: path + "/011_later.sql", atomically: true, encoding: .utf8)
            #expect(try migrator.pending(on: connection) == [11])
            #expect(try migrator.migrate(on: connection) == [11])
        }
    }

    @Test func aChangedAppliedFileIsRefused() async throws {
        let path = try directory(Self.threeFiles)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let migrator = Migrator(directory: path, logger: testLogger)
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            try migrator.migrate(on: connection)
            try "INSERT INTO notes VALUES (1, 'first');  -- edited".write(
                toFile: path + "/002_seed.sql", atomically: true, encoding: .utf8)
            let error = #expect(throws: MigrationError.self) { try migrator.migrate(on: connection) }
            #expect(error?.file.hasSuffix("002_seed.sql") == true)
            #expect("\(error.map { "\($0)" } ?? "")".contains("changed after it was applied"))
            #expect(throws: MigrationError.self) { try migrator.pending(on: connection) }
        }
    }

    @Test func badNamesAndDuplicateVersionsAreRefused() throws {
        let badName = try directory(["001_ok.sql": "SELECT 1;", "two.sql": "SELECT 2;"])
        let duplicate = try directory(["001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 1;"])
        let noDescription = try directory(["003_.sql": "SELECT 1;"])
        defer {
            for path in [badName, duplicate, noDescription] { try? FileManager.default.removeItem(atPath: path) }
        }
        let bad = #expect(throws: MigrationError.self) { try Migrator(directory: badName, logger: testLogger).migrations() }
        #expect(bad?.file.hasSuffix("two.sql") == true)
        let dup = #expect(throws: MigrationError.self) { try Migrator(directory: duplicate, logger: testLogger).migrations() }
        #expect(dup.map { "\($0)" }?.contains("001_a.sql") == true)
        #expect(dup.map { "\($0)" }?.contains("1_b.sql") == true)
        #expect(throws: MigrationError.self) { try Migrator(directory: noDescription, logger: testLogger).migrations() }
        #expect(throws: MigrationError.self) { try Migrator(directory: "/nonexistent/migrations", logger: testLogger).migrations() }
    }

    @Test func aFailingMigrationIsRolledBackAndNamed() async throws {
        let path = try directory([
            "001_create.sql": "CREATE TABLE a (id int);",
            "002_broken.sql": "CREATE TABLE b (id int);\nINSERT INTO nowhere VALUES (1);",
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let migrator = Migrator(directory: path, logger: testLogger)
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            let error = #expect(throws: MigrationError.self) { try migrator.migrate(on: connection) }
            #expect(error?.file.hasSuffix("002_broken.sql") == true)
            #expect(try connection.execute("SELECT version FROM schema_migrations").rows == [["1"]])
            #expect(try connection.execute("SELECT to_regclass('b') IS NULL")[0, 0] == "t")
            #expect(!connection.isInTransaction)
            #expect(try migrator.pending(on: connection) == [2])
        }
    }

    @Test func concurrentMigrationsApplyOnce() async throws {
        let path = try directory([
            // The sleep holds the lock long enough for the second instance to queue behind it.
            "001_create.sql": "CREATE TABLE runs (n int); SELECT pg_sleep(0.3);",
            "002_count.sql": "INSERT INTO runs VALUES (1);",
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let migrator = Migrator(directory: path, logger: testLogger)
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let settings = server.settings(database: database)
            let start = DispatchSemaphore(value: 0)
            let instances = (0..<2).map { index in
                TestThread("migrator-\(index)") {
                    let connection = try PostgresConnection(settings: settings)
                    defer { connection.close() }
                    start.wait()
                    return try migrator.migrate(on: connection)
                }
            }
            start.signal()
            start.signal()
            let results = try instances.map { try $0.join() }
            #expect(results.sorted { $0.count < $1.count } == [[], [1, 2]])
            #expect(try server.psql("SELECT count(*) FROM runs", database: database) == "1")
            #expect(try server.psql("SELECT count(*) FROM schema_migrations", database: database) == "2")
        }
    }

    @Test func theRepositoryMigrationsApply() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let applied = try server.migrate(database: database)
            #expect(!applied.isEmpty)
            #expect(try server.psql("SELECT to_regclass('user_goal_progress') IS NOT NULL", database: database) == "t")
            #expect(try server.migrate(database: database) == [])
        }
    }
}
