import Foundation
import GRPCCore
import GameEvents
import ServiceTestSupport
import Storage
import TestSupport
import Testing

/// The real service process, a real PostgreSQL, a real gRPC client on loopback.
@Suite("End to end", .serialized)
struct EndToEndTests {
    @Test("100,000 events from 10,000 users land exactly, row for row", .timeLimit(.minutes(20)))
    func hundredThousandEvents() async throws {
        let catalog = TestCatalog()
        let (users, events) = makeWorkload(users: 10_000, count: 100_000, seed: 20_261_123)
        var model = ExpectedState(catalog: catalog)
        let seeded = RestSideRows.make(users: users, catalog: catalog, into: &model)
        let harness = try ServiceHarness(server: .shared, catalogJSON: catalog.json) { connection in
            try RestSideRows.insert(seeded, namespace: "test-ns", on: connection)
        }
        for event in events { model.apply(event) }

        // One user's events go through one sender, in order; senders run concurrently, as the
        // bridge's many in-flight calls do.
        let senders = 64
        let index = Dictionary(uniqueKeysWithValues: users.enumerated().map { ($1, $0) })
        let lanes = (0..<senders).map { lane in events.filter { index[$0.user]! % senders == lane } }
        let started = ContinuousClock.now
        try await harness.withClients { login, stat in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in lanes {
                    group.addTask {
                        for event in lane { try await event.send(login: login, stat: stat) }
                    }
                }
                try await group.waitForAll()
            }
        }
        let elapsed = ContinuousClock.now - started
        print("sent \(events.count) events in \(elapsed)")

        let status = try harness.stop()
        #expect(status == 0, "exit status; log:\n\(harness.process.log.suffix(3_000))")
        let actual = try harness.tableRows()
        let diff = differences(expected: model.rows, actual: actual)
        #expect(diff.isEmpty, "\(diff.count)+ rows differ:\n\(diff.joined(separator: "\n"))")
        #expect(actual.count == model.rows.count)
        #expect(harness.process.log.contains("unassigned_events=\(model.unassignedEvents)"), "model counts \(model.unassignedEvents) unassigned events; log:\n\(harness.process.log.suffix(2_000))")
        #expect(harness.process.log.contains("events_accepted=\(events.count)"))
        #expect(try harness.server.query("SELECT count(*) FROM user_goal_progress WHERE namespace <> 'test-ns'", database: harness.database)[0][0] == "0")
    }

    @Test("bad input gets INVALID_ARGUMENT naming the field, good events around it all land")
    func badInput() async throws {
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 50, count: 400, seed: 7)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        let harness = try ServiceHarness(server: .shared, catalogJSON: catalog.json)

        let long = String(repeating: "x", count: 101)
        var bad: [(name: String, field: String, send: @Sendable (LoginClient, StatClient) async throws -> Void)] = []
        func login(_ configure: @escaping @Sendable (inout GameEventsLogin) -> Void) -> @Sendable (LoginClient, StatClient) async throws -> Void {
            { client, _ in
                var message = TestEvent.login(id: "bad-\(UUID())", user: "bad-user").loginMessage!
                configure(&message)
                _ = try await client.onMessage(message)
            }
        }
        func stat(_ configure: @escaping @Sendable (inout GameEventsStat) -> Void) -> @Sendable (LoginClient, StatClient) async throws -> Void {
            { _, client in
                var message = TestEvent.stat(id: "bad-\(UUID())", user: "bad-user", code: "stat-0", value: 50, inc: 1).statMessage!
                configure(&message)
                _ = try await client.onMessage(message)
            }
        }
        bad.append(("login without user id", "user_id", login { $0.userID = "" }))
        bad.append(("login with a 101-byte user id", "user_id", login { $0.userID = long }))
        bad.append(("stat with a 101-byte user id", "user_id", stat { $0.userID = long }))
        bad.append(("stat with a NUL in its user id (the table cannot store it)", "user_id", stat { $0.userID = "player\u{0}1" }))
        bad.append(("stat without payload", "payload", stat { $0.clearPayload() }))
        bad.append(("stat with empty stat code", "payload.stat_code", stat { $0.payload.statCode = "" }))
        bad.append(("stat with a 101-byte stat code", "payload.stat_code", stat { $0.payload.statCode = long }))
        bad.append(("stat with NaN latest value", "payload.latest_value", stat { $0.payload.latestValue = .nan }))
        bad.append(("stat with infinite inc", "payload.inc", stat { $0.payload.inc = -.infinity }))
        bad.append(("login with a 201-byte id", "id", login { $0.id = String(repeating: "i", count: 201) }))
        bad.append(("login with a newline in its user id (it would forge a log line)", "user_id", login { $0.userID = "player\n1" }))
        bad.append(("stat with an escape sequence in its id", "id", stat { $0.id = "id-\u{1B}[31m-red" }))
        bad.append(("login with a C1 control (NEL) in its id", "id", login { $0.id = "id-\u{85}-nel" }))

        try await harness.withClients { loginClient, statClient in
            var next = 0
            for (name, field, send) in bad {
                for _ in 0..<(events.count / bad.count) {
                    try await events[next].send(login: loginClient, stat: statClient)
                    next += 1
                }
                do {
                    try await send(loginClient, statClient)
                    Issue.record("\(name): accepted, expected INVALID_ARGUMENT")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument, "\(name)")
                    #expect(error.message.hasPrefix("\(field):"), "\(name): message \"\(error.message)\" should name \(field)")
                }
            }
            while next < events.count {
                try await events[next].send(login: loginClient, stat: statClient)
                next += 1
            }
            // Another namespace: acknowledged, never stored.
            _ = try await loginClient.onMessage(TestEvent.foreignNamespaceLogin)
        }
        #expect(try harness.stop() == 0)
        try harness.expectTable(model.rows, absentUsers: ["bad-user", "foreign-user"])
        #expect(harness.process.log.contains("events_rejected=\(bad.count)"))
    }
}

typealias GameEventsLogin = GameEvents.Accelbyte_Iam_Account_V1_UserLoggedIn
typealias GameEventsStat = GameEvents.Accelbyte_Social_Statistic_V1_StatItemUpdated
