import CHiredis

/// hiredis's reply parser on bytes handed to it, with no connection: the parser and the copy
/// into `RedisReply` that `RedisConnection` reads its replies with, apart from the socket, so
/// hostile or broken replies can be tried in process (the fuzz target `redis-reply`, tests).
///
/// Not thread-safe: one owner at a time. After an error the reader is broken; make a new one.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis: cannot allocate a reply reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Appends `bytes` to what the reader holds.
    public func feed(_ bytes: [UInt8]) throws {
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        guard status == REDIS_OK else { throw RedisError(Self.errorText(reader)) }
    }

    /// The next complete reply, or nil when the bytes fed so far hold none (yet). Throws on a
    /// protocol error (hiredis's message).
    public func next() throws -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw RedisError(Self.errorText(reader)) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self))
    }

    private static func errorText(_ reader: UnsafeMutablePointer<redisReader>) -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "protocol error" : String(decoding: bytes, as: UTF8.self)
        }
    }
}

extension RedisReply {
    /// A copy of hiredis's reply object (which the caller still frees).
    init(copying reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .string(r.str.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(r.len))) } ?? [])
        case REDIS_REPLY_STATUS:
            self = .status(Self.text(r))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(r))
        case REDIS_REPLY_INTEGER:
            self = .integer(r.integer)
        case REDIS_REPLY_ARRAY:
            self = .array((0..<Int(r.elements)).compactMap { i in r.element[i].map { RedisReply(copying: $0) } })
        default:
            self = .null
        }
    }

    private static func text(_ r: redisReply) -> String {
        guard let str = r.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: Int(r.len)), as: UTF8.self)
    }
}
