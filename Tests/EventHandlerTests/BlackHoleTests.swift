import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// A network path to PostgreSQL that answers nothing (no reset, no reply: a TCP proxy holding
/// every reply), under load: detected within `DB_CALL_TIMEOUT` and counted as failed flushes,
/// and once the path is back every event is applied exactly once. Before the bound, the flush
/// sat in libpq with `flush_consecutive_failures` at 0 for as long as the path stayed dark.
@Suite("PostgreSQL black-holed", .serialized)
struct BlackHoleTests {
    @Test("replies black-holed for 8 s: failures counted within the bound, then every event applied once", .timeLimit(.minutes(3)))
    func blackHoleDetected() async throws {
        let proxy = try TCPProxy(upstreamPort: PostgresServer.shared.port)
        defer { proxy.close() }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: GRPCWireTests.catalog,
            environment: [
                "DB_PORT": String(proxy.port), "DB_STATEMENT_TIMEOUT": "1s", "DB_CALL_TIMEOUT": "2s",
                "DB_CONNECT_TIMEOUT": "2s",
            ])
        let users = (0..<50).map { "hole-\($0)" }
        try await harness.withClients { login, _ in
            for user in users { _ = try await login.onMessage(OperationsTests.login(user, id: "\(user)-before")) }
        }
        try await GRPCWireTests.expectLogins(harness, users: users, logins: 1, timeout: .seconds(20))

        proxy.replyDelay = .seconds(3_600)
        let dark = ContinuousClock.now
        try await harness.withClients { login, _ in
            for user in users { _ = try await login.onMessage(OperationsTests.login(user, id: "\(user)-during")) }
        }
        var detectedAfter: Duration?
        while ContinuousClock.now - dark < .seconds(8) {
            if detectedAfter == nil, try await harness.http.metrics().value("flush_consecutive_failures") ?? 0 >= 1 {
                detectedAfter = ContinuousClock.now - dark
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let detected = try #require(detectedAfter, "no failed flush counted in 8 s of a black-holed path")
        // The flush interval (200 ms), the call bound (2 s), and a second to spare on a busy machine.
        #expect(detected < .seconds(4), "\(detected)")
        let cut = harness.process.log.split(separator: "\n").first { $0.contains("(DB_CALL_TIMEOUT)") }
        #expect(cut != nil, "\(harness.process.log.suffix(3_000))")
        print("black hole detected after \(detected): \(cut ?? "")")

        proxy.replyDelay = .zero
        try await GRPCWireTests.expectLogins(harness, users: users, logins: 2, timeout: .seconds(30))
        #expect(try await harness.http.metrics().value("flush_consecutive_failures") == 0)
        #expect(try harness.stop() == 0)
    }
}
