import Foundation
import ServiceTestSupport
import Storage
import TestSupport
import Testing

/// Issue 20: the service in a database the incumbent's REST service migrates (golang-migrate's
/// `schema_migrations`, its table, constraints and indexes), in both start orders, and the
/// built-in migrations run from a directory that holds none.
@Suite("Drop-in beside the REST service", .serialized)
struct DropInTests {
    /// Sends a few logins and waits until the table holds exactly what they should produce.
    static func expectWrites(_ harness: ServiceHarness) async throws {
        let catalog = TestCatalog()
        var model = ExpectedState(catalog: catalog)
        let events = (0..<5).map { TestEvent.login(id: "drop-in-\($0)", user: "user-\($0 % 3)") }
        for event in events { model.apply(event) }
        try await harness.withClients { login, stat in
            for event in events { try await event.send(login: login, stat: stat) }
        }
        try await DeduplicationTests.waitForTable(harness, model)
        try DeduplicationTests.compare(harness, model)
    }

    @Test("REST service first: migrate and serve add no equivalent index and leave golang-migrate's row", .timeLimit(.minutes(3)))
    func restServiceFirst() async throws {
        let server = PostgresServer.shared
        var before: [[String?]] = []
        let harness = try ServiceHarness(
            server: server, catalogJSON: TestCatalog().json,
            beforeMigrate: { connection in
                try connection.execute(RestServiceSchema.all)
                before = try connection.execute(RestServiceSchema.indexDefinitionsQuery).rows
            })
        try await Self.expectWrites(harness)

        #expect(try server.query("SELECT version, dirty FROM schema_migrations", database: harness.database) == [["2", "f"]])
        let after = try server.query(RestServiceSchema.indexDefinitionsQuery, database: harness.database)
        let added = after.filter { index in !before.contains { $0[0] == index[0] } }
        #expect(added.map { $0[0] } == ["idx_completed_unclaimed"])
        #expect(added.allSatisfy { index in !before.contains { $0[1] == index[1] } })
        // Every migration is recorded, the two of the progress table's included (applied, or
        // found already in effect).
        let files = try FileManager.default.contentsOfDirectory(atPath: PostgresServer.repositoryRoot + "/migrations")
            .filter { $0.hasSuffix(".sql") }
        #expect(try server.query("SELECT count(*) FROM event_handler_migrations", database: harness.database) == [["\(files.count)"]])
        #expect(try harness.stop() == 0)
    }

    @Test("ours first with MIGRATE_PROGRESS_TABLE=false: not ready until the REST service creates the table", .timeLimit(.minutes(3)))
    func oursFirstLeavingTheTable() async throws {
        let server = PostgresServer.shared
        let harness = try ServiceHarness(
            server: server, catalogJSON: TestCatalog().json, environment: ["MIGRATE_PROGRESS_TABLE": "false"],
            waitForReady: false)
        try harness.process.waitForLog("waiting for the REST service to create the progress table")
        let answer = try await harness.http.waitFor("/readyz") { $0.status == 503 && $0.body.contains("waiting for table user_goal_progress") }
        #expect(answer.body.contains("MIGRATE_PROGRESS_TABLE=false"))
        #expect(try server.psql("SELECT to_regclass('user_goal_progress') IS NULL", database: harness.database) == "t")

        // The REST service starts: its CREATE TABLE has no IF NOT EXISTS, and succeeds.
        _ = try server.psql(RestServiceSchema.all, database: harness.database)
        try harness.process.waitForLog("] ready", timeout: .seconds(30))
        try await harness.http.waitFor("/readyz") { $0.status == 200 }
        try await Self.expectWrites(harness)
        #expect(try harness.stop() == 0)
    }

    @Test("event-handler migrate from an empty directory, no MIGRATIONS_PATH, applies every migration")
    func migrateFromAnywhere() throws {
        let server = PostgresServer.shared
        let database = try server.makeDatabase()
        let empty = NSTemporaryDirectory() + "empty-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let migrate = try ServiceProcess(
            arguments: ["migrate"],
            environment: ["DB_HOST": "127.0.0.1", "DB_PORT": String(server.port), "DB_NAME": database, "DB_USER": "postgres"],
            directory: empty)
        #expect(try migrate.waitForExit(timeout: .seconds(60)) == 0, "\(migrate.log)")
        let files = try FileManager.default.contentsOfDirectory(atPath: PostgresServer.repositoryRoot + "/migrations")
            .filter { $0.hasSuffix(".sql") }
        #expect(try server.query("SELECT count(*) FROM event_handler_migrations", database: database) == [["\(files.count)"]])
        #expect(migrate.log.contains("the migrations built into the binary"))
    }
}
