/// Where and how to connect to PostgreSQL (the `DB_*` settings).
public struct ConnectionSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    public var password: String?
    public var sslMode: String
    public var applicationName: String
    public var connectTimeout: Duration
    /// Server-side limit on one statement; nil for none.
    public var statementTimeout: Duration?

    public init(
        host: String = "localhost", port: Int = 5432, database: String, user: String = "postgres",
        password: String? = nil, sslMode: String = "disable", applicationName: String = "event-handler",
        connectTimeout: Duration = .seconds(5), statementTimeout: Duration? = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.sslMode = sslMode
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
    }

    /// The libpq keyword/value connection string, every value quoted.
    public var conninfo: String {
        var parts = [
            "host=\(Self.quote(host))", "port=\(port)", "dbname=\(Self.quote(database))",
            "user=\(Self.quote(user))", "sslmode=\(Self.quote(sslMode))",
            "application_name=\(Self.quote(applicationName))",
            "connect_timeout=\(max(1, Int(connectTimeout.components.seconds)))",
        ]
        if let password { parts.append("password=\(Self.quote(password))") }
        if let statementTimeout {
            let ms = statementTimeout.components.seconds * 1000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000
            parts.append("options=\(Self.quote("-c statement_timeout=\(ms)"))")
        }
        return parts.joined(separator: " ")
    }

    /// `user@host:port/database`, for logs and errors; never the password.
    public var redactedDescription: String {
        "\(user)@\(host):\(port)/\(database)"
    }

    private static func quote(_ value: String) -> String {
        var out = "'"
        for ch in value {
            if ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "'"
    }
}
