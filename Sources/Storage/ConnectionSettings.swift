/// Where and how to connect to PostgreSQL (the `DB_*` settings).
///
/// `description` is `redactedDescription`, so interpolating settings into a log line never
/// shows the password; only `conninfo` carries it, and it is handed to libpq alone.
public struct ConnectionSettings: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    public var password: String?
    /// libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-full`, …).
    public var sslMode: String
    /// libpq's `sslrootcert`: a file of CA certificates the server's certificate must chain to
    /// (`verify-ca`, `verify-full`); nil: libpq's default (`~/.postgresql/root.crt`).
    public var sslRootCert: String?
    /// libpq's `sslcert` and `sslkey`: a client certificate and its private key, for a server
    /// that asks for one (`clientcert=verify-full`, `cert` authentication); nil: libpq's default.
    public var sslCert: String?
    public var sslKey: String?
    /// Shown in `pg_stat_activity.application_name`.
    public var applicationName: String
    /// How long opening a connection may take (libpq counts whole seconds, at least 2).
    public var connectTimeout: Duration
    /// Server-side limit on one statement (sent as `options='-c statement_timeout=…'`); nil for none.
    public var statementTimeout: Duration?
    /// Client-side limit on one libpq call, whatever the server does (a black-holed path answers
    /// nothing, so `statement_timeout` never fires): past it the socket is shut down and the
    /// call fails (`PostgresConnection`); also TCP keepalives and `tcp_user_timeout`, so an idle
    /// connection to a vanished server is found within it. nil: no bound.
    public var callTimeout: Duration?

    public init(
        host: String = "localhost", port: Int = 5432, database: String, user: String = "postgres",
        password: String? = nil, sslMode: String = "disable", sslRootCert: String? = nil, sslCert: String? = nil,
        sslKey: String? = nil, applicationName: String = "event-handler", connectTimeout: Duration = .seconds(5),
        statementTimeout: Duration? = .seconds(30), callTimeout: Duration? = nil
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.sslMode = sslMode
        self.sslRootCert = sslRootCert
        self.sslCert = sslCert
        self.sslKey = sslKey
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
        self.callTimeout = callTimeout
    }

    /// The libpq keyword/value connection string, every value quoted. Holds the password:
    /// pass it to libpq, never to a log.
    public var conninfo: String {
        var parts = [
            "host=\(Self.quoted(host))",
            "port=\(port)",
            "dbname=\(Self.quoted(database))",
            "user=\(Self.quoted(user))",
            "sslmode=\(Self.quoted(sslMode))",
            "application_name=\(Self.quoted(applicationName))",
            "connect_timeout=\(Self.wholeSecondsRoundedUp(connectTimeout))",
            // Results are decoded as UTF-8 whatever the database's encoding.
            "client_encoding='UTF8'",
        ]
        if let sslRootCert { parts.append("sslrootcert=\(Self.quoted(sslRootCert))") }
        if let sslCert { parts.append("sslcert=\(Self.quoted(sslCert))") }
        if let sslKey { parts.append("sslkey=\(Self.quoted(sslKey))") }
        if let password { parts.append("password=\(Self.quoted(password))") }
        if let callTimeout {
            // Keepalive probes from a third of the bound on, three of them: an idle connection
            // to a peer that vanished is found within about the bound; tcp_user_timeout ends one
            // whose sent data goes unacknowledged that long.
            let seconds = Self.wholeSecondsRoundedUp(callTimeout)
            parts.append("keepalives=1")
            parts.append("keepalives_idle=\(max(1, seconds / 3))")
            parts.append("keepalives_interval=\(max(1, seconds / 9))")
            parts.append("keepalives_count=3")
            parts.append("tcp_user_timeout=\(Self.milliseconds(callTimeout))")
        }
        if let statementTimeout {
            parts.append("options=\(Self.quoted("-c statement_timeout=\(Self.milliseconds(statementTimeout))"))")
        }
        return parts.joined(separator: " ")
    }

    /// `user@host:port/database`: for logs and errors, never the password (nor the TLS file paths).
    public var redactedDescription: String {
        "\(user)@\(host):\(port)/\(database)"
    }

    public var description: String { redactedDescription }

    /// libpq's quoting: single quotes around the value, `\` before `'` and `\`.
    private static func quoted(_ value: String) -> String {
        var out = "'"
        for character in value {
            if character == "'" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        out.append("'")
        return out
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return Swift.max(0, seconds * 1_000 + attoseconds / 1_000_000_000_000_000)
    }

    /// A duration as the settings write it: `30s`, `1500ms`.
    static func shown(_ duration: Duration) -> String {
        let milliseconds = milliseconds(duration)
        return milliseconds % 1_000 == 0 ? "\(milliseconds / 1_000)s" : "\(milliseconds)ms"
    }

    private static func wholeSecondsRoundedUp(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return Swift.max(1, seconds + (attoseconds > 0 ? 1 : 0))
    }
}
