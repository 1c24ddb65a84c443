import Foundation
import Storage
import Testing
import TestSupport

@Suite("The test harness's PostgreSQL")
struct PostgresServerTests {
    @Test func psqlReturnsRowsAndThrowsOnErrors() async throws {
        try await onThread { () throws in
            let server = PostgresServer.shared
            let database = try server.makeDatabase(name: "named_\(UUID().uuidString.prefix(8).lowercased())")
            #expect(try server.psql("SELECT current_database()", database: database) == database)
            #expect(try server.psql("SELECT 1 UNION ALL SELECT 2") == "1\n2")
            #expect(throws: PostgresServerError.self) { try server.psql("SELECT * FROM no_such_table") }
            #expect(try server.psql("SHOW fsync") == "off")
        }
    }

    @Test func aKilledServerRestartsWithItsCommittedData() async throws {
        try await onThread {
            // synchronous_commit on: a commit is in the WAL (the OS keeps it) before psql returns.
            // The defaults' `off` could lose it to a crash, by design.
            let server = try PostgresServer(extraOptions: "-c shared_buffers=64MB -c fsync=off -c synchronous_commit=on")
            defer { server.shutdown() }
            try server.psql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7);")
            let connection = try PostgresConnection(settings: server.connectionSettings)
            defer { connection.close() }
            try server.kill()
            #expect(!server.isRunning)
            #expect(throws: PostgresError.self) { try connection.execute("SELECT 1") }
            try server.start()
            #expect(server.isRunning)
            #expect(try server.psql("SELECT n FROM kept") == "7")
            server.shutdown()
            #expect(!FileManager.default.fileExists(atPath: server.directory))
            #expect(throws: PostgresServerError.self) { try server.start() }
        }
    }
}
