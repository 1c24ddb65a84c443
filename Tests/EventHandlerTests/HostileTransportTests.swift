import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// What reaches the gRPC port that is not a well-behaved gRPC client: thousands of idle
/// connections, HTTP/1.1, garbage, a call that stops half-way through its message. Every other
/// client keeps being served and the service's memory stays bounded.
@Suite("gRPC hostile transport", .serialized)
struct HostileTransportTests {
    @Test("3,000 idle connections, HTTP/1.1, garbage and a half message beside a client that keeps being served")
    func hostileNeighbours() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: GRPCWireTests.catalog)
        let pid = harness.process.process.processIdentifier
        let result = try GRPCWireTests.python("hostile_transport.py", harness.grpcPort, String(pid), "3000")
        print("hostile transport: \(result)")
        #expect(result["neighbour_codes"] as? [String: Int] == ["OK": 200])
        #expect(result["http1_closed"] as? Bool == true)
        #expect(result["garbage_closed"] as? Bool == true)
        // Idle connections are the idle timeout's (5 minutes by default) to close, not errors.
        #expect(result["idle_still_open"] as? Int == 3_000)
        let before = result["rss_before_kib"] as? Int ?? 0
        let loaded = result["rss_loaded_kib"] as? Int ?? .max
        let after = result["rss_after_kib"] as? Int ?? .max
        // About 3,000 connections' buffers and HTTP/2 state: bounded well under 200 MiB.
        #expect(loaded - before < 200 * 1_024, "RSS grew from \(before) KiB to \(loaded) KiB")
        #expect(after <= loaded + 16 * 1_024, "RSS after closing: \(after) KiB (loaded: \(loaded) KiB)")
        // The HTTP/1.1 and garbage connections (and the half message's, cut off mid-stream) are
        // protocol errors; the 3,000 idle connections the client closed are not.
        let metrics = try await harness.http.get("/metrics").body
        let errors = metrics.split(separator: "\n").first { $0.hasPrefix("grpc_server_connection_errors_total ") }
            .flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        #expect((2...3).contains(errors), "grpc_server_connection_errors_total \(errors)")
        #expect(try harness.stop() == 0)
    }

    @Test("connections past GRPC_MAX_CONNECTIONS are closed as they are accepted, and counted")
    func connectionLimit() async throws {
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: GRPCWireTests.catalog, environment: ["GRPC_MAX_CONNECTIONS": "20"])
        let result = try GRPCWireTests.python("hostile_transport.py", harness.grpcPort, "limit", "30")
        #expect(result["closed_by_server"] as? Int == 10)
        let metrics = try await harness.http.get("/metrics").body
        #expect(metrics.contains("grpc_server_connections_refused_total 10"))
        #expect(try harness.stop() == 0)
    }

    @Test("malformed request headers cost their own stream only: reset, counted, the next call on the connection answered")
    func malformedHeaders() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: GRPCWireTests.catalog)
        let result = try GRPCWireTests.python("hostile_transport.py", harness.grpcPort, "malformed")
        let cases = result["cases"] as? [String: [String: Any]] ?? [:]
        #expect(cases.count == 6)
        for (name, outcome) in cases {
            #expect(outcome["reset"] as? Int == 1, "\(name): stream 1 not reset with PROTOCOL_ERROR: \(outcome)")
            #expect(outcome["status"] as? String == "0", "\(name): the health check after it not answered OK: \(outcome)")
            #expect(outcome["open"] as? Bool == true, "\(name): the connection closed: \(outcome)")
        }
        let metrics = try await harness.http.get("/metrics").body
        #expect(metrics.contains("grpc_server_stream_errors_total 6\n"))
        #expect(metrics.contains("grpc_server_connection_errors_total 0\n"))
        #expect(try harness.stop() == 0)
    }
}
