import Foundation
@testable import Storage
import Testing
import TestSupport

@Suite("PostgresConnection against a real PostgreSQL")
struct PostgresConnectionTests {
    /// Touched only on test threads: starting it blocks.
    var server: PostgresServer { .shared }

    private func connect(_ database: String, applicationName: String = "tests") throws -> PostgresConnection {
        try PostgresConnection(settings: server.settings(database: database, applicationName: applicationName))
    }

    @Test func executeRunsSeveralStatementsAndReportsAffectedRows() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try connect(database)
            defer { connection.close() }
            try connection.execute(
                """
                CREATE TABLE items (id int PRIMARY KEY, label text);
                INSERT INTO items VALUES (1, 'one'), (2, NULL), (3, 'three');
                """)
            let updated = try connection.execute("UPDATE items SET label = 'x' WHERE id >= 2")
            #expect(updated.affectedRows == 2)
            let result = try connection.execute("SELECT id, label FROM items ORDER BY id")
            #expect(result.columns == ["id", "label"])
            #expect(result.rows == [["1", "one"], ["2", "x"], ["3", "x"]])
            #expect(result[0, 1] == "one")
            #expect(try connection.execute("SELECT NULL::text")[0, 0] == nil)
            #expect(try connection.execute("").rows.isEmpty)
        }
    }

    @Test func parametersTextNullAndBinary() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try connect(database)
            defer { connection.close() }
            let result = try connection.execute(
                "SELECT $1::text, $2::text IS NULL, $3::int4 + 1, length($4::bytea), $5::text",
                [
                    .text("it's \"quoted\" — ünïcødé"), .null, .binary([0, 0, 0, 41], oid: 23),
                    .binary([], oid: 17), .text(""),
                ])
            #expect(result.rows == [["it's \"quoted\" — ünïcødé", "t", "42", "0", ""]])

            var ids = BinaryArray(.text, capacity: 64)
            var counts = BinaryArray(.int4, capacity: 16)
            for (id, count) in [("a", 1), ("b", -2), ("c", 300)] {
                ids.append(id)
                counts.append(int4: Int32(count))
            }
            let rows = try connection.execute(
                "SELECT id, n FROM unnest($1::text[], $2::int4[]) AS t(id, n) ORDER BY id",
                [ids.parameter(), counts.parameter()]
            ).rows
            #expect(rows == [["a", "1"], ["b", "-2"], ["c", "300"]])
            let empty = try connection.execute("SELECT cardinality($1::text[])", [BinaryArray(.text, capacity: 0).parameter()])
            #expect(empty[0, 0] == "0")
        }
    }

    @Test func preparedStatementsAreRememberedAndReusable() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try connect(database)
            defer { connection.close() }
            try connection.execute("CREATE TABLE counters (name text PRIMARY KEY, value int NOT NULL)")
            try connection.prepare(
                "bump",
                """
                INSERT INTO counters AS c VALUES ($1, $2) ON CONFLICT (name)
                DO UPDATE SET value = c.value + EXCLUDED.value RETURNING value
                """)
            #expect(connection.preparedStatements == ["bump"])
            #expect(try connection.executePrepared("bump", [.text("x"), .binary([0, 0, 0, 5], oid: 23)])[0, 0] == "5")
            let second = try connection.executePrepared("bump", [.text("x"), .text("7")])
            #expect(second[0, 0] == "12")
            #expect(second.affectedRows == 1)
            let inServer = try connection.execute("SELECT name FROM pg_prepared_statements").rows
            #expect(inServer == [["bump"]])

            let again = #expect(throws: PostgresError.self) { try connection.prepare("bump", "SELECT 1") }
            #expect(again?.sqlState == "42P05")  // duplicate_prepared_statement
            let missing = #expect(throws: PostgresError.self) { try connection.executePrepared("nope", []) }
            #expect(missing?.sqlState == "26000")  // invalid_sql_statement_name
        }
    }

    @Test func uniqueViolationIsADataError() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try connect(database)
            defer { connection.close() }
            try connection.execute("CREATE TABLE users (id text PRIMARY KEY)")
            try connection.execute("INSERT INTO users VALUES ($1)", [.text("alice")])
            let error = #expect(throws: PostgresError.self) {
                try connection.execute("INSERT INTO users VALUES ($1)", [.text("alice")])
            }
            #expect(error?.kind == .query)
            #expect(error?.sqlState == "23505")
            #expect(error?.isDataError == true)
            #expect(error?.isConnectionFailure == false)
            #expect(error?.message.contains("users_pkey") == true)
            #expect(error?.detail?.contains("(id)=(alice)") == true)
            // The connection is still good after a statement error.
            #expect(connection.isHealthy)
            #expect(try connection.execute("SELECT count(*) FROM users")[0, 0] == "1")
        }
    }

    @Test func syntaxErrorCarriesItsSQLState() async throws {
        try await onThread { [self] in
            let database = try server.makeDatabase()
            let connection = try connect(database)
            defer { connection.close() }
            let error = #expect(throws: PostgresError.self) { try connection.execute("SELEKT 1") }
            #expect(error?.kind == .query)
            #expect(error?.sqlState == "42601")
            #expect(error?.isDataError == false)
            #expect(error?.isConnectionFailure == false)
            #expect(error?.message.contains("syntax error") == true)
            let typed = #expect(throws: PostgresError.self) { try connection.execute("SELECT $1::int", [.text("x")]) }
            #expect(typed?.sqlState == "22P02")  // invalid_text_representation: a data error
            #expect(typed?.isDataError == true)
        }
    }

    @Test func connectingToAClosedPortNamesTheServerButNotThePassword() async throws {
        let port = try PostgresServer.freeLoopbackPort()  // nobody listens there
        let settings = ConnectionSettings(
            host: "127.0.0.1", port: port, database: "nowhere_db", user: "someone", password: "s3cret-'pw\\",
            connectTimeout: .seconds(2))
        let error = try await onThread {
            do {
                _ = try PostgresConnection(settings: settings)
                return PostgresError?.none
            } catch let error as PostgresError {
                return error
            }
        }
        let failure = try #require(error)
        #expect(failure.kind == .connect)
        #expect(failure.isConnectionFailure)
        #expect(failure.message.contains("127.0.0.1:\(port)"))
        #expect(failure.message.contains("nowhere_db"))
        #expect(!"\(failure)".contains("s3cret"))
        #expect(!"\(settings)".contains("s3cret"))
        #expect(settings.conninfo.contains(#"password='s3cret-\'pw\\'"#))
    }

    @Test func statementTimeoutIsSentAsAnOption() async throws {
        try await onThread { [self] in
            var settings = server.settings(database: server.database)
            settings.statementTimeout = .milliseconds(150)
            let connection = try PostgresConnection(settings: settings)
            defer { connection.close() }
            #expect(try connection.execute("SHOW statement_timeout")[0, 0] == "150ms")
            let error = #expect(throws: PostgresError.self) { try connection.execute("SELECT pg_sleep(5)") }
            #expect(error?.sqlState == "57014")  // query_canceled
            #expect(error?.isConnectionFailure == false)
            #expect(connection.isHealthy)
        }
    }

    @Test("a call the server never answers (replies black-holed) is cut at DB_CALL_TIMEOUT as a lost connection")
    func callTimeoutCutsABlackHole() async throws {
        try await onThread { [self] in
            let proxy = try TCPProxy(upstreamPort: server.port)
            defer { proxy.close() }
            var settings = server.settings(database: server.database)
            settings.port = proxy.port
            settings.statementTimeout = .seconds(30)
            settings.callTimeout = .seconds(1)
            #expect(settings.conninfo.contains("keepalives=1"))
            #expect(settings.conninfo.contains("tcp_user_timeout=1000"))
            let connection = try PostgresConnection(settings: settings)
            defer { connection.close() }
            #expect(try connection.execute("SELECT 1")[0, 0] == "1")
            proxy.replyDelay = .seconds(3_600)
            let started = ContinuousClock.now
            let error = #expect(throws: PostgresError.self) { try connection.execute("SELECT 2") }
            let waited = ContinuousClock.now - started
            #expect(error?.isConnectionFailure == true)
            #expect(error?.message.contains("within 1s (DB_CALL_TIMEOUT)") == true, "\(String(describing: error))")
            // The bound, not the statement timeout (30 s) nor the kernel (minutes), ended it.
            #expect(waited >= .milliseconds(900) && waited < .seconds(10), "\(waited)")
            #expect(!connection.isHealthy)
            // A call answered in time is untouched by the bound.
            proxy.replyDelay = .zero
            let fresh = try PostgresConnection(settings: settings)
            defer { fresh.close() }
            #expect(try fresh.execute("SELECT pg_sleep(0.2), 3")[0, 1] == "3")
        }
    }

    @Test("a statement cut at DB_CALL_TIMEOUT is cancelled on the server: it does not run on with its locks")
    func callTimeoutCancelsTheStatement() async throws {
        try await onThread { [self] in
            let holder = try connect(server.database)
            defer { holder.close() }
            _ = try holder.execute("SELECT pg_advisory_lock(4242)")
            var settings = server.settings(database: server.database)
            settings.statementTimeout = .seconds(60)
            settings.callTimeout = .seconds(1)
            let connection = try PostgresConnection(settings: settings)
            defer { connection.close() }
            let pid = connection.backendPID
            let sentBefore = StatementCanceller.shared.counts.sent
            // Waits on the lock: the server is reached and healthy, the statement just never ends.
            let error = #expect(throws: PostgresError.self) { try connection.execute("SELECT pg_advisory_lock(4242)") }
            #expect(error?.message.contains("its statement cancelled") == true, "\(String(describing: error))")
            // The backend stops waiting for the lock within seconds, not at statement_timeout
            // (60 s): without the cancel it stays 'active' on the lock, as the closed socket is
            // not read while a statement runs.
            let deadline = ContinuousClock.now + .seconds(10)
            var state = "?"
            repeat {
                state = try holder.execute("SELECT coalesce((SELECT state FROM pg_stat_activity WHERE pid = \(pid)), 'gone')")[0, 0] ?? "?"
                if state != "active" { break }
                Thread.sleep(forTimeInterval: 0.05)
            } while ContinuousClock.now < deadline
            #expect(state != "active", "the cut statement still runs on the server")
            // Counted once PQcancel returns, which can be after the server acted on it.
            let counted = ContinuousClock.now + .seconds(10)
            while StatementCanceller.shared.counts.sent <= sentBefore && ContinuousClock.now < counted {
                Thread.sleep(forTimeInterval: 0.01)
            }
            #expect(StatementCanceller.shared.counts.sent > sentBefore)
            _ = try holder.execute("SELECT pg_advisory_unlock(4242)")
        }
    }

    @Test func aTerminatedBackendIsAConnectionFailure() async throws {
        try await onThread { [self] in
            let connection = try connect(server.database)
            defer { connection.close() }
            let pid = connection.backendPID
            #expect(pid > 0)
            #expect(connection.checkHealth())
            try terminateBackend(server, pid: pid)
            // checkHealth sees the server's goodbye without a round trip …
            #expect(!connection.checkHealth())
            #expect(!connection.isHealthy)

            // … and a statement on a connection that has not looked yet fails as lost.
            let other = try connect(server.database)
            defer { other.close() }
            try terminateBackend(server, pid: other.backendPID)
            let error = #expect(throws: PostgresError.self) { try other.execute("SELECT 1") }
            #expect(error?.kind == .connectionLost)
            #expect(error?.isConnectionFailure == true)
            #expect(!other.isHealthy)
        }
    }

    @Test func closeIsIdempotentAndLaterCallsFail() async throws {
        try await onThread { [self] in
            let connection = try connect(server.database)
            try connection.execute("BEGIN")
            #expect(connection.isInTransaction)
            try connection.execute("COMMIT")
            #expect(!connection.isInTransaction)
            connection.close()
            connection.close()
            #expect(!connection.isHealthy)
            #expect(connection.backendPID == 0)
            let error = #expect(throws: PostgresError.self) { try connection.execute("SELECT 1") }
            #expect(error?.kind == .connectionLost)
        }
    }
}

