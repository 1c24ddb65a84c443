import CHiredis
import Foundation

/// One blocking connection to Redis over hiredis: connect (with `AUTH` and `SELECT` from the
/// URL; without a password, a `PING` that finds out whether the server wants one), then
/// pipelines of commands. Every call blocks its thread for up to the command timeout,
/// so it belongs on a thread its owner made for it, never on the cooperative pool.
///
/// Not thread-safe: one owner thread at a time. After a `RedisError` the connection is broken;
/// make a new one.
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    public let url: RedisURL

    /// Connects within `connectTimeout`; every later read or write waits at most `commandTimeout`.
    public init(url: RedisURL, connectTimeout: Duration, commandTimeout: Duration) throws {
        self.url = url
        guard let context = redisConnectWithTimeout(url.host, Int32(url.port), Self.timeval(connectTimeout)) else {
            throw RedisError("cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError("connect to \(url.host):\(url.port): \(message)")
        }
        self.context = context
        guard redisSetTimeout(context, Self.timeval(commandTimeout)) == REDIS_OK else {
            throw RedisError("set timeout: \(Self.errorText(context))")
        }
        if let password = url.password {
            let auth = url.user.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password)
            if case .error(let message) = try command(auth) {
                let who = url.user.map { "user \"\($0)\"" } ?? "the default user"
                throw RedisError("authentication refused by \(url.host):\(url.port) (AUTH as \(who)): \(message)")
            }
        } else if case .error(let message) = try command(RedisCommand("PING")) {
            // A server that wants a password answers every command NOAUTH: not a connection
            // that is up, but one to refuse now, saying why.
            let hint = message.hasPrefix("NOAUTH") ? "it requires a password, and none was given: " : ""
            throw RedisError("\(url.host):\(url.port) refused PING: \(hint)\(message)")
        }
        if url.database != 0, case .error(let message) = try command(RedisCommand("SELECT", "\(url.database)")) {
            throw RedisError("SELECT \(url.database) refused: \(message)")
        }
    }

    deinit {
        redisFree(context)
    }

    /// Sends one command and reads its reply.
    public func command(_ command: RedisCommand) throws -> RedisReply {
        try pipeline([command])[0]
    }

    /// Sends every command in one write, then reads their replies in order: one round trip for
    /// the lot. A reply that is a Redis error comes back as `.error`; a broken connection throws.
    public func pipeline(_ commands: [RedisCommand]) throws -> [RedisReply] {
        var request: [UInt8] = []
        request.reserveCapacity(commands.reduce(0) { $0 + $1.encodedArguments.count + 8 })
        for command in commands { command.encode(into: &request) }
        let status = request.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        guard status == REDIS_OK else { throw RedisError(Self.errorText(context)) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw RedisError(Self.errorText(context))
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(RedisReply(copying: reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "connection lost" : String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func timeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Foundation.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
