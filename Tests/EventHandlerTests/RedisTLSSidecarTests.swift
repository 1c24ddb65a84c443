import Foundation
import ServiceTestSupport
import TestSupport
import Testing

/// The compose file's recipe for Redis over TLS, run for real: deploy/stunnel/redis-tls.conf in
/// a local stunnel, between the service and a redis-server whose TLS port has a certificate the
/// test makes. The service speaks plain Redis to stunnel (its hiredis has no TLS); stunnel checks
/// the server's certificate against the CA and its name.
@Suite("Redis over TLS through the stunnel sidecar", .serialized)
struct RedisTLSSidecarTests {
    /// stunnel running the repository's recipe with its three marked lines pointed here.
    final class Sidecar {
        let process = Process()
        let port: Int
        let directory: String

        init(redisTLSPort: Int, caFile: String) throws {
            port = try PostgresServer.freeLoopbackPort()
            directory = NSTemporaryDirectory() + "stunnel-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let recipe = try String(contentsOfFile: PostgresServer.repositoryRoot + "/deploy/stunnel/redis-tls.conf", encoding: .utf8)
            var configuration = recipe
            for (from, to) in [
                ("accept = 0.0.0.0:6379", "accept = 127.0.0.1:\(port)"),
                ("connect = redis.example.com:6380", "connect = 127.0.0.1:\(redisTLSPort)"),
                ("checkHost = redis.example.com", "checkHost = localhost"),
                ("CAfile = /etc/stunnel/redis-ca.pem", "CAfile = \(caFile)"),
            ] {
                guard configuration.contains(from) else { throw TestFailure("the recipe no longer has the line \"\(from)\"") }
                configuration = configuration.replacingOccurrences(of: from, with: to)
            }
            try configuration.write(toFile: directory + "/redis-tls.conf", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/stunnel4")
            process.arguments = [directory + "/redis-tls.conf"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Listening once a connection is accepted.
            try waitUntil("stunnel listening on \(port)", timeout: .seconds(10)) {
                let socket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(socket) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                return withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
                }
            }
        }

        /// SIGKILL: a child started from this process may have SIGTERM blocked (libdispatch
        /// blocks signals on its threads, and the mask is inherited).
        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(atPath: directory)
        }

        deinit { stop() }
    }

    /// A Redis with a password and, besides its plain port, a TLS port with `certificates`' server
    /// certificate; returns it and the TLS port.
    static func tlsRedis(_ certificates: TestCertificates, password: String) throws -> (RedisServer, Int) {
        let redis = try RedisServer(password: password)
        let tlsPort = try PostgresServer.freeLoopbackPort()
        for (key, value) in [
            ("tls-cert-file", certificates.serverCertificate), ("tls-key-file", certificates.serverKey),
            ("tls-ca-cert-file", certificates.caCertificate), ("tls-auth-clients", "no"), ("tls-port", "\(tlsPort)"),
        ] {
            let answer = try redis.cli("CONFIG", "SET", key, value)
            guard answer == "OK" else { throw TestFailure("CONFIG SET \(key) answered \(answer)") }
        }
        return (redis, tlsPort)
    }

    @Test("the service deduplicates through stunnel and Redis's TLS port, its AUTH carried through", .timeLimit(.minutes(2)))
    func throughTheSidecar() async throws {
        let certificates = try TestCertificates.make(name: "redis-ca")
        defer { certificates.remove() }
        let (redis, tlsPort) = try Self.tlsRedis(certificates, password: "tls-pw-9e2b")
        let sidecar = try Sidecar(redisTLSPort: tlsPort, caFile: certificates.caCertificate)
        defer { sidecar.stop() }
        let file = try RedisPasswordTests.secretFile("tls-pw-9e2b")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: TestCatalog().json,
            environment: ["REDIS_URL": "redis://127.0.0.1:\(sidecar.port)/0", "REDIS_PASSWORD_FILE": file])
        try harness.process.waitForLog("redis reachable")
        // Every client Redis sees came in on its TLS port: the service's two connections, through
        // stunnel (CLIENT LIST names the local address each connection reached).
        let clients = try redis.cli("CLIENT", "LIST").split(separator: "\n").filter { !$0.contains("cmd=client") }
        #expect(clients.count == 2, "\(clients)")
        #expect(clients.allSatisfy { $0.contains("laddr=127.0.0.1:\(tlsPort) ") }, "\(clients)")
        try await RedisPasswordTests.expectDeduplicatedThroughRedis(harness, redis)
        #expect(try harness.stop() == 0)
    }

    @Test("a Redis whose certificate another CA signed: stunnel refuses it, the service counts Redis down and says so", .timeLimit(.minutes(2)))
    func untrustedCertificate() async throws {
        let certificates = try TestCertificates.make(name: "redis-ca")
        let stranger = try TestCertificates.make(name: "other-ca")
        defer { certificates.remove(); stranger.remove() }
        let (redis, tlsPort) = try Self.tlsRedis(certificates, password: "tls-pw-9e2b")
        let sidecar = try Sidecar(redisTLSPort: tlsPort, caFile: stranger.caCertificate)
        defer { sidecar.stop() }
        let file = try RedisPasswordTests.secretFile("tls-pw-9e2b")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: TestCatalog().json,
            environment: ["REDIS_URL": "redis://127.0.0.1:\(sidecar.port)/0", "REDIS_PASSWORD_FILE": file])
        try harness.process.waitForLog("redis unreachable")
        #expect(try await harness.http.metrics().value("dedup_redis_up") == 0)
        // No connection reached Redis: the handshake failed before any command.
        let clients = try redis.cli("CLIENT", "LIST").split(separator: "\n").filter { !$0.contains("cmd=client") }
        #expect(clients.isEmpty, "\(clients)")
        #expect(try harness.stop() == 0)
    }
}
