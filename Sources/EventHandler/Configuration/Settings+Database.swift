import Foundation
import Storage

extension Settings {
    /// `DB_*` and `FLUSH_WORKERS`: where PostgreSQL is, how to reach it, and the pool's limits
    /// (the flush workers each hold a connection, so the two are checked together); and the
    /// migration role's connection (`DB_MIGRATION_USER`), nil when migrations run as `DB_USER`.
    static func databaseSettings(
        _ reader: SettingsReader, flushWorkers defaultWorkers: Int
    ) throws -> (ConnectionSettings, migration: ConnectionSettings?, PoolLimits, flushWorkers: Int) {
        var password = try reader.string("DB_PASSWORD")
        if let secret = try reader.file("DB_PASSWORD_FILE") {
            guard password == nil else {
                throw ConfigurationError(variable: "DB_PASSWORD_FILE", message: "set DB_PASSWORD or DB_PASSWORD_FILE, not both")
            }
            password = secret
        }
        let sslMode = try reader.string("DB_SSLMODE") ?? "disable"
        let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
        guard sslModes.contains(sslMode) else {
            throw ConfigurationError(variable: "DB_SSLMODE", message: "must be one of \(sslModes.joined(separator: ", ")), got \"\(sslMode)\"")
        }
        let sslCert = try readablePath(reader.string("DB_SSLCERT"), variable: "DB_SSLCERT")
        let sslKey = try readablePath(reader.string("DB_SSLKEY"), variable: "DB_SSLKEY")
        if (sslCert == nil) != (sslKey == nil) {
            throw ConfigurationError(
                variable: sslCert == nil ? "DB_SSLCERT" : "DB_SSLKEY", message: "is needed too: set DB_SSLCERT and DB_SSLKEY together")
        }
        // The server's bound on a statement, and the client's on a call, which must be longer: a
        // statement the server times out is a query error on a connection that stays; only a
        // call the server never answers is cut.
        let statementTimeout = try reader.duration("DB_STATEMENT_TIMEOUT", positive: true) ?? .seconds(20)
        let callTimeout = try reader.optionalDuration("DB_CALL_TIMEOUT", default: .seconds(25))
        if let callTimeout, callTimeout <= statementTimeout {
            throw ConfigurationError(
                variable: "DB_CALL_TIMEOUT",
                message: "(\(callTimeout)) must be longer than DB_STATEMENT_TIMEOUT (\(statementTimeout)), or 0 for no bound")
        }
        let database = ConnectionSettings(
            host: try reader.string("DB_HOST") ?? "localhost",
            port: try reader.int("DB_PORT", in: 1...65_535) ?? 5432,
            database: try reader.string("DB_NAME") ?? "challenge_db",
            user: try reader.string("DB_USER") ?? "postgres",
            password: password,
            sslMode: sslMode,
            sslRootCert: try readablePath(reader.string("DB_SSLROOTCERT"), variable: "DB_SSLROOTCERT"),
            sslCert: sslCert,
            sslKey: sslKey,
            applicationName: "event-handler",
            connectTimeout: try reader.duration("DB_CONNECT_TIMEOUT", positive: true) ?? .seconds(5),
            statementTimeout: statementTimeout,
            callTimeout: callTimeout
        )
        // The migration role: the same server, database and TLS settings, its own user and a
        // password from a file only (never the environment).
        let migrationPassword = try reader.file("DB_MIGRATION_PASSWORD_FILE")
        var migration: ConnectionSettings?
        if let user = try reader.string("DB_MIGRATION_USER") {
            migration = database
            migration?.user = user
            migration?.password = migrationPassword
            migration?.applicationName = "event-handler-migrate"
        } else if migrationPassword != nil {
            throw ConfigurationError(variable: "DB_MIGRATION_PASSWORD_FILE", message: "is set without DB_MIGRATION_USER, whose password it is")
        }

        let flushWorkers = try reader.int("FLUSH_WORKERS", in: 1...64) ?? defaultWorkers
        let maxOpen = try reader.int("DB_MAX_OPEN_CONNS", in: 1...1_000) ?? max(4, flushWorkers + 2)
        let maxIdle = try reader.int("DB_MAX_IDLE_CONNS", in: 0...1_000) ?? min(maxOpen, flushWorkers)
        guard maxIdle <= maxOpen else {
            throw ConfigurationError(variable: "DB_MAX_IDLE_CONNS", message: "(\(maxIdle)) must not exceed DB_MAX_OPEN_CONNS (\(maxOpen))")
        }
        guard flushWorkers <= maxOpen else {
            throw ConfigurationError(variable: "FLUSH_WORKERS", message: "(\(flushWorkers)) needs at least as many connections: raise DB_MAX_OPEN_CONNS (\(maxOpen))")
        }
        let pool = PoolLimits(
            maxOpen: maxOpen,
            maxIdle: maxIdle,
            maxLifetime: try reader.duration("DB_CONN_MAX_LIFETIME", positive: true) ?? .seconds(30 * 60),
            maxIdleTime: try reader.duration("DB_CONN_MAX_IDLE_TIME", positive: true) ?? .seconds(5 * 60),
            acquireTimeout: try reader.duration("DB_ACQUIRE_TIMEOUT", positive: true) ?? .seconds(10)
        )
        return (database, migration, pool, flushWorkers)
    }

    /// A file libpq will read (a certificate or key): its path, checked here so a missing or
    /// unreadable one stops start-up naming the variable rather than failing every connection.
    private static func readablePath(_ path: String?, variable key: String) throws -> String? {
        guard let path else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ConfigurationError(variable: key, message: "names \(path), which does not exist or is not a file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ConfigurationError(variable: key, message: "names \(path), which this process cannot read")
        }
        return path
    }
}
