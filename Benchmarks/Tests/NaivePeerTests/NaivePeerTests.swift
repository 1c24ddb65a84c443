import Foundation
import GRPCCore
import ServiceTestSupport
import TestSupport
import Testing

/// `naive-peer`, the comparison the load benchmarks quote, is only a fair comparison if it does
/// the service's work: the real executable, a real PostgreSQL, a real gRPC client.
@Suite("Naive peer: the same work as the service, without the buffer", .serialized)
struct NaivePeerTests {
    @Test("the same events leave the same rows as the service's model; a bad event gets the same INVALID_ARGUMENT")
    func sameRowsAsTheService() async throws {
        let catalog = TestCatalog()
        let (users, events) = makeWorkload(users: 40, count: 400, seed: 23)
        var model = ExpectedState(catalog: catalog)
        // Rows the REST side made first (inactive, claimed, completed): every branch of the write.
        let seeded = RestSideRows.make(users: users, catalog: catalog, into: &model)
        for event in events { model.apply(event) }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: ["DB_MAX_OPEN_CONNS": "4"],
            executable: "naive-peer", arguments: [], readyLine: "naive-peer listening on"
        ) { connection in
            try RestSideRows.insert(seeded, namespace: "test-ns", on: connection)
        }

        try await harness.withClients { login, stat in
            // The peer writes before it answers: the rows are there after each answer.
            for event in events { try await event.send(login: login, stat: stat) }

            var bad = TestEvent.stat(id: "bad-1", user: "bad-user", code: "stat-0", value: 5, inc: 1).statMessage!
            bad.payload.latestValue = .nan
            do {
                _ = try await stat.onMessage(bad)
                Issue.record("a NaN latest value was accepted")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.hasPrefix("payload.latest_value:"), "message: \(error.message)")
            }
            _ = try await login.onMessage(TestEvent.foreignNamespaceLogin)
        }
        #expect(try harness.stop() == 0)
        try harness.expectTable(model.rows, absentUsers: ["bad-user", "foreign-user"])
    }
}
