/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`, or
/// `redis://user@host…` for an ACL user whose password is given apart (`password` set later).
///
/// Only the plain TCP scheme; `rediss://` (TLS) is refused by name rather than silently sent in
/// clear text. A parse failure says which part is wrong, so the configuration error can name it.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int

    public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(parsing text: String) throws {
        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") { throw ParseError(description: "rediss:// (TLS) is not supported; use redis://") }
            throw ParseError(description: "must start with redis://")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                // `user@`: a name without a password (as redis-py, go-redis and node-redis read
                // it); the password comes from elsewhere.
                user = String(credentials)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else {
                    throw ParseError(description: "database \"\(path)\" is not a number")
                }
                database = number
            }
        }
        var host = rest
        var port = 6379
        if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let number = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(number) else {
                throw ParseError(description: "port \"\(rest[rest.index(after: colon)...])\" is not in 1...65535")
            }
            port = number
        }
        guard !host.isEmpty else { throw ParseError(description: "names no host") }
        // hiredis takes the host as a C string: a NUL would cut it short (a connection to another
        // host than the one logged), and no control character belongs in a host name.
        guard !host.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw ParseError(description: "host contains a control character")
        }
        self.init(host: String(host), port: port, user: user, password: password, database: database)
    }

    /// The URL with the password replaced, for logs.
    public var description: String {
        let credentials = password != nil ? "\(user ?? ""):***@" : user.map { "\($0)@" } ?? ""
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }
}
