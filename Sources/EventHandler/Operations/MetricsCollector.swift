import Buffer
import EventRules
import Kafka
import Prometheus
import Storage
import Synchronization
import UnaryGRPC

/// Copies what the service keeps in its own atomics into the registry when `/metrics` is
/// scraped: gauges are set to the current level, counters are advanced to the current total.
/// This is Prometheus's "collector" pattern (the Go client's CounterFunc/GaugeFunc): one source
/// of truth, nothing added to the event path, and a scrape costs a few dozen atomic loads.
final class MetricsCollector: Sendable {
    /// The parts of the running service whose state is exported.
    struct Sources: Sendable {
        var buffer: EventBuffer
        var pool: ConnectionPool
        var flush: FlushStats
        /// Calls waiting for their flush to commit.
        var commitWaiters: @Sendable () -> Int = { 0 }
        var ingest: IngestCounters
        var health: HealthState
        /// Kafka ingestion, when it is on.
        var kafka: KafkaSource? = nil
        /// Event-id deduplication.
        var dedup: EventDeduplicator? = nil
        /// The gRPC server's own series.
        var grpc: GRPCServerMetrics? = nil
    }

    struct KafkaSource: Sendable {
        var lag: @Sendable () -> [TopicPartition: Int64]
        var skipped: @Sendable (KafkaIngest.SkipReason) -> Int
        /// Dead letters handed to `KAFKA_DLQ_TOPIC` and refused for good; nil without one.
        var deadLetters: (@Sendable () -> (sent: Int, failed: Int))?
    }

    private let metrics: ServiceMetrics
    private let sources: Sources
    private let state: Mutex<State>

    /// A Prometheus counter that follows a total kept elsewhere.
    private struct Mirror {
        let counter: Counter
        var exported = 0

        mutating func advance(to total: Int) {
            guard total > exported else { return }
            counter.increment(by: Int64(total - exported))
            exported = total
        }
    }

    private struct EventSeries {
        let source: EventSource
        let kind: EventKind
        var received: Mirror
        var byOutcome: [CountedOutcome: Mirror]
    }

    private struct State {
        var events: [EventSeries]
        var unassigned: Mirror
        var backPressure: Mirror
        var flushes: Mirror
        var flushFailures: Mirror
        var flushBatches: Mirror
        var setAside: Mirror
        var usersDeleted: Mirror
        var rowsDeleted: Mirror
        var rowsUpdated: Mirror
        var rowsInserted: Mirror
        var poolWaits: Mirror
        var poolWaitSeconds: (counter: Counter, exported: Duration)
        var opened: Mirror
        var closed: Mirror
        /// `db_statement_cancels_total` by result: sent, failed, dropped.
        var cancels: [Mirror]
        var duplicates: [EventDeduplicator.DuplicateSource: Mirror]
        var admittedWithoutRedis: Mirror
        var redisFailures: Mirror?
        var kafkaSkipped: [KafkaIngest.SkipReason: Mirror]
        var deadLetters: (sent: Mirror, failed: Mirror)?
        /// One gauge per partition ever assigned (bounded by the topics' partition counts).
        var lag: [TopicPartition: Gauge] = [:]
    }

    private let bufferSize: Gauge
    private let bufferLimit: Gauge
    private let poolActive: Gauge
    private let poolIdle: Gauge
    private let poolMax: Gauge
    private let consecutiveFailures: Gauge
    private let commitWaiters: Gauge
    private let ready: Gauge
    private let heldClaimed: Gauge
    private let heldCommitted: Gauge
    private let heldRecorded: Gauge
    private let redisUp: Gauge?

    init(metrics: ServiceMetrics, sources: Sources) {
        self.metrics = metrics
        self.sources = sources
        let r = metrics.registry
        bufferSize = r.makeGauge(descriptor: .named("event_buffer_size", help: "Pending (user, goal) entries in the buffer"))
        bufferLimit = r.makeGauge(descriptor: .named("event_buffer_limit", help: "BUFFER_SIZE_LIMIT: pending entries past which new events are refused"))
        poolActive = r.makeGauge(descriptor: .named("db_connections_active", help: "Pool connections checked out (or opening for a checkout)"))
        poolIdle = r.makeGauge(descriptor: .named("db_connections_idle", help: "Pool connections open and idle"))
        poolMax = r.makeGauge(descriptor: .named("db_connections_max", help: "DB_MAX_OPEN_CONNS"))
        consecutiveFailures = r.makeGauge(descriptor: .named("flush_consecutive_failures", help: "Flush cycles failed in a row (0 after a success)"))
        commitWaiters = r.makeGauge(
            descriptor: .named(
                "commit_waiters", help: "Calls waiting for their flush to commit (ACK_MODE=durable events, GDPR deletions)"))
        ready = r.makeGauge(descriptor: .named("service_ready", help: "1 when ready (migrations checked, pool warm), 0 while starting or draining"))
        let heldHelp = "Event ids held in memory: claimed (admitted, not yet committed), committed (not yet recorded in Redis), recorded (in Redis too, kept for in-process deduplication)"
        heldClaimed = r.makeGauge(descriptor: .named("dedup_ids_held", help: heldHelp), labels: [("state", "claimed")])
        heldCommitted = r.makeGauge(descriptor: .named("dedup_ids_held", help: heldHelp), labels: [("state", "committed")])
        heldRecorded = r.makeGauge(descriptor: .named("dedup_ids_held", help: heldHelp), labels: [("state", "recorded")])
        redisUp = sources.dedup?.usesRedis == true
            ? r.makeGauge(descriptor: .named("dedup_redis_up", help: "1 while Redis (REDIS_URL) answers, 0 while deduplication runs without it"))
            : nil

        func mirror(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Mirror {
            Mirror(counter: r.makeCounter(descriptor: .named(name, help: help), labels: labels))
        }
        var events: [EventSeries] = []
        for source in EventSource.allCases {
            for kind in EventKind.allCases {
                let labels = [("source", source.rawValue), ("type", kind.rawValue)]
                var byOutcome: [CountedOutcome: Mirror] = [:]
                for outcome in CountedOutcome.allCases {
                    switch outcome {
                    case .accepted:
                        byOutcome[outcome] = mirror(
                            "events_processed_total", "Events accepted into the buffer (written by a coming flush)", labels)
                    case .ignored(let reason):
                        byOutcome[outcome] = mirror(
                            "events_ignored_total", "Events acknowledged and not stored (another namespace, or no goal)",
                            labels + [("reason", reason.rawValue)])
                    case .rejected(let reason):
                        byOutcome[outcome] = mirror(
                            "events_rejected_total", "Events refused: bad input, buffer full (back-pressure) or shutting down",
                            labels + [("reason", reason.rawValue)])
                    }
                }
                events.append(
                    EventSeries(
                        source: source, kind: kind,
                        received: mirror("events_received_total", "Events received, whatever became of them", labels),
                        byOutcome: byOutcome))
            }
        }
        state = Mutex(
            State(
                events: events,
                unassigned: mirror(
                    "events_unassigned_total", "Events for a non-default goal whose user has no active row (not stored)"),
                backPressure: mirror(
                    "buffer_backpressure_activations_total", "Times the buffer reached its limit and started refusing events"),
                flushes: mirror("flushes_total", "Flush cycles that wrote entries"),
                flushFailures: mirror("flush_failures_total", "Flush cycles that failed (entries kept and retried)"),
                flushBatches: mirror("flush_batches_total", "Batch statements committed"),
                setAside: mirror(
                    "flush_dead_lettered_entries_total",
                    "Entries the database refused for their data (SQLSTATE 22/23), stored in progress_dead_letters"),
                usersDeleted: mirror(
                    "gdpr_deletions_total", "GDPR data deletions committed (users whose stored rows were deleted)"),
                rowsDeleted: mirror("gdpr_rows_deleted_total", "Progress rows deleted by GDPR data deletions"),
                rowsUpdated: mirror("rows_written_total", "Rows written", [("operation", "update")]),
                rowsInserted: mirror("rows_written_total", "Rows written", [("operation", "insert")]),
                poolWaits: mirror("db_pool_waits_total", "Checkouts that found every connection in use and waited"),
                poolWaitSeconds: (
                    r.makeCounter(descriptor: .named("db_pool_wait_seconds_total", help: "Time spent waiting for a connection"), labels: []),
                    .zero
                ),
                opened: mirror("db_connections_opened_total", "Connections opened"),
                closed: mirror("db_connections_closed_total", "Connections closed"),
                cancels: ["sent", "failed", "dropped"].map { result in
                    mirror(
                        "db_statement_cancels_total",
                        "Cancel requests for statements cut at DB_CALL_TIMEOUT: sent, failed to send, or dropped (too many queued)",
                        [("result", result)])
                },
                duplicates: Dictionary(
                    uniqueKeysWithValues: EventDeduplicator.DuplicateSource.allCases.map { source in
                        (
                            source,
                            mirror(
                                "dedup_duplicates_total",
                                "Repeated event ids not applied again, by where the earlier delivery was found: this process (memory) or Redis",
                                [("found_in", source.rawValue)])
                        )
                    }),
                admittedWithoutRedis: mirror(
                    "dedup_admitted_without_redis_total",
                    "Events admitted on the in-process check alone because Redis was unreachable (DEDUP_FAIL_MODE=open)"),
                redisFailures: sources.dedup?.usesRedis == true
                    ? mirror("dedup_redis_failed_commands_total", "Redis commands not sent or not answered (Redis unreachable)")
                    : nil,
                kafkaSkipped: Dictionary(
                    uniqueKeysWithValues: KafkaIngest.SkipReason.allCases.map { reason in
                        (
                            reason,
                            mirror(
                                "kafka_records_skipped_total",
                                "Kafka records skipped before the ingest path: unknown topic, malformed value, or already applied (read again after a restart or rebalance)",
                                [("reason", reason.rawValue)])
                        )
                    })))
    }

    /// Brings the registry up to date. Cheap; serialized so concurrent scrapes cannot export a
    /// counter step twice.
    func collect() {
        let pool = sources.pool.stats
        let flush = sources.flush.snapshot
        bufferSize.set(Int64(sources.buffer.pendingCount))
        bufferLimit.set(Int64(sources.buffer.limit))
        poolActive.set(Int64(pool.active))
        poolIdle.set(Int64(pool.idle))
        poolMax.set(Int64(pool.max))
        consecutiveFailures.set(Int64(flush.consecutiveFailures))
        commitWaiters.set(Int64(sources.commitWaiters()))
        ready.set(Int64(sources.health.status == .serving ? 1 : 0))
        if let dedup = sources.dedup {
            heldClaimed.set(Int64(dedup.held.claimed))
            heldCommitted.set(Int64(dedup.held.committed))
            heldRecorded.set(Int64(dedup.held.recorded))
            redisUp?.set(Int64(dedup.redisUp ? 1 : 0))
        }

        state.withLock { state in
            for i in state.events.indices {
                let counts = sources.ingest.snapshot(state.events[i].source, state.events[i].kind)
                state.events[i].received.advance(to: counts.received)
                for outcome in CountedOutcome.allCases {
                    state.events[i].byOutcome[outcome]!.advance(to: counts[outcome])
                }
            }
            state.unassigned.advance(to: flush.unassignedEvents)
            state.backPressure.advance(to: sources.ingest.backPressureActivations)
            state.flushes.advance(to: flush.flushes)
            state.flushFailures.advance(to: flush.failures)
            state.flushBatches.advance(to: flush.batches)
            state.setAside.advance(to: flush.entriesSetAside)
            state.usersDeleted.advance(to: flush.usersDeleted)
            state.rowsDeleted.advance(to: flush.rowsDeleted)
            state.rowsUpdated.advance(to: flush.rowsUpdated)
            state.rowsInserted.advance(to: flush.rowsInserted)
            state.poolWaits.advance(to: pool.waitCount)
            if pool.waitDuration > state.poolWaitSeconds.exported {
                let step = pool.waitDuration - state.poolWaitSeconds.exported
                state.poolWaitSeconds.counter.increment(by: Double(step.components.seconds) + Double(step.components.attoseconds) / 1e18)
                state.poolWaitSeconds.exported = pool.waitDuration
            }
            state.opened.advance(to: pool.opened)
            state.closed.advance(to: pool.closed)
            let cancels = StatementCanceller.shared.counts
            for (i, count) in [cancels.sent, cancels.failed, cancels.dropped].enumerated() {
                state.cancels[i].advance(to: count)
            }
            if let dedup = sources.dedup {
                for source in EventDeduplicator.DuplicateSource.allCases {
                    state.duplicates[source]!.advance(to: dedup.duplicates(source))
                }
                state.admittedWithoutRedis.advance(to: dedup.admittedWithoutRedis.load(ordering: .relaxed))
                state.redisFailures?.advance(to: dedup.redisFailedCommands)
            }
            if let kafka = sources.kafka {
                for reason in KafkaIngest.SkipReason.allCases {
                    state.kafkaSkipped[reason]!.advance(to: kafka.skipped(reason))
                }
                if let deadLetters = kafka.deadLetters {
                    let counts = deadLetters()
                    if state.deadLetters == nil {
                        let help = "Kafka records copied to KAFKA_DLQ_TOPIC: handed to the producer (sent) or refused by the broker for good (failed)"
                        state.deadLetters = (
                            Mirror(counter: metrics.registry.makeCounter(descriptor: .named("kafka_dead_letters_total", help: help), labels: [("outcome", "sent")])),
                            Mirror(counter: metrics.registry.makeCounter(descriptor: .named("kafka_dead_letters_total", help: help), labels: [("outcome", "failed")]))
                        )
                    }
                    state.deadLetters!.sent.advance(to: counts.sent)
                    state.deadLetters!.failed.advance(to: counts.failed)
                }
                let lag = kafka.lag()
                for (partition, records) in lag {
                    let gauge =
                        state.lag[partition]
                        ?? metrics.registry.makeGauge(
                            descriptor: .named("kafka_consumer_lag", help: "Records behind the end of each assigned partition"),
                            labels: [("topic", partition.topic), ("partition", String(partition.partition))])
                    state.lag[partition] = gauge
                    gauge.set(records)
                }
                // A partition this instance no longer holds is no longer its lag: its series goes.
                // (Kept at 0, it read as "drained": after a rebalance an instance seemed to hold,
                // caught up, partitions another member had yet to hand over.)
                for (partition, gauge) in state.lag where lag[partition] == nil {
                    metrics.registry.unregisterGauge(gauge)
                    state.lag[partition] = nil
                }
            }
        }
    }

    /// The Prometheus text exposition, up to date.
    func exposition() -> [UInt8] {
        collect()
        var text = metrics.registry.emitToBuffer()
        if let grpc = sources.grpc { text += Array(grpc.exposition().utf8) }
        text += Array(OperationsServer.Metrics.shared.exposition().utf8)
        text += Array(ProcessMetrics.exposition().utf8)
        return text
    }
}
