import Redis

/// REDIS_URL text → `RedisURL(parsing:)`. Beyond not crashing: what it accepts has consistent
/// parts (a host, a port in 1…65535, a database ≥ 0, a user only when named, never with a `:`),
/// a host hiredis gets whole (no NUL: it is handed over as a C string), and written back as a
/// URL it parses to the same value; its description (for logs) parses to the same host, port,
/// user and database, with `***` for the password.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedisURL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // The environment and `.env` hand over text: the reader refuses bytes that are not UTF-8.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    guard let url = try? RedisURL(parsing: text) else { return 0 }
    require(!url.host.isEmpty, "an empty host")
    require((1...65_535).contains(url.port), "port \(url.port)")
    require(url.database >= 0, "database \(url.database)")
    if let user = url.user { require(!user.isEmpty && !user.contains(":"), "user \(user.debugDescription)") }
    require(!url.host.utf8.contains(0), "a NUL in host \(url.host.debugDescription): hiredis would connect elsewhere")

    let credentials = url.password.map { "\(url.user ?? ""):\($0)@" } ?? url.user.map { "\($0)@" } ?? ""
    let written = "redis://\(credentials)\(url.host):\(url.port)/\(url.database)"
    require((try? RedisURL(parsing: written)) == url, "\(text.debugDescription) written back as \(written.debugDescription) reads differently")

    let logged = url.description
    if url.password != nil {
        require(logged == "redis://\(url.user ?? ""):***@\(url.host):\(url.port)/\(url.database)", "the description \(logged.debugDescription) shows the password")
    }
    guard let reread = try? RedisURL(parsing: logged) else { fail("the description \(logged.debugDescription) does not parse") }
    require(
        reread.host == url.host && reread.port == url.port && reread.database == url.database && reread.user == url.user,
        "the description \(logged.debugDescription) names another server or user")
    return 0
}

private func require(_ condition: Bool, _ property: @autoclosure () -> String) {
    if !condition { fail(property()) }
}

private func fail(_ property: String) -> Never {
    fatalError("fuzz-redis-url: property violated: \(property)")
}
