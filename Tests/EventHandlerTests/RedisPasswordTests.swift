import Foundation
import ServiceTestSupport
import TestSupport
import Testing

@testable import EventHandler

/// `REDIS_PASSWORD_FILE`: the service against a redis-server that wants a password, given in a
/// file (never in `REDIS_URL`), as `requirepass` and as an ACL user named in the URL; and what a
/// wrong or missing password does (start-up goes on, deduplication as while Redis is away,
/// `dedup_redis_up` 0, one log line naming the refusal).
@Suite("Redis password from a file", .serialized)
struct RedisPasswordTests {
    /// Writes `password` to a file of its own (mode 600, as a mounted secret) and returns its path.
    static func secretFile(_ password: String) throws -> String {
        let path = NSTemporaryDirectory() + "redis-password-\(UUID().uuidString.prefix(8))"
        try (password + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }

    /// One login sent twice: applied once, its id recorded in Redis (so the service wrote there
    /// through its authenticated connections), Redis up.
    static func expectDeduplicatedThroughRedis(_ harness: ServiceHarness, _ redis: RedisServer) async throws {
        try await harness.withClients { login, _ in
            for _ in 0..<2 { _ = try await login.onMessage(OperationsTests.login("player-1", id: "once-1")) }
        }
        try await DeduplicationTests.waitForMetric(harness.http, "flushes_total") { $0 >= 1 }
        let metrics = try await harness.http.metrics()
        #expect(metrics.value("dedup_redis_up") == 1)
        #expect(metrics.sum("dedup_duplicates_total") == 1)
        #expect(metrics.sum("events_processed_total") == 1)
        #expect(metrics.value("dedup_admitted_without_redis_total") == 0)
        // Claimed, then marked as committing in its flush (or recorded as committed).
        let value = try redis.cli("GET", "eh:dedup:test-ns:once-1")
        #expect(value == "c" || value.hasPrefix("k\t") || value.hasPrefix("p\t"), "\(value)")
        #expect(try harness.tableRows().keys.contains { $0.hasPrefix("player-1|") })
    }

    @Test("requirepass: REDIS_URL without a password, REDIS_PASSWORD_FILE with it: deduplicated through Redis, the password never logged", .timeLimit(.minutes(2)))
    func requirePassFromFile() async throws {
        let redis = try RedisServer(password: "pw-from-file-5c1e")
        let file = try Self.secretFile("pw-from-file-5c1e")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: TestCatalog().json, environment: ["REDIS_URL": redis.url, "REDIS_PASSWORD_FILE": file])
        try harness.process.waitForLog("redis reachable")
        try await Self.expectDeduplicatedThroughRedis(harness, redis)
        #expect(try harness.stop() == 0)
        #expect(harness.process.log.contains("redis=redis://:***@127.0.0.1:\(redis.port)/0"), "\(harness.process.log.prefix(3_000))")
        #expect(!harness.process.log.contains("pw-from-file-5c1e"))
    }

    @Test("an ACL user in REDIS_URL (redis://eh@host), its password in REDIS_PASSWORD_FILE, granted deduplication's commands only", .timeLimit(.minutes(2)))
    func aclUserFromURL() async throws {
        let redis = try RedisServer(password: "admin-pw-77aa")
        #expect(
            try redis.cli("ACL", "SETUSER", "eh", "on", ">eh-pw-31f0", "~eh:*", "+set", "+get", "+del", "+exists", "+pexpire", "+eval", "+ping", "+select")
                == "OK")
        let file = try Self.secretFile("eh-pw-31f0")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: TestCatalog().json,
            environment: ["REDIS_URL": "redis://eh@127.0.0.1:\(redis.port)/0", "REDIS_PASSWORD_FILE": file])
        try harness.process.waitForLog("redis reachable")
        // Its connections are logged in as eh (REDIS_POOL_SIZE, 2).
        let clientList = try redis.cli("CLIENT", "LIST")
        #expect(clientList.split(separator: "\n").filter { $0.contains(" user=eh ") }.count == 2, "\(clientList)")
        try await Self.expectDeduplicatedThroughRedis(harness, redis)
        #expect(try harness.stop() == 0)
        #expect(harness.process.log.contains("redis://eh:***@127.0.0.1:\(redis.port)/0"))
        // Nothing it sent, from start to shutdown, needed more than those grants.
        let denied = try redis.cli("ACL", "LOG")
        #expect(denied == "", "denied: \(denied)")
        #expect(!harness.process.log.contains("eh-pw-31f0"))
    }

    @Test(
        "a wrong password, or none where Redis wants one: the service starts, deduplicates in process, dedup_redis_up 0, and one log line says why",
        .timeLimit(.minutes(3)),
        arguments: [("wrong-pw-90b2", "authentication refused by 127.0.0.1:PORT (AUTH as the default user): WRONGPASS"), (nil, "it requires a password, and none was given: NOAUTH")]
            as [(String?, String)])
    func refused(password: String?, says: String) async throws {
        let redis = try RedisServer(password: "the-right-one-4d4d")
        let file = try password.map(Self.secretFile)
        defer { if let file { try? FileManager.default.removeItem(atPath: file) } }
        var environment = ["REDIS_URL": redis.url]
        environment["REDIS_PASSWORD_FILE"] = file
        let harness = try ServiceHarness(server: .shared, catalogJSON: TestCatalog().json, environment: environment)
        let expected = says.replacingOccurrences(of: "PORT", with: "\(redis.port)")
        try harness.process.waitForLog(expected)
        #expect(try await harness.http.metrics().value("dedup_redis_up") == 0)
        try await harness.withClients { login, _ in
            for _ in 0..<2 { _ = try await login.onMessage(OperationsTests.login("player-2", id: "twice-2")) }
        }
        try await DeduplicationTests.waitForMetric(harness.http, "dedup_duplicates_total", ["found_in": "memory"]) { $0 == 1 }
        #expect(try redis.cli("EXISTS", "eh:dedup:test-ns:twice-2") == "0")
        #expect(try harness.stop() == 0)
        let lines = harness.process.log.split(separator: "\n").filter { $0.contains(expected) }
        #expect(lines.count == 1, "\(harness.process.log.suffix(3_000))")
        print("refused: \(lines.first ?? "")")
        #expect(lines.first?.contains("redis refused the credentials (check REDIS_PASSWORD_FILE") == true)
        if let password { #expect(!harness.process.log.contains(password)) }
        #expect(!harness.process.log.contains("the-right-one-4d4d"))
    }

    static func settings(_ environment: [String: String]) throws -> Settings {
        try Settings(source: EnvironmentSource.load(envFile: "/nonexistent/.env", environment: ["AB_NAMESPACE": "ns"].merging(environment) { $1 }))
    }

    /// The `ConfigurationError` (as the log shows it) that `environment` stops start-up with.
    static func refusal(_ environment: [String: String]) -> String? {
        do {
            _ = try settings(environment)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("REDIS_PASSWORD_FILE with a password in REDIS_URL too, empty, or without REDIS_URL, and a user with no password: configuration errors naming the variable")
    func configurationErrors() throws {
        let file = try Self.secretFile("pw")
        let empty = try Self.secretFile("")
        defer {
            try? FileManager.default.removeItem(atPath: file)
            try? FileManager.default.removeItem(atPath: empty)
        }
        let url = try #require(try Self.settings(["REDIS_URL": "redis://eh@h:7/1", "REDIS_PASSWORD_FILE": file]).dedup.redis)
        #expect(url.user == "eh" && url.password == "pw" && url.host == "h" && url.port == 7 && url.database == 1)
        #expect(try Self.settings(["REDIS_URL": "redis://h", "REDIS_PASSWORD_FILE": file]).dedup.redis?.password == "pw")

        let both = try #require(Self.refusal(["REDIS_URL": "redis://:inline-pw@h", "REDIS_PASSWORD_FILE": file]))
        #expect(both.contains("REDIS_PASSWORD_FILE") && both.contains("REDIS_URL carries a password too"), "\(both)")
        #expect(!both.contains("inline-pw"))
        let blank = try #require(Self.refusal(["REDIS_URL": "redis://h", "REDIS_PASSWORD_FILE": empty]))
        #expect(blank.contains("REDIS_PASSWORD_FILE") && blank.contains("empty"), "\(blank)")
        let unreadable = try #require(Self.refusal(["REDIS_URL": "redis://h", "REDIS_PASSWORD_FILE": "/nonexistent/pw"]))
        #expect(unreadable.contains("REDIS_PASSWORD_FILE") && unreadable.contains("cannot read"), "\(unreadable)")
        let noURL = try #require(Self.refusal(["REDIS_PASSWORD_FILE": file]))
        #expect(noURL.contains("REDIS_PASSWORD_FILE") && noURL.contains("REDIS_URL is empty"), "\(noURL)")
        // A bare name (once, in some clients, a password) is a user now: without a password
        // anywhere it is refused, and not echoed.
        let userOnly = try #require(Self.refusal(["REDIS_URL": "redis://maybe-a-password@h"]))
        #expect(userOnly.contains("REDIS_URL") && userOnly.contains("REDIS_PASSWORD_FILE"), "\(userOnly)")
        #expect(!userOnly.contains("maybe-a-password"))
    }
}
