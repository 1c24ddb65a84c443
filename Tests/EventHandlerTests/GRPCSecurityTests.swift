import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// TLS, client certificates and the bearer token on the gRPC port, with real handshakes against
/// a client we did not write (Python grpcio, Tests/wire/grpcio_secure.py) and certificates made
/// for the test by openssl.
@Suite("gRPC security: TLS, client certificates, token", .serialized)
struct GRPCSecurityTests {
    static let catalog = GRPCWireTests.catalog

    @Test("TLS with client certificates and a token: only a trusted client with the token is served; health needs no token")
    func mutualTLSAndToken() async throws {
        let certificates = try TestCertificates.make(name: "grpc-ca")
        let stranger = try TestCertificates.make(name: "other-ca")
        defer { certificates.remove(); stranger.remove() }
        let tokenFile = certificates.directory + "/token"
        try "s3cret-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: Self.catalog,
            environment: [
                "GRPC_TLS_CERT_FILE": certificates.serverCertificate, "GRPC_TLS_KEY_FILE": certificates.serverKey,
                "GRPC_TLS_CLIENT_CA_FILE": certificates.caCertificate, "GRPC_AUTH_TOKEN_FILE": tokenFile,
            ])
        let client = try SecureClient(port: harness.grpcPort)
        defer { client.stop() }
        let trusted: [String: String] = [
            "ca": certificates.caCertificate, "cert": certificates.clientCertificate, "key": certificates.clientKey,
        ]

        #expect(try client.call("good", trusted.merging(["token": "s3cret-token"]) { $1 }).code == "OK")
        let missing = try client.call("good", trusted)
        #expect(missing.code == "UNAUTHENTICATED")
        #expect(missing.details.contains("authorization: Bearer"), "\(missing)")
        #expect(try client.call("good", trusted.merging(["token": "s3cret-tokeN"]) { $1 }).code == "UNAUTHENTICATED")
        #expect(try client.call("good", trusted.merging(["token": "s3cret-token-and-more"]) { $1 }).code == "UNAUTHENTICATED")
        // Without the token a caller cannot tell an unknown method from a known one.
        #expect(try client.call("good", trusted.merging(["call": "unknown"]) { $1 }).code == "UNAUTHENTICATED")
        #expect(try client.call("good", trusted.merging(["call": "health"]) { $1 }).code == "SERVING")

        // Refused in the handshake: no client certificate, a client certificate of another CA,
        // a server the client does not trust, plaintext.
        let noCertificate = ["ca": certificates.caCertificate, "token": "s3cret-token"]
        #expect(try client.call("no-cert", noCertificate).code == "UNAVAILABLE")
        let foreign = ["ca": certificates.caCertificate, "cert": stranger.clientCertificate, "key": stranger.clientKey, "token": "s3cret-token"]
        #expect(try client.call("foreign-cert", foreign).code == "UNAVAILABLE")
        let untrusting = ["ca": stranger.caCertificate, "cert": certificates.clientCertificate, "key": certificates.clientKey]
        #expect(try client.call("wrong-ca", untrusting.merging(["token": "s3cret-token"]) { $1 }).code == "UNAVAILABLE")
        #expect(try client.call("plaintext", ["token": "s3cret-token"]).code == "UNAVAILABLE")

        let metrics = try await harness.http.get("/metrics").body
        #expect(metrics.contains("grpc_server_unauthenticated_total 4"), "\(metrics)")
        #expect(!metrics.contains("grpc_server_tls_handshake_failures_total 0\n"), "\(metrics)")
        try await GRPCWireTests.expectLogins(harness, users: ["secure-user"], logins: 1, timeout: .seconds(20))
        #expect(try harness.stop() == 0)
    }

    @Test("SIGHUP reloads the token and the certificate; open connections stay; a bad file keeps the old ones")
    func reloadOnHangup() async throws {
        let first = try TestCertificates.make(name: "first-ca")
        let second = try TestCertificates.make(name: "second-ca")
        defer { first.remove(); second.remove() }
        let live = first.directory + "/live"
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        let certificate = live + "/server.pem", key = live + "/server.key", tokenFile = live + "/token"
        func install(_ certificates: TestCertificates, token: String) throws {
            try? FileManager.default.removeItem(atPath: certificate)
            try? FileManager.default.removeItem(atPath: key)
            try FileManager.default.copyItem(atPath: certificates.serverCertificate, toPath: certificate)
            try FileManager.default.copyItem(atPath: certificates.serverKey, toPath: key)
            try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        }
        try install(first, token: "old-token")
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: Self.catalog,
            environment: ["GRPC_TLS_CERT_FILE": certificate, "GRPC_TLS_KEY_FILE": key, "GRPC_AUTH_TOKEN_FILE": tokenFile])
        let client = try SecureClient(port: harness.grpcPort)
        defer { client.stop() }
        #expect(try client.call("kept", ["ca": first.caCertificate, "token": "old-token"]).code == "OK")

        try install(second, token: "new-token")
        harness.process.signal(SIGHUP)
        try harness.process.waitForLog("SIGHUP: reloaded")
        // The connection made before the reload is still served, and hears the new token.
        #expect(try client.call("kept", ["token": "new-token"]).code == "OK")
        #expect(try client.call("kept", ["token": "old-token"]).code == "UNAUTHENTICATED")
        // New connections get the new certificate.
        #expect(try client.call("new-ca", ["ca": second.caCertificate, "token": "new-token"]).code == "OK")
        #expect(try client.call("old-ca", ["ca": first.caCertificate, "token": "new-token"]).code == "UNAVAILABLE")

        // A broken key file: the reload fails, says so, and the service goes on with what it had.
        try "not a key".write(toFile: key, atomically: true, encoding: .utf8)
        harness.process.signal(SIGHUP)
        try harness.process.waitForLog("SIGHUP: reload failed")
        #expect(try client.call("after-failure", ["ca": second.caCertificate, "token": "new-token"]).code == "OK")
        let metrics = try await harness.http.get("/metrics").body
        #expect(metrics.contains("grpc_server_security_reloads_total{result=\"ok\"} 1"), "\(metrics)")
        #expect(metrics.contains("grpc_server_security_reloads_total{result=\"failed\"} 1"), "\(metrics)")
        #expect(try harness.stop() == 0)
    }

    @Test("bad security settings stop start-up naming the variable", arguments: [
        ("GRPC_TLS_KEY_FILE", "certificate without key"),
        ("GRPC_TLS_CLIENT_CA_FILE", "client CA without TLS"),
        ("GRPC_TLS_CERT_FILE", "key of another certificate"),
        ("GRPC_AUTH_TOKEN_FILE", "empty token"),
        ("GRPC_AUTH_TOKEN_FILE", "missing token file"),
    ])
    func badSettings(variable: String, case name: String) throws {
        let certificates = try TestCertificates.make(name: "bad-settings")
        let other = try TestCertificates.make(name: "bad-settings-other")
        defer { certificates.remove(); other.remove() }
        let empty = certificates.directory + "/empty-token"
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let environment: [String: String] =
            switch name {
            case "certificate without key": ["GRPC_TLS_CERT_FILE": certificates.serverCertificate]
            case "client CA without TLS": ["GRPC_TLS_CLIENT_CA_FILE": certificates.caCertificate]
            case "key of another certificate":
                ["GRPC_TLS_CERT_FILE": certificates.serverCertificate, "GRPC_TLS_KEY_FILE": other.serverKey]
            case "empty token": ["GRPC_AUTH_TOKEN_FILE": empty]
            default: ["GRPC_AUTH_TOKEN_FILE": certificates.directory + "/no-such-file"]
            }
        let (status, log) = try ConfigurationTests.checkConfig(environment)
        #expect(status == 2, "\(name): \(log)")
        #expect(log.contains("configuration error: \(variable)"), "\(name): \(log)")
    }
}

/// grpcio_secure.py as a child process, one step per line.
private final class SecureClient {
    private let process = Process()
    private let input: FileHandle
    private let lines: LineReader

    struct Answer: CustomStringConvertible {
        let code: String
        let details: String
        var description: String { "\(code): \(details)" }
    }

    init(port: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", PostgresServer.repositoryRoot + "/Tests/wire/grpcio_secure.py", String(port)]
        let output = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardInput = stdin
        process.standardError = FileHandle.standardError
        try process.run()
        input = stdin.fileHandleForWriting
        lines = LineReader(output.fileHandleForReading)
    }

    /// One call on channel `channel` (made with `options` on first use).
    func call(_ channel: String, _ options: [String: String]) throws -> Answer {
        var step: [String: String] = options
        step["channel"] = channel
        input.write(try JSONSerialization.data(withJSONObject: step) + Data("\n".utf8))
        guard let line = lines.next(),
            let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
            let code = answer["code"]
        else { throw TestFailure("grpcio_secure.py gave no answer for \(step)") }
        return Answer(code: code, details: answer["details"] ?? "")
    }

    func stop() {
        try? input.close()
        process.waitUntilExit()
    }
}
