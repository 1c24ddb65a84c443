import Buffer
import Kafka
import Logging
import ServiceLifecycle
import Storage
import Synchronization
import UnaryGRPC

// The long-lived parts of the service as swift-service-lifecycle `Service`s. Each is started
// before the group runs (start-up has its own order: the database first, ready last); `run()`
// waits for the group's graceful shutdown and then drains its part. The group shuts the parts
// down in the reverse order of their registration, each once the previous one has returned,
// so the drain order is the order of the list in `EventHandlerService.run`, written once.

/// The drain's deadline, `SHUTDOWN_TIMEOUT` after it began: the first part to drain starts it.
final class DrainClock: Sendable {
    private let timeout: Duration
    private let began = Mutex<ContinuousClock.Instant?>(nil)

    init(timeout: Duration) { self.timeout = timeout }

    var deadline: ContinuousClock.Instant {
        began.withLock { began in
            let start = began ?? .now
            began = start
            return start + timeout
        }
    }
}

/// Waits for the group's graceful shutdown (or its cancellation, when a part failed: then drains
/// at once, out of order, rather than not at all).
private func untilShutdown() async {
    try? await gracefulShutdown()
}

/// First to drain: gRPC health turns NOT_SERVING and every connection gets a GOAWAY, so the
/// bridge opens no new call here; calls in flight are still answered.
struct GRPCAdmission: Service {
    let server: UnaryGRPCServer
    let health: HealthState
    let clock: DrainClock

    func run() async throws {
        await untilShutdown()
        _ = clock.deadline
        health.set(.draining)
        await server.quiesce()
    }
}

/// Kafka, still a member of its group (heartbeating): stops taking records, flushes and
/// checkpoints everything read so far however long that takes, and only then leaves, so the
/// revocation finds nothing left to flush. (Leaving first would let a slow final flush outlast
/// the session, hand the partitions over, and be fenced.)
struct KafkaIngestService: Service {
    let consumer: KafkaConsumer
    let flusher: Flusher
    let clock: DrainClock
    let leaveTimeout: Duration
    let logger: Logger

    func run() async throws {
        await untilShutdown()
        let deadline = clock.deadline
        _ = try await onOwnThread("drain-kafka") { [consumer, flusher, leaveTimeout, logger] in
            if !consumer.quiesce(timeout: .seconds(5)) {
                logger.error("the kafka consumer did not pause in time")
            }
            if !flusher.flushAndWait(deadline: deadline) {
                logger.error("the final flush of what was read from kafka did not finish before SHUTDOWN_TIMEOUT")
            }
            consumer.stop()
            if !consumer.waitUntilStopped(timeout: leaveTimeout) {
                logger.error("the kafka consumer did not leave its group in time")
            }
        }
    }
}

/// Ingest closes (calls past its gate finish first), then the flush workers write everything
/// buffered and stop. `unwritten` is what was left at the deadline.
final class FlushService: Service {
    let ingestor: EventIngestor
    let flusher: Flusher
    let clock: DrainClock
    private let left = Mutex<Int?>(nil)

    init(ingestor: EventIngestor, flusher: Flusher, clock: DrainClock) {
        self.ingestor = ingestor
        self.flusher = flusher
        self.clock = clock
    }

    /// Entries left unwritten by the final flush; nil until it ran.
    var unwritten: Int? { left.withLock { $0 } }

    func run() async throws {
        await untilShutdown()
        let deadline = clock.deadline
        let count = try await onOwnThread("drain-flush") { [ingestor, flusher] in
            ingestor.close()
            return flusher.stop(deadline: deadline)
        }
        left.withLock { $0 = count }
    }
}

/// Deduplication records what the final flush committed and stops its maintenance thread.
struct DeduplicationService: Service {
    let deduplicator: EventDeduplicator
    let clock: DrainClock

    func run() async throws {
        await untilShutdown()
        let timeout = max(.seconds(1), clock.deadline - .now)
        _ = try await onOwnThread("drain-dedup") { [deduplicator] in deduplicator.stop(timeout: timeout) }
    }
}

/// Once the final flush is done: the last durable calls have their answers; health watchers
/// end, the gRPC server closes.
struct GRPCService: Service {
    let server: UnaryGRPCServer
    let health: HealthState
    let flush: FlushService
    let logger: Logger

    func run() async throws {
        await untilShutdown()
        logger.info("final flush done; closing the gRPC server", metadata: ["unwritten_entries": "\(flush.unwritten ?? 0)"])
        health.finishAll()
        await server.shutdown(timeout: .seconds(5))
    }
}

/// Last: the dead-letter producer and the database connections.
struct StorageService: Service {
    let pool: ConnectionPool
    let deadLetters: KafkaDeadLetters?

    func run() async throws {
        await untilShutdown()
        _ = try await onOwnThread("drain-storage") { [pool, deadLetters] in
            deadLetters?.close(timeout: .seconds(1))
            pool.close()
        }
    }
}
