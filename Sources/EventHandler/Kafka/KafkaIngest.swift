import EventRules
import Kafka
import Logging
import Synchronization

/// Kafka records into the ingest path: the consumer's delegate (wire.md, Kafka section).
///
/// Each record is decoded (`KafkaEventDecoder`: proto3 JSON, or binary protobuf when its
/// `content-type` header says `application/x-protobuf`), skipped if its partition's stored
/// position says it is committed already for its user's shard, and otherwise goes through the
/// same ingest pipeline as gRPC (`EventIngestor`: screen, deduplicate, buffer, count), settled
/// by its position move (`KafkaRecordSettlement`). What Kafka adds to deduplication is here:
/// a poll's claims in one Redis round trip, and a claim held by this partition's own earlier
/// owner resolved from its positions. Rebalances go to the `KafkaPartitionHandoff`.
///
/// A record that cannot be decoded, comes from a topic that is not one of the platform's two,
/// or carries an invalid event is counted, logged once per kind, and skipped, or copied to the
/// dead-letter topic when there is one (`KafkaDeadLetters`): a bad record never stalls its
/// partition. A full buffer pauses consumption.
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
    private let positions: KafkaPositions
    private let handoff: any KafkaPartitionHandoff
    private let logger: Logger
    private let skipped: [SkipReason: Count]
    /// `KAFKA_GDPR_TOPIC`: its records are deletions.
    private let gdprTopic: String?

    private final class Count: Sendable {
        let value = Atomic<Int>(0)
    }
    private let loggedKinds = Mutex<Set<String>>([])

    init(
        ingestor: EventIngestor, positions: KafkaPositions, handoff: any KafkaPartitionHandoff, gdprTopic: String? = nil,
        logger: Logger
    ) {
        self.gdprTopic = gdprTopic
        self.ingestor = ingestor
        self.positions = positions
        self.handoff = handoff
        self.logger = logger
        var skipped: [SkipReason: Count] = [:]
        for reason in SkipReason.allCases { skipped[reason] = Count() }
        self.skipped = skipped
    }

    /// Records skipped without reaching the ingest path, by reason.
    func skippedCount(_ reason: SkipReason) -> Int { skipped[reason]!.value.load(ordering: .relaxed) }

    // MARK: - KafkaConsumerDelegate (on the consumer's thread)

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        handoff.assigned(partitions)
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        handoff.revoked(partitions)
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
    /// Screening and deduplication come first, outside the drain lock (deduplication may wait
    /// on Redis, and the lock holds up that worker's drain).
    private func inspect(_ record: KafkaRecord) -> Inspection {
        let event: IncomingEvent
        switch KafkaEventDecoder.event(record) {
        case .success(let decoded): event = decoded
        case .failure(.unknownTopic): return .undecodable(.unknownTopic)
        case .failure(.malformed): return .undecodable(.malformed)
        }
        let shard = ingestor.shardIndex(of: event.userID)
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

    /// Steps 4 and 5 of the pipeline for a screened and deduplicated record, settled by its
    /// position move; `.later` when it must be offered again.
    private func apply(_ ready: Ready, admission: EventDeduplicator.Admission?) -> KafkaConsumeDecision {
        let (outcome, _) = ingestor.settle(
            ready.screening, admission: admission, receivedAt: ready.arrived, source: .kafka, kind: ready.event.kind,
            by: KafkaRecordSettlement(record: ready.record, shard: ready.shard, positions: positions))
        return decision(outcome, ready.record, kind: "invalid", "kafka record refused as bad input, skipped")
    }

    /// What the consumer does after an outcome: offer the record again, or go on (a bad one logged).
    private func decision(
        _ outcome: IngestOutcome, _ record: KafkaRecord, kind: String, _ message: Logger.Message
    ) -> KafkaConsumeDecision {
        switch outcome {
        case .overloaded, .unavailable, .deferred:
            return .later
        case .rejected(let field, let reason):
            logOnce("\(kind):\(field.rawValue)", message, record, ["field": "\(field.rawValue)", "reason": "\(reason)"])
            return .taken
        case .accepted, .ignored:
            return .taken
        }
    }

    /// A record of the GDPR topic: the user's rows deleted by the next flush of their shard,
    /// under the owning worker's drain lock with the position move (as for events).
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
        let shard = ingestor.shardIndex(of: request.userID)
        if positions.isCommitted(partition, offset: record.offset, shard: shard) {
            skipped[.alreadyApplied]!.value.add(1, ordering: .relaxed)
            positions.markConsumed(partition, offset: record.offset)
            return .taken
        }
        let (outcome, _) = ingestor.deleteUser(
            request, by: KafkaRecordSettlement(record: record, shard: shard, positions: positions))
        return decision(outcome, record, kind: "gdpr-invalid", "kafka GDPR deletion refused as bad input, skipped")
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
