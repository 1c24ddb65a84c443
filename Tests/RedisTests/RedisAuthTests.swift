import Redis
import TestSupport
import Testing

/// Logging in to a Redis that wants a password: `requirepass` (the default user) and an ACL user
/// (`AUTH user password`), against a real redis-server; and what a refusal says.
@Suite("Redis authentication against a real redis-server", .serialized)
struct RedisAuthTests {
    static func connect(_ server: RedisServer, user: String? = nil, password: String?) throws -> RedisConnection {
        try RedisConnection(
            url: RedisURL(host: "127.0.0.1", port: server.port, user: user, password: password),
            connectTimeout: .seconds(2), commandTimeout: .seconds(2))
    }

    /// The message of the `RedisError` `body` throws, or nil if it connects.
    static func refusal(_ body: () throws -> RedisConnection) -> String? {
        do {
            _ = try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("redis://user@host names an ACL user whose password comes apart; the log form shows the user, never the password")
    func userWithoutPassword() throws {
        let url = try RedisURL(parsing: "redis://eh@cache:6380/1")
        #expect(url == RedisURL(host: "cache", port: 6380, user: "eh", database: 1))
        #expect("\(url)" == "redis://eh@cache:6380/1")
        var withPassword = url
        withPassword.password = "from-a-file"
        #expect("\(withPassword)" == "redis://eh:***@cache:6380/1")
        #expect(try RedisURL(parsing: "redis://:pw@h").user == nil)
    }

    @Test("requirepass: the right password logs in; a wrong one, or none, is refused saying so")
    func requirePass() throws {
        let server = try RedisServer(password: "s3cret-pw")
        let connection = try Self.connect(server, password: "s3cret-pw")
        #expect(try connection.command(RedisCommand("PING")) == .status("PONG"))

        let wrong = try #require(Self.refusal { try Self.connect(server, password: "not-it") })
        #expect(wrong.contains("authentication refused by 127.0.0.1:\(server.port) (AUTH as the default user)"), "\(wrong)")
        #expect(wrong.contains("WRONGPASS"), "\(wrong)")
        #expect(!wrong.contains("not-it"))

        // Without a password, a server that wants one is refused at connect (not a connection
        // that is up while every command fails NOAUTH).
        let none = try #require(Self.refusal { try Self.connect(server, password: nil) })
        #expect(none.contains("requires a password") && none.contains("NOAUTH"), "\(none)")
    }

    @Test("an ACL user with deduplication's commands only: AUTH user password logs in as that user")
    func aclUser() throws {
        let server = try RedisServer(password: "admin-pw")
        #expect(try server.cli("ACL", "SETUSER", "eh", "on", ">eh-pw", "~eh:*", "+set", "+get", "+del", "+exists", "+pexpire", "+eval", "+ping", "+select") == "OK")
        let connection = try Self.connect(server, user: "eh", password: "eh-pw")
        #expect(try connection.command(RedisCommand("PING")) == .status("PONG"))
        #expect(try connection.command(RedisCommand("SET", "eh:dedup:ns:x", "c")) == .status("OK"))
        guard case .error(let denied) = try connection.command(RedisCommand("SET", "other:x", "c")) else {
            Issue.record("a key outside eh:* was writable")
            return
        }
        #expect(denied.hasPrefix("NOPERM"))

        let wrong = try #require(Self.refusal { try Self.connect(server, user: "eh", password: "admin-pw") })
        #expect(wrong.contains("AUTH as user \"eh\"") && wrong.contains("WRONGPASS"), "\(wrong)")
    }
}
