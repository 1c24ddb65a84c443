import Redis
import Testing
import TestSupport

@Suite("Redis URL")
struct RedisURLTests {
    @Test func parsesEveryPart() throws {
        #expect(try RedisURL(parsing: "redis://cache:6380/2") == RedisURL(host: "cache", port: 6380, database: 2))
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost"))
        #expect(try RedisURL(parsing: "redis://:s3cret@h:1/") == RedisURL(host: "h", port: 1, password: "s3cret"))
        #expect(try RedisURL(parsing: "redis://app:p@ss@h") == RedisURL(host: "h", user: "app", password: "p@ss"))
    }

    @Test func refusesWhatItCannotUse() {
        for bad in ["localhost:6379", "rediss://h", "redis://h:0", "redis://h:x", "redis://h/-1", "redis://", "redis://:p@"] {
            #expect(throws: RedisURL.ParseError.self, "\(bad)") { try RedisURL(parsing: bad) }
        }
    }

    /// Found by the fuzz target `redis-url` (Fuzz/corpus/redis-url/crash-151831a6…): a host with a
    /// NUL was accepted, and hiredis, which takes the host as a C string, would have connected to
    /// the part before it while the logs named the whole.
    @Test func refusesControlCharactersInTheHost() {
        for bad in ["redis://:s3c\u{1C}\u{0}\u{0}e:6380/2", "redis://cache\u{0}.evil:6379", "redis://ca\nche", "redis://h\u{7F}"] {
            #expect(throws: RedisURL.ParseError.self, "\(bad.debugDescription)") { try RedisURL(parsing: bad) }
        }
    }

    @Test func hidesThePasswordInLogs() throws {
        let url = try RedisURL(parsing: "redis://app:topsecret@h:7/3")
        #expect("\(url)" == "redis://app:***@h:7/3")
    }
}

@Suite("Redis connection against a real redis-server", .serialized)
struct RedisConnectionTests {
    static func connect(_ server: RedisServer, password: String? = nil) throws -> RedisConnection {
        try RedisConnection(
            url: RedisURL(host: "127.0.0.1", port: server.port, password: password),
            connectTimeout: .seconds(2), commandTimeout: .seconds(2))
    }

    @Test func pipelinesInOrderWithBinarySafeArguments() throws {
        let server = try RedisServer()
        let connection = try Self.connect(server)
        var set = RedisCommand("SET", "k1")
        set.append(bytes: [0, 34, 39, 255, 10])  // a NUL, quotes, a byte that is not UTF-8
        let replies = try connection.pipeline([
            set, RedisCommand("GET", "k1"), RedisCommand("INCRBY", "n", "41"), RedisCommand("INCR", "n"),
            RedisCommand("GET", "missing"), RedisCommand("LPUSH", "k1", "x"),
        ])
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .string([0, 34, 39, 255, 10]))
        #expect(replies[2] == .integer(41))
        #expect(replies[3] == .integer(42))
        #expect(replies[4] == .null)
        guard case .error(let message) = replies[5] else {
            Issue.record("LPUSH on a string must be an error reply, got \(replies[5])")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        // The connection is still good after an error reply.
        #expect(try connection.command(RedisCommand("PING")) == .status("PONG"))
    }

    @Test func setIfAbsentReturnsWhatWasThere() throws {
        let server = try RedisServer()
        let connection = try Self.connect(server)
        let claim = RedisCommand("SET", "id", "mine", "NX", "PX", "60000", "GET")
        #expect(try connection.command(claim) == .null)
        #expect(try connection.command(RedisCommand("SET", "id", "theirs", "NX", "PX", "60000", "GET")) == .string(Array("mine".utf8)))
        #expect(try connection.command(RedisCommand("GET", "id")).text == "mine")
    }

    @Test func authenticatesWithThePasswordOfTheURL() throws {
        let server = try RedisServer()
        _ = try server.cli("CONFIG", "SET", "requirepass", "pw")
        #expect(throws: RedisError.self) { try Self.connect(server, password: "wrong") }
        let connection = try Self.connect(server, password: "pw")
        #expect(try connection.command(RedisCommand("PING")) == .status("PONG"))
        // Without a password the connection is refused at once, saying why (rather than up
        // while Redis answers every command NOAUTH): RedisAuthTests.
        #expect { try Self.connect(server) } throws: { "\($0)".contains("NOAUTH") }
    }

    @Test func aStoppedServerIsAnErrorNotAHang() throws {
        let server = try RedisServer()
        let connection = try Self.connect(server)
        #expect(try connection.command(RedisCommand("PING")) == .status("PONG"))
        try server.stop()
        #expect(throws: RedisError.self) { try connection.command(RedisCommand("PING")) }
        #expect(throws: RedisError.self) { try Self.connect(server) }
        try server.start()
        #expect(try Self.connect(server).command(RedisCommand("PING")) == .status("PONG"))
    }
}
