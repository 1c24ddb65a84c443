import Buffer
import Catalog
import Dispatch
import EventRules
import Foundation
import Lifecycle
import Kafka
import Logging
import Metrics
import Prometheus
import ProgressStore
import Redis
import ServiceLifecycle
import Storage
import Synchronization
import UnaryGRPC

/// The service, wired: catalog → operations endpoints → database (migrate, warm the pool) →
/// buffer and flush workers → gRPC. Ready (gRPC health SERVING, `/readyz` 200) only once the
/// pool is warm. On SIGTERM/SIGINT it stops
/// taking events, flushes everything within `SHUTDOWN_TIMEOUT`, and exits.
struct EventHandlerService {
    let settings: Settings
    let logger: Logger

    /// Runs until a signal asks it to stop. Returns the process exit code.
    func run() async throws -> Int32 {
        let signals = SignalWatcher(SIGTERM, SIGINT)
        let catalog = try loadCatalog()
        FileDescriptorLimit.raiseToHard(logger: logger)

        // Everything is built before the database is reached, so `/metrics` and `/healthz`
        // answer from the first moment and `/readyz` says "starting" until the pool is warm.
        let metrics = ServiceMetrics()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        let pool = ConnectionPool(
            settings: settings.database, limits: settings.pool,
            statements: ProgressWriter.preparedStatements + ProgressDeadLetters.preparedStatements
                + FlushCommits.preparedStatements + KafkaCheckpoints.preparedStatements, logger: logger)
        let buffer = EventBuffer(shardCount: 256, limit: settings.bufferSizeLimit)
        let deadLetters = try settings.kafka.flatMap { kafka in
            try kafka.deadLetterTopic.map {
                try KafkaDeadLetters(topic: $0, configuration: kafka.deadLetterConfiguration(logger: logger), logger: logger)
            }
        }
        let drainLocks = DrainLocks(workerCount: settings.flushWorkers)
        let positions = settings.kafka.map {
            KafkaPositions(group: $0.groupID, shardCount: buffer.shardCount, locks: drainLocks, deadLetters: deadLetters)
        }
        let deduplicator = try await makeDeduplicator { flushID in
            // nil: its transaction is still open on the server; no answer yet.
            guard let committed = try pool.withConnection({ try FlushCommits.isCommitted(flushID, on: $0) }) else {
                throw PostgresError(kind: .query, message: "flush \(flushID) is still committing")
            }
            return committed
        }
        // The Kafka checkpoint is written in the flush's transaction; deduplication marks the
        // flush's ids just before its COMMIT and records them after it.
        let participants: [any CommitParticipant] =
            (positions.map { [KafkaCheckpointing(positions: $0, onFenced: Self.fenced(logger: logger))] } ?? [])
            + [deduplicator]
        let flushConfiguration = FlushWorker.Configuration(
            interval: settings.flushInterval, batchSize: settings.flushBatchSize,
            commitRecordRetention: max(.seconds(3_600), settings.dedup.ttl + settings.dedup.lease * 2))
        let flusher = Flusher(
            buffer: buffer,
            store: PostgresFlushStore(
                pool: pool, writer: ProgressWriter(catalog: catalog, namespace: settings.namespace),
                batchSize: flushConfiguration.batchSize, initialBackoff: flushConfiguration.initialBackoff,
                maxBackoff: flushConfiguration.maxBackoff),
            workerCount: settings.flushWorkers, configuration: flushConfiguration, metrics: metrics,
            participants: participants,
            drainLocks: drainLocks, logger: logger)
        let ingestor = EventIngestor(
            namespace: settings.namespace, matcher: GoalMatcher(catalog: catalog), buffer: buffer,
            deduplicator: deduplicator, flusher: flusher, durable: settings.ackMode == .durable,
            waiting: CommitWaitLimit(limit: settings.ackWaitingLimit), logger: logger,
            onFlushDue: { flusher.requestFlush() })
        let health = HealthState()
        let methods =
            EventMethods.methods(ingestor: ingestor) + [UserDeletionMethod.method(ingestor: ingestor)]
            + HealthMethods.methods(state: health)
        let grpcMetrics = GRPCServerMetrics(methods: methods)
        let hangup = Self.reloadOnHangup(settings.grpcSecurity, metrics: grpcMetrics, logger: logger)
        defer { withExtendedLifetime(hangup) {} }
        // Both or neither: `positions` exists exactly when Kafka is configured.
        let kafka = settings.kafka.flatMap { kafkaSettings in positions.map { (kafkaSettings, $0) } }.map { kafkaSettings, positions in
            let handoff = StoredPositionsHandoff(
                positions: positions, flusher: flusher, pool: pool, revokeTimeout: settings.shutdownTimeout, logger: logger)
            let ingest = KafkaIngest(
                ingestor: ingestor, positions: positions, handoff: handoff, gdprTopic: kafkaSettings.gdprTopic, logger: logger)
            return (ingest: ingest, configuration: kafkaSettings.consumerConfiguration(logger: logger))
        }
        let consumer = try kafka.map { try KafkaConsumer(configuration: $0.configuration, delegate: $0.ingest) }
        let collector = MetricsCollector(
            metrics: metrics,
            sources: .init(
                buffer: buffer, pool: pool, flush: flusher.stats, commitWaiters: { flusher.waiterCount },
                ingest: ingestor.counters, health: health,
                kafka: kafka.map { kafka in
                    .init(
                        lag: { consumer?.lag ?? [:] }, skipped: { kafka.ingest.skippedCount($0) },
                        deadLetters: Self.deadLetterCounts(deadLetters))
                },
                dedup: deduplicator, grpc: grpcMetrics))
        let operations = try await startOperationsServer(collector: collector, health: health)
        defer { operations.close() }

        guard try await prepareDatabase(pool: pool, health: health, signals: signals) else {
            logger.info("stopped before the database was ready")
            return 0
        }
        flusher.start()

        let acceptFailureLines = LogLinePace()
        let server = try await UnaryGRPCServer.start(
            configuration: settings.grpc, methods: methods, metrics: grpcMetrics, security: settings.grpcSecurity,
            onAcceptError: { error in
                // At most one line a minute; grpc_server_accept_errors_total counts them all.
                guard acceptFailureLines.due(at: MonotonicTime.now, interval: IngestNotices.oneMinute) else { return }
                logger.warning(
                    "cannot accept gRPC connections (at the open-files limit?): new connections wait in the backlog; open ones are served; raise the limit (nofile), or set GRPC_MAX_CONNECTIONS below it",
                    metadata: ["error": "\(error)"])
            })
        if let consumer {
            try consumer.start()
            logger.info("kafka consumer started", metadata: ["group": "\(consumer.configuration.groupID)", "topics": "\(consumer.configuration.topics)"])
        }
        health.set(.ready)
        logger.info(
            "ready",
            metadata: [
                "grpc": "\(server.localAddress.map { "\($0)" } ?? "?")", "goals": "\(catalog.goals.count)",
                "pool_open": "\(pool.stats.idle + pool.stats.active)",
                "grpc_max_streams": "\(settings.grpc.maxConcurrentStreams)", "grpc_max_connections": "\(settings.grpc.maxConnections)",
            ])

        // The parts in start order; the group drains them in reverse, each once the one after
        // it has returned: gRPC admission, Kafka, ingest and flush, deduplication, the gRPC
        // server, storage.
        let clock = DrainClock(timeout: settings.shutdownTimeout)
        let flush = FlushService(ingestor: ingestor, flusher: flusher, clock: clock)
        let parts: [any Service] =
            [
                StorageService(pool: pool, deadLetters: deadLetters),
                GRPCService(server: server, health: health, flush: flush, logger: logger),
                DeduplicationService(deduplicator: deduplicator, clock: clock),
                flush,
            ]
            + (consumer.map {
                [KafkaIngestService(consumer: $0, flusher: flusher, clock: clock, leaveTimeout: settings.shutdownTimeout, logger: logger)]
            } ?? [])
            + [GRPCAdmission(server: server, health: health, clock: clock)]
        let group = ServiceGroup(
            configuration: .init(
                services: parts.map { .init(service: $0, successTerminationBehavior: .ignore) },
                logger: logger))
        // SIGTERM/SIGINT through the one watcher start-up used too (a signal that came while
        // starting is seen here at once). The task is not cancelled: it waits for a signal as
        // long as the process lives, and the group ends only after one (or after a part failed,
        // when the process exits anyway).
        _ = Task {
            let signal = await signals.next()
            // Not ready from this line on (GRPCAdmission says it again when the drain reaches it):
            // probes and balancers stop sending before the port stops taking calls.
            health.set(.draining)
            logger.info(
                "draining: stopped taking events, flushing what is buffered",
                metadata: ["signal": "\(signal)", "buffered_entries": "\(buffer.pendingCount)"])
            await group.triggerGracefulShutdown()
        }
        try await group.run()
        let unwritten = flush.unwritten ?? buffer.pendingCount
        let events = ingestor.counters.total
        let flushed = flusher.stats.snapshot
        let summary: Logger.Metadata = [
            "events_accepted": "\(events.accepted)",
            "events_rejected": "\(events.rejected)",
            "events_ignored": "\(events.ignored)",
            "rows_updated": "\(flushed.rowsUpdated)", "rows_inserted": "\(flushed.rowsInserted)",
            "unassigned_events": "\(flushed.unassignedEvents)", "flush_failures": "\(flushed.failures)",
        ]
        if unwritten > 0 {
            logger.critical("stopped with entries unwritten", metadata: summary.merging(["unwritten_entries": "\(unwritten)"]) { $1 })
            return 1
        }
        logger.info("stopped: everything buffered was written", metadata: summary)
        return 0
    }

    /// Deduplication, with Redis when `REDIS_URL` is set. Waits briefly for the first connection
    /// so the first events are checked against Redis, not admitted on memory alone; logs each
    /// change of Redis's reachability once. `isFlushCommitted` asks the database about a flush's
    /// commit record (blocking).
    private func makeDeduplicator(
        isFlushCommitted: @escaping @Sendable (Int64) throws -> Bool
    ) async throws -> EventDeduplicator {
        let dedup = settings.dedup
        let logger = logger
        let redis = dedup.redis.map { url in
            RedisClient(.init(url: url, connections: dedup.redisConnections)) { up, reason in
                if up {
                    logger.info("redis reachable: event ids are deduplicated across replicas", metadata: ["redis": "\(url)"])
                } else {
                    // Refused credentials need the operator, not patience: say so first.
                    let refused = reason.map { $0.contains("authentication refused") || $0.contains("requires a password") } ?? false
                    let what = refused ? "redis refused the credentials (check REDIS_PASSWORD_FILE and the user in REDIS_URL)" : "redis unreachable"
                    logger.warning(
                        dedup.failMode == .open
                            ? "\(what): deduplicating within this process only until it is back (DEDUP_FAIL_MODE=open)"
                            : "\(what): events with an id are pushed back until it is back (DEDUP_FAIL_MODE=closed)",
                        metadata: ["redis": "\(url)", "error": "\(reason ?? "")"])
                }
            }
        }
        if let redis {
            _ = try await onOwnThread("redis-connect") { redis.waitUntilSettled(timeout: .seconds(2)) }
        }
        return EventDeduplicator(
            configuration: .init(
                namespace: settings.namespace, ttl: dedup.ttl, lease: dedup.lease, failMode: dedup.failMode,
                localCapacity: dedup.localCapacity, pendingLimit: settings.bufferEventIDLimit),
            redis: redis, isFlushCommitted: isFlushCommitted, logger: logger)
    }

    private static func deadLetterCounts(_ deadLetters: KafkaDeadLetters?) -> (@Sendable () -> (sent: Int, failed: Int))? {
        guard let deadLetters else { return nil }
        return { (deadLetters.sent, deadLetters.failed) }
    }

    /// Exit status when another consumer-group member has claimed a partition this process
    /// still held uncommitted events of (EX_TEMPFAIL: restart it).
    static let fencedExitStatus: Int32 = 75

    /// A flush was fenced: another member owns a partition whose events are in the buffer. They
    /// cannot be committed without applying them twice, nor told apart from the rest once
    /// merged; the process stops at once, like a crash: the new owner reads them again from the
    /// stored positions, and a restart starts clean.
    static func fenced(logger: Logger) -> @Sendable (KafkaFencedError) -> Void {
        { error in
            logger.critical(
                "fenced by another consumer-group member: exiting without committing, so nothing is applied twice",
                metadata: ["error": "\(error)", "exit_status": "\(fencedExitStatus)"])
            exit(fencedExitStatus)
        }
    }

    // MARK: - Operations endpoints

    /// `/metrics` (Prometheus text), `/healthz` (the process answers), `/readyz` (200 only
    /// when ready: migrations checked, pool warm, not draining).
    private func startOperationsServer(collector: MetricsCollector, health: HealthState) async throws -> OperationsServer {
        let server = try await OperationsServer.start(host: settings.metricsHost, port: settings.metricsPort) { path in
            switch path {
            case "/metrics":
                return .init(
                    status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: collector.exposition())
            case "/healthz":
                return .text(.ok, "ok\n")
            case "/readyz":
                let phase = health.phase
                return phase == .ready ? .text(.ok, "ready\n") : .text(.serviceUnavailable, "not ready: \(phase.rawValue)\n")
            default:
                return nil
            }
        }
        logger.info(
            "operations endpoints listening",
            metadata: ["http": "\(server.localAddress.map { "\($0)" } ?? "?")", "paths": "/metrics /healthz /readyz"])
        return server
    }

    // MARK: - Start-up steps

    private func loadCatalog() throws -> Catalog {
        let loaded = try Catalog.load(path: settings.challengesPath)
        for warning in loaded.warnings { logger.warning("\(warning)") }
        logger.info(
            "challenges loaded",
            metadata: [
                "file": "\(settings.challengesPath)", "goals": "\(loaded.catalog.goals.count)",
                "relative": "\(loaded.catalog.goals.filter { $0.progressMode == .relative }.count)",
                "rotating": "\(loaded.catalog.goals.filter { $0.rotation?.enabled == true }.count)",
            ])
        return loaded.catalog
    }

    /// SIGHUP reads the gRPC certificate and token files again; a reload that fails keeps the
    /// files loaded before (and says why). Without TLS or a token, SIGHUP is logged and ignored.
    private static func reloadOnHangup(_ security: GRPCSecurity?, metrics: GRPCServerMetrics, logger: Logger) -> SignalHandler {
        SignalHandler(SIGHUP, label: "event-handler.sighup") {
            guard let security else {
                logger.info("SIGHUP: nothing to reload (no GRPC_TLS_CERT_FILE or GRPC_AUTH_TOKEN_FILE)")
                return
            }
            do {
                try security.reload()
                metrics.recordReload(succeeded: true)
                logger.info("SIGHUP: reloaded the gRPC certificate and token files; new connections and calls use them")
            } catch {
                metrics.recordReload(succeeded: false)
                logger.error("SIGHUP: reload failed, keeping the certificate and token loaded before", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Migrates (or checks migrations), waits for the progress table when the REST service owns
    /// it, and warms the pool, retrying with backoff while the database is unreachable. Returns
    /// false if a signal arrived first.
    private func prepareDatabase(pool: ConnectionPool, health: HealthState, signals: SignalWatcher) async throws -> Bool {
        let settings = settings
        let logger = logger
        var backoff = Duration.milliseconds(250)
        var attempts = 0
        var migrated = false
        while true {
            attempts += 1
            do {
                let alreadyMigrated = migrated
                let waitingFor: String? = try await onOwnThread("db-startup") {
                    let connection = try PostgresConnection(settings: settings.database)
                    defer { connection.close() }
                    if !alreadyMigrated {
                        try Self.migrate(settings: settings, runtime: connection, logger: logger)
                    }
                    if !settings.migrateProgressTable, let reason = try ProgressWriter.unreadiness(on: connection) {
                        return reason
                    }
                    let started = ContinuousClock.now
                    try pool.warmUp()
                    logger.info(
                        "connection pool warm",
                        metadata: [
                            "connections": "\(pool.stats.idle)",
                            "duration_ms": "\(Int((ContinuousClock.now - started).seconds * 1000))",
                        ])
                    return nil
                }
                migrated = true
                if let waitingFor {
                    // The REST service migrates at its start; poll until it has.
                    if health.phase != .waitingForTable {
                        logger.warning(
                            "not ready: waiting for the REST service to create the progress table (MIGRATE_PROGRESS_TABLE=false)",
                            metadata: ["reason": "\(waitingFor)"])
                        health.set(.waitingForTable)
                    }
                    if await signals.wait(for: .seconds(1)) { return false }
                    continue
                }
                if attempts > 1 { logger.info("database reachable", metadata: ["attempts": "\(attempts)"]) }
                return true
            } catch let error as PostgresError where error.isTLSConfigurationProblem {
                throw StartupError(
                    "cannot reach PostgreSQL over TLS (DB_SSLMODE=\(settings.database.sslMode)): \(error). "
                        + "Check DB_SSLROOTCERT (the CA that signed the server's certificate), DB_HOST (a name the certificate holds), DB_SSLCERT and DB_SSLKEY")
            } catch let error as PostgresError where error.isConnectionFailure {
                if attempts == 1 {
                    logger.error("database unreachable at start-up; retrying", metadata: ["error": "\(error)"])
                }
                if await signals.wait(for: backoff) { return false }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }
}

struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
