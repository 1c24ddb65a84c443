import Foundation
import Logging
import Redis
import ProgressStore
import Storage
import UnaryGRPC

/// Every setting the service reads, typed, with the defaults `.env.example` documents.
/// Built once at start-up by `Settings.load`; a bad value stops start-up naming its variable.
struct Settings: Sendable {
    /// `AB_NAMESPACE` (required): events of any other namespace are acknowledged and ignored.
    var namespace: String
    /// `CONFIG_PATH`: the challenges file.
    var challengesPath = "config/challenges.json"
    /// `MIGRATIONS_PATH`: a directory of numbered SQL files to apply instead of the ones built
    /// into the binary (unset: built in).
    var migrationsPath: String?
    /// `MIGRATE_PROGRESS_TABLE`: whether this service creates and migrates `user_goal_progress`
    /// (true), or leaves it to the incumbent's REST service and waits for it (false).
    var migrateProgressTable = true
    /// `MIGRATE_ON_START`: apply pending migrations at start-up (otherwise refuse to start with
    /// pending ones and ask for `event-handler migrate`).
    var migrateOnStart = true
    /// `GRPC_HOST`, `GRPC_PORT` and the server's limits (`GRPC_MAX_CONCURRENT_STREAMS`,
    /// `GRPC_MAX_MESSAGE_BYTES`, `GRPC_MAX_CONNECTIONS`, `GRPC_MAX_CONNECTION_IDLE`,
    /// `GRPC_MAX_CONNECTION_AGE`, `GRPC_MAX_CONNECTION_AGE_GRACE`, `GRPC_KEEPALIVE_TIME`,
    /// `GRPC_KEEPALIVE_TIMEOUT`, `GRPC_THREADS`).
    var grpc = UnaryGRPCServer.Configuration(host: "0.0.0.0", port: 6565)
    /// `GRPC_TLS_CERT_FILE`, `GRPC_TLS_KEY_FILE`, `GRPC_TLS_CLIENT_CA_FILE`, `GRPC_AUTH_TOKEN_FILE`:
    /// TLS, client certificates and a bearer token on the gRPC port, loaded (and so checked) here
    /// and read again on SIGHUP; nil: plaintext, no token.
    var grpcSecurity: GRPCSecurity?
    var grpcHost: String { grpc.host }
    var grpcPort: Int { grpc.port }
    /// `METRICS_HOST` / `METRICS_PORT`: HTTP `/metrics`, `/healthz`, `/readyz`.
    var metricsHost = "0.0.0.0"
    var metricsPort = 8080
    var database: ConnectionSettings
    /// `DB_MIGRATION_USER` (and `DB_MIGRATION_PASSWORD_FILE`): the role migrations run as, which
    /// then grants `DB_USER` what it needs; nil: migrations run as `DB_USER`.
    var migrationDatabase: ConnectionSettings?
    var pool: PoolLimits
    /// `BUFFER_FLUSH_INTERVAL`.
    var flushInterval: Duration = .seconds(1)
    /// `BUFFER_SIZE_LIMIT`: pending entries at which a flush starts and beyond which new entries
    /// are refused (gRPC `RESOURCE_EXHAUSTED`).
    var bufferSizeLimit = 100_000
    /// `BUFFER_EVENT_ID_LIMIT`: ids of accepted events not yet committed, held in memory (for
    /// deduplication and the commit's record) beyond which events with an id are refused: the
    /// bound on what events that only merge make the service hold through a database outage.
    var bufferEventIDLimit = 500_000
    /// `FLUSH_WORKERS`: flush threads, each with its own connection and its own shards.
    var flushWorkers = 2
    /// `FLUSH_BATCH_SIZE`: rows per UPSERT statement.
    var flushBatchSize = 5_000
    /// `SHUTDOWN_TIMEOUT`: how long SIGTERM may take to flush what is buffered.
    var shutdownTimeout: Duration = .seconds(30)
    /// `LOG_LEVEL`.
    var logLevel: Logger.Level = .info
    /// `LOG_FORMAT`: `text` (one readable line per message) or `json` (one JSON object per line).
    var logFormat: LogFormat = .text

    enum LogFormat: String, Sendable, CaseIterable {
        case text
        case json
    }
    /// Kafka ingestion; nil when `KAFKA_BROKERS` is empty (gRPC only).
    var kafka: KafkaSettings?
    /// `ACK_MODE`: when a gRPC call is answered OK.
    var ackMode: AcknowledgementMode = .buffered
    /// `ACK_WAITING_LIMIT`: calls waiting for their commit at once (durable events, GDPR
    /// deletions) beyond which new ones are refused.
    var ackWaitingLimit = 10_000
    var dedup = DedupSettings()

    struct DedupSettings: Sendable {
        /// `REDIS_URL` (its password from `REDIS_PASSWORD_FILE` when set): where seen event ids
        /// are shared across replicas; nil: this process only.
        var redis: RedisURL?
        /// `REDIS_POOL_SIZE`: Redis connections (each on its own thread, pipelining).
        var redisConnections = 2
        /// `DEDUP_TTL`: how long a committed id is remembered.
        var ttl: Duration = .seconds(3_600)
        /// `DEDUP_LEASE`: how long a claim outlives a process that died holding it.
        var lease: Duration = .seconds(30)
        /// `DEDUP_FAIL_MODE`: what to do while Redis is unreachable.
        var failMode: EventDeduplicator.FailMode = .open
        /// `DEDUP_LOCAL_MAX_IDS`: committed ids kept in memory without Redis.
        var localCapacity = 1_000_000
    }

    /// Reads `.env` (at `ENV_FILE`, default `./.env`) and the environment; the environment wins.
    /// `requireNamespace` is false for `event-handler migrate`, which stores no events.
    static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment, requireNamespace: Bool = true
    ) throws -> Settings {
        let source = try EnvironmentSource.load(envFile: environment["ENV_FILE"] ?? ".env", environment: environment)
        return try Settings(source: source, requireNamespace: requireNamespace)
    }

    init(source: EnvironmentSource, requireNamespace: Bool = true) throws {
        let reader = SettingsReader(source: source)
        let namespace = try reader.string("AB_NAMESPACE") ?? ""
        if namespace.isEmpty && requireNamespace {
            throw ConfigurationError(variable: "AB_NAMESPACE", message: "is required (the namespace whose events this service stores)")
        }
        guard namespace.utf8.count <= 100 else {
            throw ConfigurationError(variable: "AB_NAMESPACE", message: "must be at most 100 bytes (it is stored in a VARCHAR(100) column)")
        }
        self.namespace = namespace
        challengesPath = try reader.string("CONFIG_PATH") ?? challengesPath
        migrationsPath = try reader.string("MIGRATIONS_PATH")
        migrateProgressTable = try reader.bool("MIGRATE_PROGRESS_TABLE") ?? migrateProgressTable
        migrateOnStart = try reader.bool("MIGRATE_ON_START") ?? migrateOnStart
        grpc.host = try reader.string("GRPC_HOST") ?? grpc.host
        grpc.port = try reader.int("GRPC_PORT", in: 1...65_535) ?? grpc.port
        grpc.threads = try reader.int("GRPC_THREADS", in: 1...256) ?? grpc.threads
        grpc.maxConcurrentStreams = try reader.int("GRPC_MAX_CONCURRENT_STREAMS", in: 1...100_000) ?? grpc.maxConcurrentStreams
        grpc.maxMessageBytes = try reader.int("GRPC_MAX_MESSAGE_BYTES", in: 1_024...(16 << 20)) ?? grpc.maxMessageBytes
        grpc.maxConnections = try reader.int("GRPC_MAX_CONNECTIONS", in: 1...1_000_000) ?? grpc.maxConnections
        grpc.maxConnectionIdle = try reader.optionalDuration("GRPC_MAX_CONNECTION_IDLE", default: grpc.maxConnectionIdle)
        grpc.maxConnectionAge = try reader.optionalDuration("GRPC_MAX_CONNECTION_AGE", default: grpc.maxConnectionAge)
        grpc.maxConnectionAgeGrace = try reader.optionalDuration("GRPC_MAX_CONNECTION_AGE_GRACE", default: grpc.maxConnectionAgeGrace)
        grpc.keepaliveTime = try reader.optionalDuration("GRPC_KEEPALIVE_TIME", default: grpc.keepaliveTime)
        grpc.keepaliveTimeout = try reader.duration("GRPC_KEEPALIVE_TIMEOUT", positive: true) ?? grpc.keepaliveTimeout
        grpcSecurity = try Self.grpcSecurity(reader)
        metricsHost = try reader.string("METRICS_HOST") ?? metricsHost
        metricsPort = try reader.int("METRICS_PORT", in: 1...65_535) ?? metricsPort
        guard metricsPort != grpc.port else {
            throw ConfigurationError(variable: "METRICS_PORT", message: "(\(metricsPort)) must differ from GRPC_PORT")
        }

        (database, migrationDatabase, pool, flushWorkers) = try Self.databaseSettings(reader, flushWorkers: flushWorkers)

        flushInterval = try reader.duration("BUFFER_FLUSH_INTERVAL", positive: true) ?? flushInterval
        bufferSizeLimit = try reader.int("BUFFER_SIZE_LIMIT", in: 1...100_000_000) ?? bufferSizeLimit
        bufferEventIDLimit = try reader.int("BUFFER_EVENT_ID_LIMIT", in: 1...100_000_000) ?? bufferEventIDLimit
        flushBatchSize = try reader.int("FLUSH_BATCH_SIZE", in: 1...100_000) ?? flushBatchSize
        shutdownTimeout = try reader.duration("SHUTDOWN_TIMEOUT", positive: true) ?? shutdownTimeout

        if let mode = try reader.string("ACK_MODE") {
            guard let parsed = AcknowledgementMode(rawValue: mode) else {
                throw ConfigurationError(variable: "ACK_MODE", message: "must be \"buffered\" or \"durable\", got \"\(mode)\"")
            }
            ackMode = parsed
        }
        ackWaitingLimit = try reader.int("ACK_WAITING_LIMIT", in: 1...10_000_000) ?? ackWaitingLimit
        dedup.redis = try Self.redisURL(reader)
        dedup.redisConnections = try reader.int("REDIS_POOL_SIZE", in: 1...64) ?? dedup.redisConnections
        dedup.ttl = try reader.duration("DEDUP_TTL", positive: true) ?? dedup.ttl
        dedup.lease = try reader.duration("DEDUP_LEASE", positive: true) ?? dedup.lease
        guard dedup.lease >= .seconds(3) else {
            throw ConfigurationError(variable: "DEDUP_LEASE", message: "must be at least 3s (claims are renewed every third of it)")
        }
        if let mode = try reader.string("DEDUP_FAIL_MODE") {
            guard let parsed = EventDeduplicator.FailMode(rawValue: mode) else {
                throw ConfigurationError(variable: "DEDUP_FAIL_MODE", message: "must be \"open\" or \"closed\", got \"\(mode)\"")
            }
            dedup.failMode = parsed
        }
        dedup.localCapacity = try reader.int("DEDUP_LOCAL_MAX_IDS", in: 0...100_000_000) ?? dedup.localCapacity
        kafka = try KafkaSettings(reader, namespace: namespace)
        if let level = try reader.string("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) ?? (level.lowercased() == "warn" ? .warning : nil) else {
                throw ConfigurationError(variable: "LOG_LEVEL", message: "must be one of trace, debug, info, notice, warning, error, critical, got \"\(level)\"")
            }
            logLevel = parsed
        }
        if let format = try reader.string("LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigurationError(variable: "LOG_FORMAT", message: "must be text or json, got \"\(format)\"")
            }
            logFormat = parsed
        }
    }

    /// `REDIS_URL`, with the password of `REDIS_PASSWORD_FILE` when set (a secret file rather
    /// than a password in the URL; the URL may name an ACL user: `redis://user@host:port`).
    private static func redisURL(_ reader: SettingsReader) throws -> RedisURL? {
        let password = try reader.file("REDIS_PASSWORD_FILE")
        guard let text = try reader.string("REDIS_URL") else {
            if password != nil {
                throw ConfigurationError(variable: "REDIS_PASSWORD_FILE", message: "is set but REDIS_URL is empty (no Redis to log in to)")
            }
            return nil
        }
        var url: RedisURL
        do {
            url = try RedisURL(parsing: text)
        } catch {
            throw ConfigurationError(variable: "REDIS_URL", message: "\(error) (redis://[[user]:password@]host[:port][/db], or redis://user@host[:port][/db] with REDIS_PASSWORD_FILE)")
        }
        if let password {
            guard url.password == nil else {
                throw ConfigurationError(
                    variable: "REDIS_PASSWORD_FILE",
                    message: "is set and REDIS_URL carries a password too: keep one (the file, and REDIS_URL without its password)")
            }
            guard !password.isEmpty else {
                throw ConfigurationError(variable: "REDIS_PASSWORD_FILE", message: "names an empty file")
            }
            url.password = password
        } else if url.user != nil && url.password == nil {
            // Not echoed: before ACL users, some wrote a bare password there.
            throw ConfigurationError(
                variable: "REDIS_URL",
                message: "names a user (redis://user@…) but no password: set REDIS_PASSWORD_FILE (a password alone is redis://:password@…)")
        }
        return url
    }

    /// The migrations this service applies, from `MIGRATIONS_PATH` and `MIGRATE_PROGRESS_TABLE`.
    func migrator(logger: Logger) -> Migrator {
        Migrator(
            source: migrationsPath.map { .directory($0) } ?? .bundled,
            externalTables: migrateProgressTable ? [] : [ProgressWriter.table], logger: logger)
    }

    /// A one-line summary for the start-up log (no secrets).
    var summary: String {
        "namespace=\(namespace) grpc=\(grpcHost):\(grpcPort)(\(grpcSecurity?.files.usesTLS == true ? "tls" : "plaintext")\(grpcSecurity?.files.clientCA != nil ? "+client-certs" : "")\(grpcSecurity?.files.token != nil ? "+token" : "") streams=\(grpc.maxConcurrentStreams) max_message=\(grpc.maxMessageBytes) max_conns=\(grpc.maxConnections)) http=\(metricsHost):\(metricsPort) db=\(database.redactedDescription) "
            + "pool(open=\(pool.maxOpen) idle=\(pool.maxIdle)) flush(interval=\(flushInterval.seconds)s "
            + "limit=\(bufferSizeLimit) event_ids=\(bufferEventIDLimit) workers=\(flushWorkers) batch=\(flushBatchSize))"
            + (kafka.map { " kafka(brokers=\($0.brokers) group=\($0.groupID) topics=\($0.topics.joined(separator: ","))\($0.deadLetterTopic.map { " dlq=\($0)" } ?? "")\($0.gdprTopic.map { " gdpr=\($0)" } ?? ""))" } ?? " kafka=off")
            + " ack=\(ackMode.rawValue)\(ackMode == .durable ? "(waiting=\(ackWaitingLimit))" : "") dedup(redis=\(dedup.redis.map { "\($0)" } ?? "off") ttl=\(dedup.ttl.seconds)s fail=\(dedup.failMode.rawValue))"
    }
}
