import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceTestSupport
import Storage
import TestSupport
import Testing

/// PostgreSQL reached over verified TLS, and served by a role that cannot change the schema:
/// real servers, real handshakes with certificates made here, the real service process.
@Suite("Database security", .serialized)
struct DatabaseSecurityTests {
    // MARK: - TLS

    @Test("DB_SSLMODE=verify-full with DB_SSLROOTCERT: every connection is TLS, the service becomes ready and stores an event", .timeLimit(.minutes(2)))
    func verifiedTLS() async throws {
        let certificates = try TestCertificates.make(name: "pg-ca")
        defer { certificates.remove() }
        let server = try PostgresServer(tls: .init(certificates))
        defer { server.shutdown() }
        let database = try server.makeDatabase()
        let environment = try Self.environment(
            server: server, database: database,
            ["DB_HOST": "localhost", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": certificates.caCertificate])
        let service = try ServiceProcess(environment: environment)
        defer { service.terminate() }
        try service.waitForLog("] ready", timeout: .seconds(30))
        let readyz = try await OperationsClient(port: Int(environment["METRICS_PORT"]!)!).waitFor("/readyz", timeout: .seconds(10)) {
            $0.status == 200
        }
        #expect(readyz.body == "ready\n")

        let catalog = TestCatalog()
        var model = ExpectedState(catalog: catalog)
        let event = TestEvent.login(id: "tls-1", user: "tls-user")
        try await Self.send(event, port: Int(environment["GRPC_PORT"]!)!)
        model.apply(event)
        try await Self.waitForRows(of: "tls-user", count: model.rows.count, server: server, database: database)

        // The pool's connections, seen from the server: all of them encrypted.
        let connections = try server.query(
            """
            SELECT s.ssl, s.version FROM pg_stat_activity AS a JOIN pg_stat_ssl AS s USING (pid)
            WHERE a.datname = '\(database)' AND a.application_name = 'event-handler'
            """)
        #expect(!connections.isEmpty)
        #expect(connections.allSatisfy { $0[0] == "t" && $0[1]?.hasPrefix("TLS") == true }, "\(connections)")
        service.signal(SIGTERM)
        #expect(try service.waitForExit(timeout: .seconds(30)) == 0, "\(service.log.suffix(2_000))")
    }

    @Test("a server certificate from another CA: serve and migrate stop at once, naming the certificate problem", .timeLimit(.minutes(2)))
    func wrongCertificateAuthority() throws {
        let certificates = try TestCertificates.make(name: "pg-ca")
        let stranger = try TestCertificates.make(name: "stranger-ca")
        defer {
            certificates.remove()
            stranger.remove()
        }
        let server = try PostgresServer(tls: .init(certificates))
        defer { server.shutdown() }
        let environment = try Self.environment(
            server: server, database: try server.makeDatabase(),
            ["DB_HOST": "localhost", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": stranger.caCertificate])

        let started = ContinuousClock.now
        let service = try ServiceProcess(environment: environment)
        defer { service.terminate() }
        let status = try service.waitForExit(timeout: .seconds(30))
        #expect(status == 1, "\(service.log)")
        #expect(ContinuousClock.now - started < .seconds(15), "refused at once, not retried as an outage")
        #expect(service.log.contains("cannot start"), "\(service.log)")
        #expect(service.log.contains("certificate verify failed"), "\(service.log)")
        #expect(service.log.contains("DB_SSLROOTCERT"), "\(service.log)")
        #expect(!service.log.contains("] ready"))

        let migrate = try ServiceProcess(arguments: ["migrate"], environment: environment)
        #expect(try migrate.waitForExit(timeout: .seconds(30)) == 2)
        #expect(migrate.log.contains("certificate verify failed"), "\(migrate.log)")
    }

    @Test("a client certificate (DB_SSLCERT, DB_SSLKEY) passes cert authentication; without one the server refuses", .timeLimit(.minutes(2)))
    func clientCertificate() throws {
        let certificates = try TestCertificates.make(name: "pg-ca")
        defer { certificates.remove() }
        // The client certificate's CN is event-bridge: that role must present it, over TLS.
        let server = try PostgresServer(
            tls: .init(certificates, clientCertificates: true),
            hbaRules: ["hostssl all event-bridge 127.0.0.1/32 cert", "host all event-bridge 127.0.0.1/32 reject"])
        defer { server.shutdown() }
        try server.psql(#"CREATE ROLE "event-bridge" LOGIN SUPERUSER"#)
        let tls = ["DB_HOST": "localhost", "DB_USER": "event-bridge", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": certificates.caCertificate]
        let environment = try Self.environment(server: server, database: try server.makeDatabase(), tls)

        let withCertificate = try ServiceProcess(
            arguments: ["migrate"],
            environment: environment.merging(["DB_SSLCERT": certificates.clientCertificate, "DB_SSLKEY": certificates.clientKey]) { $1 })
        #expect(try withCertificate.waitForExit(timeout: .seconds(30)) == 0, "\(withCertificate.log)")
        #expect(withCertificate.log.contains("migrations done"), "\(withCertificate.log)")

        let without = try ServiceProcess(arguments: ["migrate"], environment: environment)
        #expect(try without.waitForExit(timeout: .seconds(30)) == 2)
        #expect(without.log.contains("certificate"), "\(without.log)")
    }

    @Test("a missing certificate, key or password file stops start-up naming its variable", arguments: [
        (["DB_SSLROOTCERT": "/nonexistent/ca.pem"], "DB_SSLROOTCERT"),
        (["DB_SSLCERT": "/nonexistent/client.pem", "DB_SSLKEY": PostgresServer.repositoryRoot + "/Package.swift"], "DB_SSLCERT"),
        (["DB_SSLCERT": PostgresServer.repositoryRoot + "/Package.swift", "DB_SSLKEY": "/nonexistent/client.key"], "DB_SSLKEY"),
        (["DB_SSLCERT": PostgresServer.repositoryRoot + "/Package.swift"], "DB_SSLKEY"),
        (["DB_MIGRATION_USER": "migrator", "DB_MIGRATION_PASSWORD_FILE": "/nonexistent/password"], "DB_MIGRATION_PASSWORD_FILE"),
        (["DB_MIGRATION_PASSWORD_FILE": PostgresServer.repositoryRoot + "/Package.swift"], "DB_MIGRATION_PASSWORD_FILE"),
    ])
    func missingFiles(environment: [String: String], variable: String) throws {
        var env = ["AB_NAMESPACE": "ns", "CONFIG_PATH": PostgresServer.repositoryRoot + "/config/challenges.json"]
        env.merge(environment) { $1 }
        let process = try ServiceProcess(arguments: ["check-config"], environment: env)
        #expect(try process.waitForExit(timeout: .seconds(30)) == 2, "\(process.log)")
        #expect(process.log.contains("configuration error: \(variable)"), "\(process.log)")
    }

    @Test("the TLS files reach libpq's conninfo, quoted; the description shows neither them nor the password")
    func conninfo() {
        let settings = ConnectionSettings(
            host: "db", database: "challenge_db", user: "app", password: "s3cret", sslMode: "verify-full",
            sslRootCert: "/run/secrets/ca.pem", sslCert: "/run/secrets/it's.pem", sslKey: "/run/secrets/client.key")
        #expect(settings.conninfo.contains("sslmode='verify-full'"))
        #expect(settings.conninfo.contains("sslrootcert='/run/secrets/ca.pem'"))
        #expect(settings.conninfo.contains(#"sslcert='/run/secrets/it\'s.pem'"#))
        #expect(settings.conninfo.contains("sslkey='/run/secrets/client.key'"))
        #expect("\(settings)" == "app@db:5432/challenge_db")
        #expect(!ConnectionSettings(database: "d").conninfo.contains("sslrootcert"), "unset: libpq's defaults")
    }

    // MARK: - Roles

    @Test("DB_MIGRATION_USER migrates at start and grants DB_USER; the runtime role serves and cannot run DDL", .timeLimit(.minutes(2)))
    func runtimeRoleCannotRunDDL() async throws {
        let server = PostgresServer.shared
        let database = try server.makeDatabase()
        let roles = try Self.makeRoles(on: server, database: database)
        defer { roles.removeFiles() }
        let environment = try Self.environment(
            server: server, database: database,
            [
                "DB_USER": roles.runtime, "DB_PASSWORD_FILE": roles.runtimePasswordFile,
                "DB_MIGRATION_USER": roles.migrator, "DB_MIGRATION_PASSWORD_FILE": roles.migratorPasswordFile,
            ])
        let service = try ServiceProcess(environment: environment)
        defer { service.terminate() }
        try service.waitForLog("] ready", timeout: .seconds(30))
        #expect(service.log.contains("migrations applied"), "\(service.log)")
        #expect(!service.log.contains("lacks privileges"), "\(service.log)")

        // The migration role owns every table, view and sequence; the service's connections are
        // the runtime role's.
        let owners = try server.query(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')",
            database: database)
        #expect(owners == [[roles.migrator]])
        let users = try server.query(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = '\(database)' AND application_name = 'event-handler'")
        #expect(users == [[roles.runtime]])
        try Self.expectRuntimePrivilegesCoverEveryRelation(roles.runtime, server: server, database: database)

        // The runtime role can change no schema object.
        let runtime = try PostgresConnection(settings: roles.runtimeSettings(server: server, database: database))
        defer { runtime.close() }
        for statement in [
            "CREATE TABLE intruder (id int)",
            "DROP TABLE user_goal_progress",
            "ALTER TABLE kafka_checkpoints ADD COLUMN intruder int",
            "TRUNCATE flush_commits",
        ] {
            let error = #expect(throws: PostgresError.self, "\(statement)") { try runtime.execute(statement) }
            #expect(error?.sqlState == "42501", "\(statement): \(String(describing: error))")
        }
        #expect(try server.query("SELECT to_regclass('intruder') IS NULL", database: database) == [["t"]])

        // …while the service's writes, as that role, work.
        let catalog = TestCatalog()
        var model = ExpectedState(catalog: catalog)
        let event = TestEvent.login(id: "role-1", user: "role-user")
        try await Self.send(event, port: Int(environment["GRPC_PORT"]!)!)
        model.apply(event)
        try await Self.waitForRows(of: "role-user", count: model.rows.count, server: server, database: database)
        service.signal(SIGTERM)
        #expect(try service.waitForExit(timeout: .seconds(30)) == 0, "\(service.log.suffix(2_000))")

        // Once migrated, the runtime role alone (no DB_MIGRATION_USER) starts too: nothing is
        // pending, so it needs no DDL.
        var alone = environment
        alone["DB_MIGRATION_USER"] = nil
        alone["DB_MIGRATION_PASSWORD_FILE"] = nil
        let second = try ServiceProcess(environment: alone)
        defer { second.terminate() }
        try second.waitForLog("] ready", timeout: .seconds(30))
        #expect(second.log.contains("no migration pending"), "\(second.log)")
        second.signal(SIGTERM)
        #expect(try second.waitForExit(timeout: .seconds(30)) == 0, "\(second.log.suffix(2_000))")
    }

    @Test("the runtime role alone with migrations pending: start-up stops, saying which and how to apply them", .timeLimit(.minutes(2)))
    func pendingMigrationsWithoutPermission() throws {
        let server = PostgresServer.shared
        let database = try server.makeDatabase()
        let roles = try Self.makeRoles(on: server, database: database)
        defer { roles.removeFiles() }
        let environment = try Self.environment(
            server: server, database: database, ["DB_USER": roles.runtime, "DB_PASSWORD_FILE": roles.runtimePasswordFile])
        let service = try ServiceProcess(environment: environment)
        defer { service.terminate() }
        #expect(try service.waitForExit(timeout: .seconds(30)) == 1, "\(service.log)")
        #expect(service.log.contains("migrations [1, 2, 3,"), "\(service.log)")
        #expect(service.log.contains("database user \"\(roles.runtime)\" may not apply them"), "\(service.log)")
        #expect(service.log.contains("permission denied"), "\(service.log)")
        #expect(service.log.contains("DB_MIGRATION_USER"), "\(service.log)")
        #expect(try server.query("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", database: database) == [["0"]])
    }

    @Test("a runtime role that may not write the progress table: start-up stops listing what it lacks", .timeLimit(.minutes(2)))
    func runtimeRoleWithoutGrants() throws {
        let server = PostgresServer.shared
        let database = try server.makeDatabase()
        let roles = try Self.makeRoles(on: server, database: database)
        defer { roles.removeFiles() }
        try server.migrate(database: database)  // as postgres, who grants nothing
        try server.psql("GRANT SELECT ON event_handler_migrations TO \(roles.runtime)", database: database)
        let environment = try Self.environment(
            server: server, database: database, ["DB_USER": roles.runtime, "DB_PASSWORD_FILE": roles.runtimePasswordFile])
        let service = try ServiceProcess(environment: environment)
        defer { service.terminate() }
        #expect(try service.waitForExit(timeout: .seconds(30)) == 1, "\(service.log)")
        #expect(service.log.contains("no migration pending"), "\(service.log)")
        #expect(
            service.log.contains("database user \"\(roles.runtime)\" lacks privileges the service needs: SELECT on user_goal_progress, INSERT on user_goal_progress"),
            "\(service.log)")
        #expect(!service.log.contains("] ready"))
    }

    @Test("event-handler migrate as DB_MIGRATION_USER grants DB_USER everything the service uses", .timeLimit(.minutes(2)))
    func migrateCommandGrants() throws {
        let server = PostgresServer.shared
        let database = try server.makeDatabase()
        let roles = try Self.makeRoles(on: server, database: database)
        defer { roles.removeFiles() }
        let environment = try Self.environment(
            server: server, database: database,
            [
                "DB_USER": roles.runtime, "DB_MIGRATION_USER": roles.migrator,
                "DB_MIGRATION_PASSWORD_FILE": roles.migratorPasswordFile,
            ])
        let migrate = try ServiceProcess(arguments: ["migrate"], environment: environment)
        #expect(try migrate.waitForExit(timeout: .seconds(30)) == 0, "\(migrate.log)")
        #expect(migrate.log.contains("as=\(roles.migrator)"), "\(migrate.log)")
        #expect(migrate.log.contains("runtime role granted its privileges"), "\(migrate.log)")
        try Self.expectRuntimePrivilegesCoverEveryRelation(roles.runtime, server: server, database: database)
    }

    // MARK: - Helpers

    struct Roles {
        let runtime: String
        let migrator: String
        let runtimePasswordFile: String
        let migratorPasswordFile: String

        func removeFiles() {
            for file in [runtimePasswordFile, migratorPasswordFile] { try? FileManager.default.removeItem(atPath: file) }
        }

        func runtimeSettings(server: PostgresServer, database: String) -> ConnectionSettings {
            ConnectionSettings(
                host: "127.0.0.1", port: server.port, database: database, user: runtime, password: "runtime-secret",
                applicationName: "tests")
        }
    }

    /// A runtime role (LOGIN, nothing else) and a migration role (`CREATE` on the schema, no
    /// superuser) of their own, and the schema closed to everyone else's `CREATE`.
    static func makeRoles(on server: PostgresServer, database: String) throws -> Roles {
        let suffix = UUID().uuidString.lowercased().prefix(8)
        let roles = Roles(
            runtime: "eh_runtime_\(suffix)", migrator: "eh_migrator_\(suffix)",
            runtimePasswordFile: NSTemporaryDirectory() + "runtime-password-\(suffix)",
            migratorPasswordFile: NSTemporaryDirectory() + "migrator-password-\(suffix)")
        try "runtime-secret\n".write(toFile: roles.runtimePasswordFile, atomically: true, encoding: .utf8)
        try "migrator-secret\n".write(toFile: roles.migratorPasswordFile, atomically: true, encoding: .utf8)
        try server.psql(
            """
            CREATE ROLE \(roles.runtime) LOGIN PASSWORD 'runtime-secret';
            CREATE ROLE \(roles.migrator) LOGIN PASSWORD 'migrator-secret';
            REVOKE CREATE ON SCHEMA public FROM PUBLIC;
            GRANT CREATE ON SCHEMA public TO \(roles.migrator);
            """, database: database)
        return roles
    }

    /// Every relation in the schema (whatever the migrations created: a new table that the
    /// service's grants miss fails here): `SELECT` on all, `INSERT`, `UPDATE`, `DELETE` on the
    /// tables but the migrations' bookkeeping, `USAGE` on the sequences. And no DDL right.
    static func expectRuntimePrivilegesCoverEveryRelation(_ role: String, server: PostgresServer, database: String) throws {
        let uncovered = try server.query(
            """
            SELECT c.relname, c.relkind FROM pg_class AS c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT CASE
                WHEN c.relkind = 'S' THEN has_sequence_privilege('\(role)', c.oid, 'USAGE')
                WHEN c.relkind IN ('r', 'p') AND c.relname <> 'event_handler_migrations' THEN
                    has_table_privilege('\(role)', c.oid, 'SELECT') AND has_table_privilege('\(role)', c.oid, 'INSERT')
                    AND has_table_privilege('\(role)', c.oid, 'UPDATE') AND has_table_privilege('\(role)', c.oid, 'DELETE')
                ELSE has_table_privilege('\(role)', c.oid, 'SELECT') END
            """, database: database)
        #expect(uncovered.isEmpty, "relations the runtime role cannot use: \(uncovered)")
        let relations = try server.query(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')", database: database)
        #expect(Int(relations[0][0] ?? "") ?? 0 >= 8, "6 tables, a view, a sequence at least: \(relations)")
        let ddl = try server.query(
            """
            SELECT has_schema_privilege('\(role)', 'public', 'CREATE'),
                   bool_or(pg_has_role('\(role)', relowner, 'USAGE')) FROM pg_class WHERE relnamespace = 'public'::regnamespace
            """, database: database)
        #expect(ddl == [["f", "f"]], "the runtime role may create in the schema or owns something: \(ddl)")
    }

    /// The service's environment for `database` on `server`, with ports of its own.
    static func environment(server: PostgresServer, database: String, _ extra: [String: String]) throws -> [String: String] {
        let grpc = try PostgresServer.freeLoopbackPort()
        var http = try PostgresServer.freeLoopbackPort()
        while http == grpc { http = try PostgresServer.freeLoopbackPort() }
        let catalog = NSTemporaryDirectory() + "challenges-\(database).json"
        try TestCatalog().json.write(toFile: catalog, atomically: true, encoding: .utf8)
        var environment = [
            "AB_NAMESPACE": "test-ns", "CONFIG_PATH": catalog,
            "DB_HOST": "127.0.0.1", "DB_PORT": String(server.port), "DB_NAME": database, "DB_USER": "postgres",
            "GRPC_HOST": "127.0.0.1", "GRPC_PORT": String(grpc), "METRICS_HOST": "127.0.0.1", "METRICS_PORT": String(http),
            "BUFFER_FLUSH_INTERVAL": "100ms", "FLUSH_WORKERS": "2", "DB_CONNECT_TIMEOUT": "2s",
        ]
        environment.merge(extra) { $1 }
        return environment
    }

    static func send(_ event: TestEvent, port: Int) async throws {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            try await event.send(login: LoginClient(wrapping: client), stat: StatClient(wrapping: client))
        }
    }

    static func waitForRows(of user: String, count: Int, server: PostgresServer, database: String) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        var rows = "0"
        while ContinuousClock.now < deadline {
            rows = try server.query("SELECT count(*) FROM user_goal_progress WHERE user_id = '\(user)'", database: database)[0][0] ?? "0"
            if rows == String(count) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("\(user) has \(rows) rows, expected \(count)")
    }
}
