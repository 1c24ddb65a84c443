import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GameEvents
import GameEventsGRPC
import ServiceTestSupport
import Storage
import Synchronization
import TestSupport
import Testing

typealias DeletionClient = Accelbyte_Iam_Account_V1_DeletionAccountGdprGdprRequestDataDeletionResponseService.Client<
    HTTP2ClientTransport.Posix
>

/// Set once a call has returned (read from the test's task).
final class AnsweredFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// The GDPR data-deletion method (wire.md; issue 20): every stored row of the user deleted as
/// one step with their buffered entries, answered OK only once committed, counted and audited.
@Suite("GDPR data deletion", .serialized)
struct UserDeletionTests {
    static func deletion(user: String, namespace: String = "test-ns", inPayload: Bool = true) -> Accelbyte_Iam_Account_V1_GdprRequestDataDeletionResponse {
        .with {
            $0.id = "gdpr-\(user)"
            $0.namespace = namespace
            if inPayload {
                $0.payload.deletionGdpr.userID = user
                $0.payload.deletionGdpr.namespace = namespace
            } else {
                $0.userID = user
            }
        }
    }

    static func withDeletionClient<T: Sendable>(_ harness: ServiceHarness, _ body: (DeletionClient) async throws -> T) async throws -> T {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: harness.grpcPort), transportSecurity: .plaintext)
        ) { client in
            try await body(DeletionClient(wrapping: client))
        }
    }

    static func rowCount(_ harness: ServiceHarness, user: String) throws -> Int {
        Int(try harness.server.psql("SELECT count(*) FROM user_goal_progress WHERE user_id = '\(user)'", database: harness.database)) ?? -1
    }

    /// Committed rows (seeded as the REST side would have), a dead letter, and events still in
    /// the buffer: one call deletes them all, another user and another namespace are untouched,
    /// and an event after the deletion counts as usual.
    @Test("committed rows, dead letters and buffered entries go in one step; later events count", .timeLimit(.minutes(3)))
    func committedAndBuffered() async throws {
        let catalog = TestCatalog()
        var model = ExpectedState(catalog: catalog)
        let seeded = RestSideRows.make(users: ["gone", "kept", "x", "y"], catalog: catalog, into: &model)
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json,
            // Long enough that the events below are still buffered when the deletion comes.
            environment: ["BUFFER_FLUSH_INTERVAL": "60s", "FLUSH_WORKERS": "1"],
            prepare: { connection in
                try RestSideRows.insert(seeded, namespace: "test-ns", on: connection)
                try connection.execute(
                    """
                    INSERT INTO progress_dead_letters (namespace, user_id, goal_id, challenge_id, kind, value, increase, events, event_ids, sqlstate, reason)
                    VALUES ('test-ns', 'gone', 'g', 'c', 'absolute', 1, 1, 1, '{e1}', '22003', 'test')
                    """)
            })
        let seededForGone = try Self.rowCount(harness, user: "gone")
        #expect(seededForGone > 0)
        try await harness.withClients { login, stat in
            for (n, user) in ["gone", "gone", "kept"].enumerated() {
                let event = TestEvent.login(id: "before-\(n)", user: user)
                try await event.send(login: login, stat: stat)
                model.apply(event)
            }
        }
        #expect(try Self.rowCount(harness, user: "gone") == seededForGone, "the events are still buffered")

        try await Self.withDeletionClient(harness) { client in
            // Answered once committed: the rows are gone when the call returns.
            _ = try await client.onMessage(Self.deletion(user: "gone"))
            #expect(try Self.rowCount(harness, user: "gone") == 0)
            #expect(try harness.server.psql("SELECT count(*) FROM progress_dead_letters WHERE user_id = 'gone'", database: harness.database) == "0")
            // Another namespace: OK, nothing deleted. No user: INVALID_ARGUMENT.
            _ = try await client.onMessage(Self.deletion(user: "kept", namespace: "elsewhere"))
            let error = await #expect(throws: RPCError.self) {
                _ = try await client.onMessage(Self.deletion(user: "", inPayload: false))
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("user_id") == true)
        }
        model.rows = model.rows.filter { !$0.key.hasPrefix("gone|") }

        // After the deletion the user's events count as usual (from nothing).
        try await harness.withClients { login, stat in
            let event = TestEvent.login(id: "after-0", user: "gone")
            try await event.send(login: login, stat: stat)
            model.apply(event)
        }
        _ = try await Self.withDeletionClient(harness) { client in
            // A deletion of someone else flushes at once: the event above lands with it.
            try await client.onMessage(Self.deletion(user: "nobody"))
        }
        try DeduplicationTests.compare(harness, model)

        let metrics = try await harness.http.metrics()
        #expect(metrics.value("gdpr_deletions_total") == 2)
        #expect(metrics.value("gdpr_rows_deleted_total") == Double(seededForGone))
        #expect(metrics.value("grpc_server_handled_total", [
            "grpc_service": "accelbyte.iam.account.v1.DeletionAccountGdprGdprRequestDataDeletionResponseService",
            "grpc_method": "OnMessage", "grpc_code": "OK", "grpc_type": "unary",
        ]) == 3)
        let audit = harness.process.log.split(separator: "\n").filter { $0.contains("audit: GDPR deletion committed") }
        #expect(audit.count == 2, "\(audit)")
        #expect(audit.first { $0.contains("user_id=gone") }?.contains("progress_rows=\(seededForGone)") == true, "\(audit)")
        #expect(try harness.stop() == 0)
    }

    /// A flush that drained the user's entries is stuck writing them (the table locked) when the
    /// deletion comes: the deletion is not answered while that flush cannot commit, and once it
    /// does, the deletion's own flush removes what it wrote.
    @Test("a deletion during a flush: what that flush writes is deleted after it", .timeLimit(.minutes(3)))
    func duringAFlush() async throws {
        let catalog = TestCatalog()
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: ["BUFFER_FLUSH_INTERVAL": "200ms", "FLUSH_WORKERS": "1"])
        let blocker = try PostgresConnection(settings: harness.server.settings(database: harness.database))
        defer { blocker.close() }
        try blocker.execute("BEGIN")
        try blocker.execute("LOCK TABLE user_goal_progress IN EXCLUSIVE MODE")
        try await harness.withClients { login, stat in
            try await TestEvent.login(id: "racing-1", user: "racing").send(login: login, stat: stat)
        }
        // The flush holding the event waits for the lock.
        let deadline = ContinuousClock.now + .seconds(30)
        while try harness.server.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(harness.database)' AND wait_event_type = 'Lock'") == "0"
        {
            guard ContinuousClock.now < deadline else { throw TestFailure("no flush waited for the lock") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let answered = AnsweredFlag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                _ = try await Self.withDeletionClient(harness) { try await $0.onMessage(Self.deletion(user: "racing")) }
                answered.set()
            }
            try await Task.sleep(for: .seconds(1))
            #expect(!answered.isSet, "answered OK while nothing could commit")
            try blocker.execute("COMMIT")
            try await group.waitForAll()
        }
        #expect(try Self.rowCount(harness, user: "racing") == 0)
        #expect(try harness.stop() == 0)
    }

    /// The database refuses every connection: a call with a deadline ends DEADLINE_EXCEEDED and
    /// stops waiting (as do durable events'), one without keeps waiting, and is answered OK only
    /// after the database is back and the delete committed.
    @Test("a deletion while the database is away: never OK before the delete committed; expired calls stop waiting", .timeLimit(.minutes(3)))
    func whileTheDatabaseIsAway() async throws {
        let catalog = TestCatalog()
        var model = ExpectedState(catalog: catalog)
        let seeded = RestSideRows.make(users: ["away", "stays"], catalog: catalog, into: &model)
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json,
            environment: ["BUFFER_FLUSH_INTERVAL": "200ms", "FLUSH_WORKERS": "1", "DB_CONNECT_TIMEOUT": "2s", "ACK_MODE": "durable"],
            prepare: { try RestSideRows.insert(seeded, namespace: "test-ns", on: $0) })
        let server = harness.server
        let before = try Self.rowCount(harness, user: "away")
        #expect(before > 0)
        func setAllowConnections(_ allowed: Bool) throws {
            _ = try server.psql("ALTER DATABASE \(harness.database) ALLOW_CONNECTIONS \(allowed)", database: "postgres")
            if !allowed {
                _ = try server.psql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(harness.database)'",
                    database: "postgres")
            }
        }
        try setAllowConnections(false)
        var allowed = false
        defer { if !allowed { try? setAllowConnections(true) } }

        let answered = AnsweredFlag()
        try await Self.withDeletionClient(harness) { client in
            var options = CallOptions.defaults
            options.timeout = .seconds(2)
            let expired = await #expect(throws: RPCError.self) {
                _ = try await client.onMessage(Self.deletion(user: "away"), options: options)
            }
            #expect(expired?.code == .deadlineExceeded)
            // Durable events with a deadline: each expires, and none is left waiting for the commit.
            let expiring = options
            try await harness.withClients { login, _ in
                try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
                    for n in 0..<20 {
                        group.addTask {
                            do {
                                _ = try await login.onMessage(
                                    TestEvent.login(id: "durable-\(n)", user: "stays").loginMessage!, options: expiring)
                                return nil
                            } catch let error as RPCError {
                                return error.code
                            }
                        }
                    }
                    for try await code in group { #expect(code == .deadlineExceeded) }
                }
            }
            // (The client may reset its call a moment before the server's own timer fires.)
            try await harness.http.waitForMetrics(timeout: .seconds(10)) { $0.value("commit_waiters") == 0 }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await client.onMessage(Self.deletion(user: "away"))
                    answered.set()
                }
                try await harness.http.waitForMetrics { $0.value("commit_waiters") == 1 }
                try await Task.sleep(for: .seconds(1))
                #expect(!answered.isSet, "answered OK while the database was away")
                try setAllowConnections(true)
                allowed = true
                try await group.waitForAll()
            }
        }
        #expect(try Self.rowCount(harness, user: "away") == 0)
        #expect(try Self.rowCount(harness, user: "stays") > 0)
        let metrics = try await harness.http.metrics()
        #expect(metrics.value("gdpr_deletions_total") == 1)
        #expect(metrics.value("gdpr_rows_deleted_total") == Double(before))
        #expect(try harness.stop() == 0)
    }
}
