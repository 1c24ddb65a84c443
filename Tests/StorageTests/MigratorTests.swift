import Foundation
import ProgressStore
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
            let recorded = try connection.execute("SELECT version, name, checksum, applied_at IS NOT NULL FROM event_handler_migrations ORDER BY version").rows
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
            #expect(try connection.execute("SELECT version FROM event_handler_migrations").rows == [["1"]])
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
            #expect(try server.psql("SELECT count(*) FROM event_handler_migrations", database: database) == "2")
        }
    }

    @Test func theBuiltInMigrationsAreTheFolder() throws {
        // Fails after a change to migrations/ until `make migrations-bundle` is run.
        let folder = try Migrator(directory: PostgresServer.repositoryRoot + "/migrations", logger: testLogger).migrations()
        let builtIn = try Migrator(logger: testLogger).migrations()
        #expect(builtIn.map(\.name) == folder.map(\.name))
        #expect(builtIn.map(\.checksum) == folder.map(\.checksum), "run `make migrations-bundle`")
        #expect(builtIn.filter { $0.scope == "user_goal_progress" }.map(\.version) == [1, 2])
    }

    /// The REST service migrated first: our migrations add nothing equivalent to what is there,
    /// never touch golang-migrate's table, and add what is missing (our partial index, the
    /// constraints the REST service does not have).
    @Test func onTheRestServicesSchemaNothingEquivalentIsAddedTwice() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            _ = try server.psql(RestServiceSchema.all, database: database)
            let indexesBefore = try server.query(RestServiceSchema.indexDefinitionsQuery, database: database)
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            let migrator = Migrator(logger: testLogger)
            #expect(try migrator.pending(on: connection) == [1, 2, 3, 4, 5, 6, 7])
            #expect(try migrator.migrate(on: connection) == [1, 2, 3, 4, 5, 6, 7])

            #expect(try server.query("SELECT version, dirty FROM schema_migrations", database: database) == [["2", "f"]])
            let indexes = try server.query(RestServiceSchema.indexDefinitionsQuery, database: database)
            // Every index the REST service made is still there, the one we would have made under
            // another name (user_id, challenge_id) is not duplicated, and ours is added.
            #expect(Set(indexesBefore.map { $0[0] }).isSubset(of: Set(indexes.map { $0[0] })))
            let added = indexes.filter { index in !indexesBefore.contains { $0[0] == index[0] } }
            #expect(added.map { $0[0] } == ["idx_completed_unclaimed"])
            #expect(added.allSatisfy { index in !indexesBefore.contains { $0[1] == index[1] } }, "\(added) duplicates one of \(indexesBefore)")

            let constraints = try server.query(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'user_goal_progress'::regclass AND contype = 'c' ORDER BY 1",
                database: database
            ).map { $0[0] ?? "" }
            // check_status has check_status_valid's definition; the claimed/completed rules are
            // different conditions from the REST service's and are added beside it.
            #expect(constraints == [
                "check_baseline_non_negative", "check_claimed_implies_completed", "check_claimed_requires_completed_at",
                "check_completed_requires_completed_at", "check_progress_non_negative", "check_status",
            ])
            #expect(try migrator.migrate(on: connection) == [])
        }
    }

    /// MIGRATE_PROGRESS_TABLE=false: our own tables only, so the REST service's CREATE TABLE
    /// (without IF NOT EXISTS) still succeeds when it starts afterwards.
    @Test func leavingTheProgressTableToTheRestService() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            let migrator = Migrator(externalTables: ["user_goal_progress"], logger: testLogger)
            #expect(try migrator.migrate(on: connection) == [3, 4, 5, 6, 7])
            #expect(try migrator.pending(on: connection) == [])
            #expect(try ProgressWriter.unreadiness(on: connection) == "table user_goal_progress does not exist yet")
            _ = try server.psql(RestServiceSchema.migration001, database: database)
            #expect(try ProgressWriter.unreadiness(on: connection) == "table user_goal_progress lacks the columns baseline_value")
            _ = try server.psql(RestServiceSchema.addBaseline + RestServiceSchema.bookkeeping, database: database)
            #expect(try ProgressWriter.unreadiness(on: connection) == nil)
            #expect(try migrator.migrate(on: connection) == [])
        }
    }

    /// A database migrated by an earlier version of this service keeps working: its
    /// bookkeeping moves out of golang-migrate's table name, and the records of the files
    /// rewritten since (001, 002) are updated instead of refused.
    @Test func ourFormerBookkeepingIsAdopted() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            let migrator = Migrator(logger: testLogger)
            try migrator.migrate(on: connection)
            try connection.execute("ALTER TABLE event_handler_migrations RENAME TO schema_migrations")
            try connection.execute("UPDATE schema_migrations SET checksum = '50c1da16d7bf88b7' WHERE version = 1")
            try connection.execute("UPDATE schema_migrations SET checksum = '520b1ab3545f3f1d' WHERE version = 2")
            #expect(try migrator.pending(on: connection) == [])
            #expect(try migrator.migrate(on: connection) == [])
            #expect(try server.psql("SELECT to_regclass('schema_migrations') IS NULL", database: database) == "t")
            let current = try migrator.migrations().prefix(2).map(\.checksum)
            #expect(try server.query("SELECT checksum FROM event_handler_migrations WHERE version <= 2 ORDER BY version", database: database)
                .map { $0[0] ?? "" } == Array(current))
            // Any other earlier text is still refused.
            try connection.execute("UPDATE event_handler_migrations SET checksum = '0000000000000000' WHERE version = 1")
            #expect(throws: MigrationError.self) { try migrator.migrate(on: connection) }
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
