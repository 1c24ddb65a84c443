import CRdKafka
import Foundation
import Logging
import Synchronization

/// What the owner of a `KafkaConsumer` decides. Every call comes on the consumer's own thread,
/// one at a time, so an implementation may block (flush, wait for room) where the contract says.
public protocol KafkaConsumerDelegate: AnyObject, Sendable {
    /// Partitions were assigned to this member. Returns where to start each one: an offset, or
    /// nothing for a partition with no stored position. Such a partition starts where its
    /// consumer group last committed in Kafka (another client's offsets: the incumbent handler,
    /// when the group is the one it used), or at the earliest record if the group never did.
    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]
    /// Partitions are being taken from this member. Returns once what came from them is durable:
    /// another member starts them where the owner's stored positions say.
    func partitionsRevoked(_ partitions: [TopicPartition])
    /// One record, in partition order. `.later` means "no room now": the consumer pauses every
    /// partition and offers this record again, first, once `hasRoom()` says yes.
    func consume(_ record: KafkaRecord) -> KafkaConsumeDecision
    /// The records one poll found already fetched (at most `maxBatchSize`), in partition order,
    /// so that per-record waits (a Redis round trip) can be made once for all of them. Returns
    /// how many, from the first, were taken; the rest are offered again like a `.later` record
    /// (consumption pauses until `hasRoom()`). The default takes them one by one.
    func consume(batch: [KafkaRecord]) -> Int
    /// Polled while paused for back-pressure.
    func hasRoom() -> Bool
    /// A client-level problem (broker unreachable, group errors): for logs and counters.
    func consumerError(_ message: String)
}

public enum KafkaConsumeDecision: Sendable {
    case taken
    case later
}

extension KafkaConsumerDelegate {
    public func consume(batch: [KafkaRecord]) -> Int {
        var taken = 0
        for record in batch {
            guard consume(record) == .taken else { break }
            taken += 1
        }
        return taken
    }
}

/// A member of a Kafka consumer group, over librdkafka: the one type that touches its consumer
/// API. It polls on a thread of its own (librdkafka blocks; the cooperative pool never sees it)
/// and hands each record to its delegate.
///
/// Offsets are neither committed to Kafka nor stored by librdkafka: where each partition
/// starts is the delegate's answer at assignment (the service keeps positions in PostgreSQL,
/// in the same transaction as the rows they produced).
public final class KafkaConsumer: Sendable {
    /// The librdkafka handle. Used on the poll thread only, except `rd_kafka_position` and
    /// `rd_kafka_get_watermark_offsets` for the lag, which librdkafka allows from any thread.
    private struct Handle: @unchecked Sendable {
        let rk: OpaquePointer
    }

    public let configuration: KafkaConsumerConfiguration
    private let handle: Handle
    private let callbacks: ConsumerCallbacks
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let lagByPartition = Mutex<[TopicPartition: Int64]>([:])
    private let pausedForRoom = Atomic<Bool>(false)
    /// Set by `quiesce`: hand nothing more over, keep every partition paused.
    private let quiescing = Atomic<Bool>(false)
    private let quiesced = DispatchSemaphore(value: 0)

    public init(configuration: KafkaConsumerConfiguration, delegate: any KafkaConsumerDelegate) throws {
        self.configuration = configuration
        callbacks = ConsumerCallbacks(delegate: delegate, logger: configuration.logger)
        let rk = try KafkaClientHandle.create(
            RD_KAFKA_CONSUMER, properties: configuration.librdkafkaProperties, opaque: callbacks
        ) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
            rd_kafka_conf_set_error_cb(conf, errorCallback)
        }
        rd_kafka_poll_set_consumer(rk)
        handle = Handle(rk: rk)
    }

    /// Subscribes and starts polling on a new thread.
    public func start() throws {
        let list = rd_kafka_topic_partition_list_new(Int32(configuration.topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in configuration.topics {
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        }
        let code = rd_kafka_subscribe(handle.rk, list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("subscribe", code: code) }
        let thread = Thread { [self] in
            self.pollLoop()
            self.finished.signal()
        }
        thread.name = "kafka-consumer"
        thread.start()
    }

    /// Stops handing records to the delegate and pauses every partition (any assigned later
    /// too), while staying in the group: the owner can then make everything it took durable,
    /// for as long as that takes, before `stop()` leaves and the revocation finds nothing left.
    /// Records fetched meanwhile are not handed over; their positions never moved, so the next
    /// owner reads them. Returns once the poll thread has paused, or false after `timeout`.
    @discardableResult
    public func quiesce(timeout: Duration) -> Bool {
        guard !quiescing.exchange(true, ordering: .acquiringAndReleasing) else { return true }
        return quiesced.wait(timeout: .now() + Double(timeout.milliseconds) / 1_000) == .success
    }

    /// Asks the poll thread to leave the group (its partitions are revoked through the
    /// delegate first) and to close. Returns at once; `waitUntilStopped` waits.
    public func stop() {
        stopping.store(true, ordering: .releasing)
    }

    /// Waits for the poll thread to have left the group and closed. False on timeout.
    public func waitUntilStopped(timeout: Duration) -> Bool {
        finished.wait(timeout: .now() + Double(timeout.milliseconds) / 1_000) == .success
    }

    /// Records behind the end of each assigned partition (high watermark − position), as of the
    /// last second. Empty before the first assignment.
    public var lag: [TopicPartition: Int64] { lagByPartition.withLock { $0 } }

    /// The partitions this member holds now.
    public var assignment: [TopicPartition] { callbacks.assignment.withLock { $0 } }

    /// True while consumption is paused because the delegate had no room.
    public var isPausedForRoom: Bool { pausedForRoom.load(ordering: .relaxed) }

    // MARK: - The poll thread

    private func pollLoop() {
        let rk = handle.rk
        var lastLag = ContinuousClock.now
        var pausedForQuiesce = false
        while !stopping.load(ordering: .acquiring) {
            if !pausedForQuiesce, quiescing.load(ordering: .acquiring) {
                callbacks.stash.withLock { $0.removeAll() }
                setPaused(true)
                pausedForQuiesce = true
                quiesced.signal()
            }
            if !pausedForQuiesce, pausedForRoom.load(ordering: .relaxed), callbacks.delegate.hasRoom() {
                replayStash()
            }
            if let message = rd_kafka_consumer_poll(rk, 100) {
                take(message, pausedForQuiesce: pausedForQuiesce)
                // What is already fetched joins the batch, without waiting for more. A rebalance
                // inside these polls drops the batch's records of the partitions it revokes.
                var count = 1
                while count < configuration.maxBatchSize, let more = rd_kafka_consumer_poll(rk, 0) {
                    take(more, pausedForQuiesce: pausedForQuiesce)
                    count += 1
                }
                deliverBatch()
            }
            if ContinuousClock.now - lastLag >= .seconds(1) {
                updateLag()
                lastLag = ContinuousClock.now
            }
        }
        // Leaving the group runs the revoke callback: the delegate makes the partitions durable.
        rd_kafka_consumer_close(rk)
        rd_kafka_destroy(rk)
    }

    /// Back-pressure without seeking: a record the delegate has no room for is kept here (with
    /// anything librdkafka hands over before the pause takes hold), every partition is paused,
    /// and once there is room the kept records are offered again, in order, before consumption
    /// resumes. librdkafka's position is past them, so resuming neither skips nor repeats one;
    /// a revocation drops the kept records of the partitions it takes.
    /// One fetched message: into the batch, or the stash while paused for room, or dropped while
    /// quiescing (fetched before the pause took hold: read again by the next owner).
    private func take(_ message: UnsafeMutablePointer<rd_kafka_message_t>, pausedForQuiesce: Bool) {
        defer { rd_kafka_message_destroy(message) }
        guard !pausedForQuiesce, let record = record(from: message) else { return }
        if pausedForRoom.load(ordering: .relaxed) {
            // Fetched before the pause took hold: kept, in order, for after it.
            callbacks.stash.withLock { $0.append(record) }
        } else {
            callbacks.batch.withLock { $0.append(record) }
        }
    }

    /// Hands the batch to the delegate; what it does not take is kept, in order, and every
    /// partition paused, until there is room.
    private func deliverBatch() {
        let batch = callbacks.batch.withLock { batch in
            defer { batch.removeAll(keepingCapacity: true) }
            return batch
        }
        guard !batch.isEmpty else { return }
        let taken = callbacks.delegate.consume(batch: batch)
        if taken < batch.count {
            callbacks.stash.withLock { $0 = Array(batch[taken...]) + $0 }
            setPaused(true)
        }
    }

    private func replayStash() {
        while let next = callbacks.stash.withLock({ $0.first }) {
            guard callbacks.delegate.consume(next) == .taken else { return }
            callbacks.stash.withLock { _ = $0.removeFirst() }
        }
        setPaused(false)
    }

    private func record(from message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaRecord? {
        let m = message.pointee
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if m.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                callbacks.delegate.consumerError("consume: \(KafkaError.message(m.err))")
            }
            return nil
        }
        guard let rkt = m.rkt, let topicName = rd_kafka_topic_name(rkt) else { return nil }
        let topic = String(cString: topicName)
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var contentType: String?
        var headers: OpaquePointer?
        if rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
            var pointer: UnsafeRawPointer?
            var size = 0
            if rd_kafka_header_get_last(headers, "content-type", &pointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let pointer {
                contentType = String(decoding: UnsafeRawBufferPointer(start: pointer, count: size), as: UTF8.self)
            }
        }
        return KafkaRecord(
            topic: topic, partition: m.partition, offset: m.offset, key: key, value: value, contentType: contentType)
    }

    private func setPaused(_ paused: Bool) {
        callbacks.pauseNewAssignments.store(paused || quiescing.load(ordering: .acquiring), ordering: .releasing)
        let partitions = assignment
        guard !partitions.isEmpty else {
            pausedForRoom.store(false, ordering: .relaxed)
            return
        }
        let list = Self.makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = paused ? rd_kafka_pause_partitions(handle.rk, list) : rd_kafka_resume_partitions(handle.rk, list)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            callbacks.delegate.consumerError("\(paused ? "pause" : "resume"): \(KafkaError.message(code))")
        }
        pausedForRoom.store(paused, ordering: .relaxed)
    }

    private func updateLag() {
        let partitions = assignment
        guard !partitions.isEmpty else {
            lagByPartition.withLock { $0 = [:] }
            return
        }
        let list = Self.makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_position(handle.rk, list)
        var lag: [TopicPartition: Int64] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[i]
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(handle.rk, element.topic, element.partition, &low, &high)
                == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0
            else { continue }
            let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            let position =
                element.offset >= 0 ? element.offset : callbacks.startOffsets.withLock { $0[partition] } ?? low
            lag[partition] = max(0, high - position)
        }
        lagByPartition.withLock { $0 = lag }
    }
}

/// Carries the delegate into librdkafka's C callbacks, through the handle's opaque pointer
/// (the consumer keeps it alive as long as the handle).
fileprivate final class ConsumerCallbacks: Sendable, KafkaLogDestination {
    let delegate: any KafkaConsumerDelegate
    let logger: Logger
    let assignment = Mutex<[TopicPartition]>([])
    /// Records held back by back-pressure (see `KafkaConsumer.deliverBatch`).
    let stash = Mutex<[KafkaRecord]>([])
    /// Records fetched by the current poll, not yet handed to the delegate.
    let batch = Mutex<[KafkaRecord]>([])
    /// Where each assigned partition was started: its position until a first record is fetched
    /// (librdkafka reports none before that, e.g. for a partition assigned at its end).
    let startOffsets = Mutex<[TopicPartition: Int64]>([:])
    /// Set while the consumer is paused (back-pressure or quiesce): partitions assigned meanwhile
    /// start paused too.
    let pauseNewAssignments = Atomic<Bool>(false)

    init(delegate: any KafkaConsumerDelegate, logger: Logger) {
        self.delegate = delegate
        self.logger = logger
    }

    /// On the poll thread, inside rd_kafka_consumer_poll or rd_kafka_consumer_close.
    func rebalance(
        rk: OpaquePointer, code: rd_kafka_resp_err_t, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let partitions = KafkaConsumer.partitions(of: list)
        // Cooperative (incremental) rebalancing: only the partitions that move are revoked and
        // assigned; the ones a member keeps go on untouched, with no flush and no restart.
        switch code {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let stored = delegate.partitionsAssigned(partitions)
            let unpositioned = partitions.filter { stored[$0] == nil }
            // nil: the group's offsets could not be read; librdkafka then reads them itself
            // (OFFSET_STORED), never falling back to the beginning while they may exist.
            let committed = unpositioned.isEmpty ? [:] : KafkaConsumer.committedOffsets(rk: rk, unpositioned)
            var starts = stored
            for i in 0..<Int(list.pointee.cnt) {
                let element = list.pointee.elems[i]
                let key = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
                if let offset = stored[key] ?? committed?[key] {
                    starts[key] = offset
                    list.pointee.elems[i].offset = offset
                } else {
                    list.pointee.elems[i].offset = Int64(committed == nil ? RD_KAFKA_OFFSET_STORED : RD_KAFKA_OFFSET_BEGINNING)
                }
            }
            if let committed, !committed.isEmpty {
                logger.notice(
                    "kafka partitions without a stored position start where their consumer group committed in Kafka",
                    metadata: [
                        "partitions": "\(committed.sorted { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }.map { "\($0.key):\($0.value)" }.joined(separator: " "))"
                    ])
            } else if committed == nil {
                logger.warning(
                    "could not read the consumer group's committed offsets; librdkafka reads them before fetching",
                    metadata: ["partitions": "\(unpositioned.count)"])
            }
            startOffsets.withLock { offsets in
                for (partition, offset) in starts { offsets[partition] = offset }
            }
            assignment.withLock { $0 = Array(Set($0).union(partitions)) }
            if let error = rd_kafka_incremental_assign(rk, list) {
                delegate.consumerError("assign: \(String(cString: rd_kafka_error_string(error)))")
                rd_kafka_error_destroy(error)
            }
            if pauseNewAssignments.load(ordering: .acquiring) {
                rd_kafka_pause_partitions(rk, list)
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let revoked = Set(partitions)
            stash.withLock { $0.removeAll { revoked.contains($0.topicPartition) } }
            batch.withLock { $0.removeAll { revoked.contains($0.topicPartition) } }
            delegate.partitionsRevoked(partitions)
            assignment.withLock { $0.removeAll { revoked.contains($0) } }
            startOffsets.withLock { offsets in for partition in revoked { offsets[partition] = nil } }
            if let error = rd_kafka_incremental_unassign(rk, list) {
                delegate.consumerError("unassign: \(String(cString: rd_kafka_error_string(error)))")
                rd_kafka_error_destroy(error)
            }
        default:
            // Partitions lost without a clean revoke (session timed out): another member owns
            // them now and starts from the stored positions; forget them here.
            delegate.consumerError("rebalance: \(KafkaError.message(code))")
            let lost = Set(partitions)
            stash.withLock { $0.removeAll { lost.contains($0.topicPartition) } }
            batch.withLock { $0.removeAll { lost.contains($0.topicPartition) } }
            delegate.partitionsRevoked(partitions)
            assignment.withLock { $0.removeAll { lost.contains($0) } }
            startOffsets.withLock { offsets in for partition in lost { offsets[partition] = nil } }
            if let error = rd_kafka_incremental_unassign(rk, list) { rd_kafka_error_destroy(error) }
        }
    }
}

private func rebalanceCallback(
    rk: OpaquePointer?, code: rd_kafka_resp_err_t, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    opaque: UnsafeMutableRawPointer?
) {
    guard let rk, let list, let opaque else { return }
    Unmanaged<ConsumerCallbacks>.fromOpaque(opaque).takeUnretainedValue().rebalance(rk: rk, code: code, list: list)
}

private func errorCallback(rk: OpaquePointer?, code: Int32, reason: UnsafePointer<CChar>?, opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    let callbacks = Unmanaged<ConsumerCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    callbacks.delegate.consumerError(reason.map { String(cString: $0) } ?? "error \(code)")
}
