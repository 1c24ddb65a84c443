/// A failure to talk to Redis: the connection is unusable afterwards and is dropped.
/// (An error *reply* to one command is not this: it is `RedisReply.error`.)
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
