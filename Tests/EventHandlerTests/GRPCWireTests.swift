import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// The service's gRPC server against a client we did not write: Python grpcio (gRPC's C core),
/// driven by Tests/wire/grpcio_client.py, on a real socket, with the rows checked in PostgreSQL.
@Suite("gRPC wire: Python grpcio", .serialized)
struct GRPCWireTests {
    static let catalog = (try? String(contentsOfFile: PostgresServer.repositoryRoot + "/config/challenges.json", encoding: .utf8)) ?? ""

    /// Runs the grpcio client's `scenario` against `port`; its JSON answer.
    static func grpcio(_ port: Int, _ scenario: String...) throws -> [String: Any] {
        try python("grpcio_client.py", port, scenario)
    }

    /// Runs Tests/wire/`script` with `port` and `arguments`; the JSON object it prints.
    static func python(_ script: String, _ port: Int, _ arguments: String...) throws -> [String: Any] {
        try python(script, port, arguments)
    }

    static func python(_ script: String, _ port: Int, _ scenario: [String]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", PostgresServer.repositoryRoot + "/Tests/wire/" + script, String(port)] + scenario
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ServiceProcessError(
                "\(script) \(scenario.joined(separator: " ")) exited with \(process.terminationStatus)",
                log: String(decoding: data + stderr, as: UTF8.self))
        }
        return json
    }

    /// Each of `users`' login goals holds `logins` (every login counted once), waiting up to
    /// `timeout` for a flush.
    static func expectLogins(_ harness: ServiceHarness, users: [String], logins: Int, timeout: Duration = .zero) async throws {
        let deadline = ContinuousClock.now + timeout
        var counts: [String: Int] = [:]
        repeat {
            counts = [:]
            for row in try harness.server.query(
                "SELECT user_id, progress FROM user_goal_progress WHERE goal_id = 'login-30'", database: harness.database)
            {
                counts[row[0]!] = Int(row[1]!)!
            }
            if users.allSatisfy({ counts[$0] == logins }) { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        let wrong = users.filter { counts[$0] != logins }
        #expect(wrong.isEmpty, "\(wrong.count) users without exactly \(logins) logins, e.g. \(wrong.prefix(3).map { "\($0): \(counts[$0] ?? 0)" })")
    }

    @Test("durable: 1,000 calls in flight on one connection, all OK, each applied once when answered")
    func thousandInFlightDurable() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: Self.catalog, environment: ["ACK_MODE": "durable"])
        let result = try Self.grpcio(harness.grpcPort, "inflight", "100", "10")
        #expect(result["codes"] as? [String: Int] == ["OK": 1_000])
        // Durable: every answer came after its commit, so the table is complete now.
        try await Self.expectLogins(harness, users: result["users"] as? [String] ?? [], logins: 10)
        #expect(try harness.stop() == 0)
    }

    @Test("buffered: 1,000 calls in flight on one connection, all OK, each applied once")
    func thousandInFlightBuffered() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: Self.catalog)
        let result = try Self.grpcio(harness.grpcPort, "inflight", "100", "10")
        #expect(result["codes"] as? [String: Int] == ["OK": 1_000])
        try await Self.expectLogins(harness, users: result["users"] as? [String] ?? [], logins: 10, timeout: .seconds(20))
        #expect(try harness.stop() == 0)
    }

    @Test("deadline, gzip, unknown method and service, 2 MiB message, bad input, health")
    func edges() async throws {
        // A flush every 2 s: a durable call with a 50 ms deadline cannot be answered in time.
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: Self.catalog, environment: ["ACK_MODE": "durable", "BUFFER_FLUSH_INTERVAL": "2s"])
        let result = try Self.grpcio(harness.grpcPort, "edges")
        #expect(result["deadline"] as? String == "DEADLINE_EXCEEDED")
        #expect(result["gzip"] as? String == "UNIMPLEMENTED")
        #expect(result["unknown_method"] as? String == "UNIMPLEMENTED")
        #expect((result["unknown_method_message"] as? String)?.contains("unknown method Nope") == true)
        #expect(result["unknown_service"] as? String == "UNIMPLEMENTED")
        #expect((result["unknown_service_message"] as? String)?.contains("unknown service no.such.Service") == true)
        #expect(result["two_mib"] as? String == "RESOURCE_EXHAUSTED")
        #expect((result["two_mib_message"] as? String)?.contains("GRPC_MAX_MESSAGE_BYTES") == true)
        #expect(result["invalid"] as? String == "INVALID_ARGUMENT")
        #expect(result["invalid_message"] as? String == "user_id: must not be empty")
        #expect(result["health"] as? String == "SERVING")
        #expect(result["health_watch"] as? String == "SERVING")
        // The refused events left nothing; the expired one was accepted and is written anyway.
        let users = try harness.server.query("SELECT DISTINCT user_id FROM user_goal_progress", database: harness.database)
        #expect(users.allSatisfy { $0[0] == "wire-deadline" })
        let metrics = try await harness.http.get("/metrics").body
        #expect(metrics.contains("grpc_server_handled_total{grpc_code=\"DeadlineExceeded\",grpc_method=\"OnMessage\",grpc_service=\"accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService\",grpc_type=\"unary\"} 1"))
        #expect(metrics.contains("grpc_server_oversized_messages_total 1"))
        #expect(try harness.stop() == 0)
    }

    @Test("a client that resets 1,000 streams, and one that disconnects mid-call: the server goes on")
    func resetsAndDisconnects() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: Self.catalog)
        for scenario in ["resets", "disconnect"] {
            let result = try Self.grpcio(harness.grpcPort, scenario, scenario == "resets" ? "1000" : "500")
            let codes = result["codes"] as? [String: Int] ?? [:]
            // Cancelled before its answer, or answered first: nothing else.
            #expect(Set(codes.keys).isSubset(of: ["CANCELLED", "OK"]), "\(scenario): \(codes)")
            #expect(codes.values.reduce(0, +) == (scenario == "resets" ? 1_000 : 500))
            #expect(result["after"] as? String == "OK", "\(scenario)")
        }
        try await Self.expectLogins(harness, users: ["wire-after-resets", "wire-after-disconnect"], logins: 1, timeout: .seconds(20))
        // Nothing is left open: every call was answered or forgotten.
        let metrics = try await harness.http.get("/metrics").body
        #expect(metrics.contains("grpc_server_connection_errors_total 0"))
        #expect(try harness.stop() == 0)
    }
}
