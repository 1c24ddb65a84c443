import Redis

/// Bytes from a Redis server → hiredis's reply reader → `RedisReply`, the path every reply of
/// `RedisConnection` takes. The input is fed in two pieces (split where its first byte says), as
/// a socket delivers it. Beyond not crashing: the replies read, encoded again in RESP and read by
/// a fresh reader in one piece, come back equal.
///
/// hiredis is Debian's shared library, not instrumented: libFuzzer's coverage (and
/// AddressSanitizer's checks) cover the copy into `RedisReply` and what reads it, hiredis's own
/// parser only through what it returns.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedisReply(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    let split = bytes.isEmpty ? 0 : Int(first) % (bytes.count + 1)
    let reader = RedisReplyReader()
    var replies: [RedisReply] = []
    do {
        for piece in [Array(bytes[..<split]), Array(bytes[split...])] {
            try reader.feed(piece)
            while let reply = try reader.next() { replies.append(reply) }
        }
    } catch {
        require("\(error)".utf8.count < 1_000, "an error message of \("\(error)".utf8.count) bytes")
        return 0
    }
    guard !replies.isEmpty else { return 0 }
    var encoded: [UInt8] = []
    for reply in replies { encode(reply, into: &encoded) }
    let again = RedisReplyReader()
    var reread: [RedisReply] = []
    do {
        try again.feed(encoded)
        while let reply = try again.next() { reread.append(reply) }
    } catch {
        fail("the replies re-encoded do not read: \(error)")
    }
    require(reread == replies, "\(replies) re-encoded reads as \(reread)")
    return 0
}

/// RESP2, as a server writes it.
private func encode(_ reply: RedisReply, into out: inout [UInt8]) {
    func line(_ prefix: Character, _ text: String) {
        out.append(contentsOf: "\(prefix)\(text)\r\n".utf8)
    }
    switch reply {
    case .string(let bytes):
        line("$", "\(bytes.count)")
        out.append(contentsOf: bytes)
        out.append(contentsOf: "\r\n".utf8)
    case .status(let text): line("+", text)
    case .error(let text): line("-", text)
    case .integer(let value): line(":", "\(value)")
    case .null: line("$", "-1")
    case .array(let elements):
        line("*", "\(elements.count)")
        for element in elements { encode(element, into: &out) }
    }
}

private func require(_ condition: Bool, _ property: @autoclosure () -> String) {
    if !condition { fail(property()) }
}

private func fail(_ property: String) -> Never {
    fatalError("fuzz-redis-reply: property violated: \(property)")
}
