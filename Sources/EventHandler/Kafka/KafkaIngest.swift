import Buffer
import EventRules
import Foundation
import Kafka
import Logging
import ProgressStore
import Storage
import Synchronization

/// Kafka records into the ingest path: the consumer's delegate (wire.md, Kafka section).
///
/// Each record is decoded (`KafkaEventDecoder`: proto3 JSON, or binary protobuf when its
/// `content-type` header says `application/x-protobuf`), skipped if its partition's stored position says it is committed
/// already for its user's shard, and otherwise handed to the same ingest path as gRPC under the
/// owning flush worker's ingest lock (`KafkaPositions`). A record that cannot be decoded, comes
/// from a topic that is not one of the platform's two, or carries an invalid event is counted,
/// logged once per kind, and skipped, or copied to the dead-letter topic when there is one
/// (`KafkaDeadLetters`): a bad record never stalls its partition. A full buffer pauses
/// consumption.
///
/// Records of the GDPR topic (`KAFKA_GDPR_TOPIC`) are deletions (`EventIngestor.deleteUser`),
/// positioned like events: the flush that commits a deletion records its partition's position,
/// so a crash before the commit reads it again and one after does not.
final class KafkaIngest: KafkaConsumerDelegate {
    enum SkipReason: String, Sendable, CaseIterable {
        /// Not a known topic: neither `*.iam.account.v1.userLoggedIn` nor `*.social.statistic.v1.statItemUpdated`.
        case unknownTopic = "unknown_topic"
        /// The value is not the topic's message in proto3 JSON (or binary protobuf).
        case malformed
        /// Read again after a restart or a rebalance, and already in committed rows.
        case alreadyApplied = "already_applied"
    }

    private let ingestor: EventIngestor
    private let buffer: EventBuffer
    private let positions: KafkaPositions
    private let flusher: Flusher
    private let pool: ConnectionPool
    private let logger: Logger
    /// How long a revocation may wait for its final flush.
    private let revokeTimeout: Duration
    private let skipped: [SkipReason: Count]
    /// Names this member in `kafka_partition_owners`.
    private let owner: String
    /// `KAFKA_GDPR_TOPIC`: its records are deletions.
    private let gdprTopic: String?

    private final class Count: Sendable {
        let value = Atomic<Int>(0)
    }
    private let loggedKinds = Mutex<Set<String>>([])

    init(
        ingestor: EventIngestor, buffer: EventBuffer, positions: KafkaPositions, flusher: Flusher, pool: ConnectionPool,
        gdprTopic: String? = nil, revokeTimeout: Duration, logger: Logger
    ) {
        self.gdprTopic = gdprTopic
        self.ingestor = ingestor
        self.buffer = buffer
        self.positions = positions
        self.flusher = flusher
        self.pool = pool
        self.revokeTimeout = revokeTimeout
        self.logger = logger
        owner = "\(ProcessInfo.processInfo.hostName)/\(getpid())"
        var skipped: [SkipReason: Count] = [:]
        for reason in SkipReason.allCases { skipped[reason] = Count() }
        self.skipped = skipped
    }

    /// Records skipped without reaching the ingest path, by reason.
    func skippedCount(_ reason: SkipReason) -> Int { skipped[reason]!.value.load(ordering: .relaxed) }

    // MARK: - KafkaConsumerDelegate (on the consumer's thread)

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        let group = positions.group
        // The stored positions decide where to start. Without them the partition cannot start
        // safely, so this retries until the database answers (the group waits meanwhile).
        var backoff = Duration.milliseconds(100)
        while true {
            do {
                let claim = try pool.withConnection { connection in
                    try KafkaCheckpoints.claim(
                        group: group, partitions: partitions.map { ($0.topic, $0.partition) }, owner: owner, on: connection)
                }
                let starts = positions.assign(partitions, claim: claim)
                logger.info(
                    "kafka partitions assigned",
                    metadata: [
                        "partitions": "\(partitions.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.map { "\($0):\(starts[$0].map(String.init) ?? "group")" }.joined(separator: " "))",
                        "epochs": "\(claim.epochs.map { "\($0.epoch)" }.joined(separator: ","))",
                    ])
                return starts
            } catch {
                logger.error("cannot read kafka checkpoints; retrying", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: Double(backoff.components.attoseconds) / 1e18 + Double(backoff.components.seconds))
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        // Everything consumed from them must be committed, with its positions, before another
        // member starts them from those positions.
        let flushed = flusher.flushAndWait(deadline: .now + revokeTimeout)
        if flushed {
            logger.info("kafka partitions revoked after their final flush", metadata: ["partitions": "\(partitions.count)"])
        } else {
            logger.error(
                "kafka partitions revoked before their events could be committed (database unreachable); committed later unless their next owner claims them first, which fences this member",
                metadata: ["partitions": "\(partitions.count)"])
        }
        positions.revoke(partitions, flushed: flushed)
    }

    func consume(_ record: KafkaRecord) -> KafkaConsumeDecision {
        if let gdprTopic, record.topic == gdprTopic { return consumeDeletion(record) }
        switch inspect(record) {
        case .ready(let ready): return apply(ready, admission: admitted(ready))
        case let inspection: return skipUnapplied(record, inspection)
        }
    }

    /// A poll's records: the event ids of those that reach deduplication are claimed in Redis
    /// in one pipelined round trip (`EventDeduplicator.admitBatchBlocking`), then each record
    /// goes on as `consume` would take it. On the first record with no room, the claims made
    /// for the records after it are let go (they are offered again later).
    func consume(batch records: [KafkaRecord]) -> Int {
        guard records.count > 1, let deduplicator = ingestor.deduplicator, deduplicator.usesRedis else {
            var taken = 0
            for record in records {
                guard consume(record) == .taken else { break }
                taken += 1
            }
            return taken
        }
        // Inspected in order, nothing done yet: a record's decoding, position check and screening
        // read no state that the records before it change (positions move only for records
        // already applied). nil: a GDPR deletion.
        var inspections: [Inspection?] = []
        var items: [(id: String, kafka: EventDeduplicator.KafkaCoordinate)] = []
        var itemOf: [Int: Int] = [:]
        var ids = Set<String>()
        for (index, record) in records.enumerated() {
            if let gdprTopic, record.topic == gdprTopic {
                inspections.append(nil)
                continue
            }
            let inspection = inspect(record)
            inspections.append(inspection)
            guard case .ready(let ready) = inspection else { continue }
            // A repeat of an id earlier in the batch is admitted on its own, after that one.
            if case .ready(let screened) = ready.screening, !screened.id.isEmpty, ids.insert(screened.id).inserted {
                itemOf[index] = items.count
                items.append((screened.id, Self.coordinate(of: record)))
            }
        }
        let admissions = items.isEmpty ? [] : deduplicator.admitBatchBlocking(items)
        for (index, record) in records.enumerated() {
            let decision: KafkaConsumeDecision
            switch inspections[index] {
            case nil:
                decision = consumeDeletion(record)
            case .ready(let ready)?:
                let admission = itemOf[index].map { held(admissions[$0], ready, deduplicator: deduplicator) } ?? admitted(ready)
                decision = apply(ready, admission: admission)
            case let inspection?:
                decision = skipUnapplied(record, inspection)
            }
            if decision == .later {
                // The records after it are offered again: their claims go, and the repeats among
                // them are counted when they are taken, not now as well.
                for later in (index + 1)..<records.count {
                    guard let item = itemOf[later] else { continue }
                    switch admissions[item] {
                    case .admitted(let claimed): deduplicator.release(items[item].id, claimed: claimed)
                    case .duplicate(let source): deduplicator.uncount(source)
                    case .heldElsewhere, .unavailable, .full: break
                    }
                }
                return index
            }
        }
        return records.count
    }

    /// A decoded record on its way: its event, shard, arrival and screening.
    struct Ready {
        let record: KafkaRecord
        let event: IncomingEvent
        let shard: Int
        let arrived: UInt64
        let screening: EventIngestor.Screening
    }

    /// What a record is, before anything is done with it.
    enum Inspection {
        /// Not one of the platform's messages (or not on one of its topics).
        case undecodable(SkipReason)
        /// Already in committed rows for its user's shard (read again after a restart or rebalance).
        case alreadyApplied
        /// On its way to the ingest path.
        case ready(Ready)
    }

    /// Decodes, checks the stored position for the user's shard, and screens; changes nothing.
    /// Screening and deduplication come first, outside the ingest lock (deduplication may wait
    /// on Redis, and the lock holds up that worker's drain).
    private func inspect(_ record: KafkaRecord) -> Inspection {
        let event: IncomingEvent
        switch KafkaEventDecoder.event(record) {
        case .success(let decoded): event = decoded
        case .failure(.unknownTopic): return .undecodable(.unknownTopic)
        case .failure(.malformed): return .undecodable(.malformed)
        }
        let shard = buffer.shardIndex(of: event.userID)
        if positions.isCommitted(record.topicPartition, offset: record.offset, shard: shard) { return .alreadyApplied }
        return .ready(Ready(record: record, event: event, shard: shard, arrived: MonotonicTime.now, screening: ingestor.screen(event, shard: shard)))
    }

    /// A record that does not reach the ingest path: counted, dead-lettered when undecodable,
    /// and its position moved past.
    private func skipUnapplied(_ record: KafkaRecord, _ inspection: Inspection) -> KafkaConsumeDecision {
        switch inspection {
        case .undecodable(let reason):
            skip(record, reason: reason)
            positions.deadLetters?.send(record, reason: reason.rawValue)
        case .alreadyApplied:
            skipped[.alreadyApplied]!.value.add(1, ordering: .relaxed)
        case .ready:
            preconditionFailure("a record on its way to the ingest path is applied, not skipped")
        }
        positions.markConsumed(record.topicPartition, offset: record.offset)
        return .taken
    }

    /// Deduplication for one prepared record on its own (a round trip when Redis decides).
    private func admitted(_ ready: Ready) -> EventDeduplicator.Admission? {
        guard case .ready(let screened) = ready.screening, let deduplicator = ingestor.deduplicator, !screened.id.isEmpty
        else { return nil }
        return admit(screened.id, record: ready.record, shard: ready.shard, deduplicator: deduplicator)
    }

    private static func coordinate(of record: KafkaRecord) -> EventDeduplicator.KafkaCoordinate {
        EventDeduplicator.KafkaCoordinate(topic: record.topic, partition: record.partition, offset: record.offset)
    }

    /// Applies a record's screening and admission under the owning worker's ingest lock.
    private func apply(_ ready: Ready, admission: EventDeduplicator.Admission?) -> KafkaConsumeDecision {
        let record = ready.record
        let partition = record.topicPartition
        let event = ready.event
        let shard = ready.shard
        let arrived = ready.arrived
        let screening = ready.screening
        // The add and the position move happen under the owning worker's ingest lock together:
        // its drain sees both or neither, so an entry never commits without its position (a
        // crash in between would otherwise re-read and re-apply the event).
        let outcome = positions.withIngestLock(worker: positions.worker(ofShard: shard)) {
            let outcome: IngestOutcome
            switch screening {
            case .decided(let decided): outcome = decided
            case .ready(let screened):
                outcome =
                    admission.map { ingestor.admit(screened, $0, receivedAt: arrived) }
                    ?? ingestor.add(screened, receivedAt: arrived)
            }
            switch outcome {
            case .overloaded, .unavailable, .deferred: break
            case .rejected(let field, let reason):
                // Handed over before the position moves, so no checkpoint can pass it unsent.
                positions.deadLetters?.send(record, reason: "invalid \(field.rawValue): \(reason)")
                positions.markConsumed(partition, offset: record.offset)
            case .accepted, .ignored: positions.markConsumed(partition, offset: record.offset)
            }
            return outcome
        }
        ingestor.count(outcome, source: .kafka, kind: event.kind)
        switch outcome {
        case .overloaded, .unavailable, .deferred:
            return .later
        case .rejected(let field, let reason):
            logOnce("invalid:\(field.rawValue)", "kafka record refused as bad input, skipped", record, ["field": "\(field.rawValue)", "reason": "\(reason)"])
            return .taken
        case .accepted, .ignored:
            return .taken
        }
    }

    /// A record of the GDPR topic: the user's rows deleted by the next flush of their shard,
    /// under the owning worker's ingest lock with the position move (as for events).
    private func consumeDeletion(_ record: KafkaRecord) -> KafkaConsumeDecision {
        let partition = record.topicPartition
        let request: UserDeletionRequest
        switch KafkaEventDecoder.deletion(record) {
        case .success(let decoded):
            request = decoded
        case .failure:
            skip(record, reason: .malformed)
            positions.deadLetters?.send(record, reason: SkipReason.malformed.rawValue)
            positions.markConsumed(partition, offset: record.offset)
            return .taken
        }
        let shard = buffer.shardIndex(of: request.userID)
        if positions.isCommitted(partition, offset: record.offset, shard: shard) {
            skipped[.alreadyApplied]!.value.add(1, ordering: .relaxed)
            positions.markConsumed(partition, offset: record.offset)
            return .taken
        }
        let outcome = positions.withIngestLock(worker: positions.worker(ofShard: shard)) {
            let (outcome, _) = ingestor.deleteUser(request, callerWaits: false)
            switch outcome {
            case .rejected(let field, let reason):
                positions.deadLetters?.send(record, reason: "invalid \(field.rawValue): \(reason)")
                positions.markConsumed(partition, offset: record.offset)
            case .accepted, .ignored:
                positions.markConsumed(partition, offset: record.offset)
            case .overloaded, .unavailable, .deferred:
                break
            }
            return outcome
        }
        switch outcome {
        case .overloaded, .unavailable, .deferred:
            return .later
        case .rejected(let field, let reason):
            logOnce("gdpr-invalid:\(field.rawValue)", "kafka GDPR deletion refused as bad input, skipped", record, ["field": "\(field.rawValue)", "reason": "\(reason)"])
            return .taken
        case .accepted, .ignored:
            return .taken
        }
    }

    /// Deduplication for a record's event id. A claim held by a record of this same partition
    /// is one the partition's previous owner (or this process before a restart) made: if that
    /// record's position is committed for this user's shard, the event is applied (a
    /// duplicate); otherwise it never will be (its holder is fenced or dead), and the claim is
    /// taken over. A claim held anywhere else waits: the record is offered again later.
    private func admit(
        _ id: String, record: KafkaRecord, shard: Int, deduplicator: EventDeduplicator
    ) -> EventDeduplicator.Admission {
        let admission = deduplicator.admitBlocking(id, kafka: Self.coordinate(of: record))
        return held(admission, id: id, record: record, shard: shard, deduplicator: deduplicator)
    }

    private func held(
        _ admission: EventDeduplicator.Admission, _ ready: Ready, deduplicator: EventDeduplicator
    ) -> EventDeduplicator.Admission {
        guard case .ready(let screened) = ready.screening else { return admission }
        return held(admission, id: screened.id, record: ready.record, shard: ready.shard, deduplicator: deduplicator)
    }

    /// A claim held by a record of this same partition (see `admit`) is resolved from the
    /// partition's stored position (`DedupPolicy.resolveKafkaClaim`); any other answer stands.
    private func held(
        _ admission: EventDeduplicator.Admission, id: String, record: KafkaRecord, shard: Int, deduplicator: EventDeduplicator
    ) -> EventDeduplicator.Admission {
        guard case .heldElsewhere(let holder) = admission else { return admission }
        let resolution = DedupPolicy.resolveKafkaClaim(heldBy: holder, record: Self.coordinate(of: record)) { offset in
            positions.isCommitted(record.topicPartition, offset: offset, shard: shard)
        }
        switch resolution {
        case .stands: return admission
        case .duplicate: return deduplicator.counted(.duplicate(.redis))
        case .takeOver: return deduplicator.takeOver(id, kafka: Self.coordinate(of: record))
        }
    }

    func hasRoom() -> Bool {
        ingestor.hasRoomToResume
    }

    func consumerError(_ message: String) {
        logOnce("client:\(message.prefix(40))", "kafka client error", nil, ["error": "\(message)"])
    }

    // MARK: - Skipped records

    private func skip(_ record: KafkaRecord, reason: SkipReason) {
        skipped[reason]!.value.add(1, ordering: .relaxed)
        logOnce(reason.rawValue, "kafka record skipped", record, ["reason": "\(reason.rawValue)"])
    }

    /// Logs the first occurrence of each kind of problem (later ones are only counted).
    private func logOnce(_ kind: String, _ message: Logger.Message, _ record: KafkaRecord?, _ metadata: Logger.Metadata) {
        guard loggedKinds.withLock({ $0.insert(kind).inserted }) else { return }
        var metadata = metadata
        if let record {
            metadata["topic"] = "\(record.topic)"
            metadata["partition"] = "\(record.partition)"
            metadata["offset"] = "\(record.offset)"
        }
        logger.warning("\(message) (first of its kind; the rest are counted)", metadata: metadata)
    }
}
