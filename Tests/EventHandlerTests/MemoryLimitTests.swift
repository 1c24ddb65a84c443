import Foundation
import GRPCCore
import ServiceTestSupport
import TestSupport
import Testing

/// What a database outage can make the service hold, bounded by settings: ids of accepted events
/// not yet committed (`BUFFER_EVENT_ID_LIMIT`) and calls waiting for their commit
/// (`ACK_WAITING_LIMIT`). Past either, the service pushes back as for a full buffer, a call that
/// ends stops waiting at once, and everything accepted lands exactly once after the outage.
@Suite("Memory limits through an outage")
struct MemoryLimitTests {
    @Test(
        "database down in durable mode: ids and waiting calls are refused at their limits, an ended call frees its place, all lands once after; exact",
        .timeLimit(.minutes(5)))
    func limitsHoldThroughAnOutage() async throws {
        let server = try PostgresServer()
        defer { server.shutdown() }
        let catalog = TestCatalog()
        let harness = try ServiceHarness(
            server: server, catalogJSON: catalog.json,
            environment: [
                "ACK_MODE": "durable", "BUFFER_EVENT_ID_LIMIT": "6", "ACK_WAITING_LIMIT": "3",
                "BUFFER_FLUSH_INTERVAL": "100ms", "FLUSH_WORKERS": "1", "DB_CONNECT_TIMEOUT": "1s",
            ])
        var model = ExpectedState(catalog: catalog)

        try await harness.withClients { login, stat in
            let first = TestEvent.login(id: "first", user: "player")
            try await first.send(login: login, stat: stat)
            model.apply(first)
        }
        try server.stop()

        // Ids: each login of the same player only merges (no new entry), so the buffer's own
        // limit never stops them; the id limit does. Each call gives up after 300 ms (its event
        // is in the buffer, its wait ends, its place is free), the seventh id is refused.
        try await harness.withClients { login, stat in
            for n in 0..<6 {
                let event = TestEvent.login(id: "merge-\(n)", user: "player")
                await #expect(throws: RPCError.self) { try await event.send(login: login, stat: stat, timeout: .milliseconds(300)) }
                model.apply(event)
            }
            let refused = TestEvent.login(id: "merge-6", user: "player")
            let error = await #expect(throws: RPCError.self) { try await refused.send(login: login, stat: stat) }
            #expect(error?.code == .resourceExhausted && error?.message.contains("BUFFER_EVENT_ID_LIMIT") == true, "\(String(describing: error))")
            // A repeat of a held id adds nothing: not refused, it waits for its commit as the
            // first delivery did.
            let repeated = TestEvent.login(id: "merge-0", user: "player")
            let late = await #expect(throws: RPCError.self) { try await repeated.send(login: login, stat: stat, timeout: .milliseconds(300)) }
            #expect(late?.code == .deadlineExceeded, "\(String(describing: late))")
        }
        let atIDLimit = try await harness.http.waitForMetrics { $0.value("commit_waiters") == 0 }
        #expect(atIDLimit.value("events_rejected_total", ["source": "grpc", "type": "login", "reason": "event_id_limit"]) == 1)

        // Waiting calls: events without an id hold no id; three wait, the fourth is refused
        // before its event goes into the buffer; one that ends (its client cancels) gives its
        // place to the next.
        try await harness.withClients { login, stat in
            try await withThrowingTaskGroup(of: Void.self) { group in
                func waiting(_ n: Int) -> TestEvent {
                    let event = TestEvent.login(id: "", user: "waiting-\(n)")
                    group.addTask { try await event.send(login: login, stat: stat) }
                    return event
                }
                for n in 0..<2 { model.apply(waiting(n)) }
                let cancelled = TestEvent.login(id: "", user: "cancelled")
                let cancellable = Task { try await cancelled.send(login: login, stat: stat) }
                model.apply(cancelled)  // in the buffer before its call ends: it lands
                _ = try await harness.http.waitForMetrics { $0.value("commit_waiters") == 3 }

                let refused = TestEvent.login(id: "", user: "refused")
                let error = await #expect(throws: RPCError.self) { try await refused.send(login: login, stat: stat) }
                #expect(error?.code == .resourceExhausted && error?.message.contains("ACK_WAITING_LIMIT") == true, "\(String(describing: error))")

                cancellable.cancel()
                _ = await cancellable.result
                _ = try await harness.http.waitForMetrics { $0.value("commit_waiters") == 2 }
                model.apply(waiting(2))
                let full = try await harness.http.waitForMetrics { $0.value("commit_waiters") == 3 }
                #expect(full.value("events_rejected_total", ["source": "grpc", "type": "login", "reason": "ack_waiting_limit"]) == 1)
                #expect(full.value("buffer_backpressure_activations_total") == 2)

                // The database is back: the three waiting calls are answered OK.
                try server.start()
                try await group.waitForAll()
            }
        }
        try await DeduplicationTests.waitForTable(harness, model)
        let diff = differences(expected: model.rows, actual: try harness.tableRows())
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))\n--- log ---\n\(harness.process.log.suffix(3_000))")
        #expect(harness.process.log.contains("too many accepted events wait for their commit (BUFFER_EVENT_ID_LIMIT)"))
        #expect(harness.process.log.contains("too many calls wait for their commit (ACK_WAITING_LIMIT)"))
        #expect(try harness.stop() == 0)
    }
}
