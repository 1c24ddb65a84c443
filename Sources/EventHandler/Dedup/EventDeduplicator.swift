import Dispatch
import Foundation
import Logging
import Redis
import Synchronization

/// Applies a repeated event id once (wire.md: the bridge retries, and the same `id` marks a
/// repeat), within this process and, through Redis, across replicas.
///
/// The protocol, per id (key `eh:dedup:{AB_NAMESPACE}:{id}`):
/// 1. **Admit**: hold the id in memory (`HeldEventIDs`; a repeat already held here is a
///    duplicate without asking Redis), then claim it in Redis with `SET key "p…" NX PX lease GET`
///    in the same round trip as reading what was there:
///    - nothing there: the claim is ours; the event goes into the buffer;
///    - `c`: a delivery of it committed within `DEDUP_TTL`: a duplicate, acknowledged, not applied;
///    - `p…`: another delivery holds it and has not committed (on another replica, or in a
///      process that died: its lease then runs out): "deliver again later".
/// 2. **Commit**: just before a flush commits, its ids are marked `k` (committing in flush N, by
///    this instance) with `PX DEDUP_TTL`; once it has committed, one key records that:
///    `eh:flush:{AB_NAMESPACE}:{instance}:{N}` = `c`, same TTL. A mark whose flush key is there
///    means committed, as `c` does: two writes per event in all, not three (a `c` per id after the
///    commit was a third of Redis's work). Until the commit a repeat finds the claim or the mark,
///    so it is never applied twice; a flush that fails keeps the ids claimed and its entries
///    buffered, so a retry is never turned into a drop. Ids whose mark could not be written
///    (Redis away) are recorded as `c` one by one once it is back.
/// 3. **Lease**: claims held here longer than a third of `DEDUP_LEASE` are renewed, so a long
///    database outage does not let another replica take them; a process that dies stops renewing
///    and its claims free themselves.
///
/// Redis unreachable: with `DEDUP_FAIL_MODE=open` (default) events are admitted on the
/// in-memory check alone (repeats reaching this process are still caught; committed ids stay in
/// memory, bounded, and are recorded in Redis once it is back); with `closed` every event with an
/// id is pushed back until Redis answers. Each transition is logged once and counted.
///
/// Crashes: a repeat finding a mark without its flush key asks the flush's commit record in
/// PostgreSQL (`resolve`). So a crash between the COMMIT and the flush key applies nothing
/// twice. Only while Redis is unreachable are no marks written.
final class EventDeduplicator: Sendable {
    enum FailMode: String, Sendable, CaseIterable {
        case open
        case closed
    }

    struct Configuration: Sendable {
        var namespace: String
        var ttl: Duration
        var lease: Duration
        var failMode: FailMode
        /// Committed ids kept in memory when Redis is off or down.
        var localCapacity: Int
        /// Most ids held whose events have not committed (`BUFFER_EVENT_ID_LIMIT`).
        var pendingLimit: Int = .max
    }

    typealias KafkaCoordinate = DedupPolicy.KafkaCoordinate
    typealias Holder = DedupPolicy.Holder
    typealias CommittingMark = DedupPolicy.CommittingMark

    enum DuplicateSource: String, Sendable, CaseIterable {
        /// Held by this process (in the buffer, or committed and remembered).
        case memory
        /// Recorded as committed in Redis (by this or another replica).
        case redis
    }

    enum Admission: Sendable, Equatable {
        /// The event may go into the buffer. `claimed`: Redis holds our claim (false when Redis
        /// is off, or down in open mode).
        case admitted(claimed: Bool)
        case duplicate(DuplicateSource)
        /// Another delivery holds the id and has not committed it.
        case heldElsewhere(Holder)
        /// Redis is unreachable and `DEDUP_FAIL_MODE=closed`.
        case unavailable
        /// `BUFFER_EVENT_ID_LIMIT` ids wait for their commit already (a database outage): push
        /// back, as for a full buffer.
        case full
    }

    let configuration: Configuration
    let held: HeldEventIDs
    /// Redis's keys, values and scripts, and its client (nil: in-process deduplication only).
    let store: RedisDedupStore?
    /// Asks the database whether a flush committed (`flush_commits`); blocking.
    private let isFlushCommitted: @Sendable (Int64) throws -> Bool
    /// Names this process in claim values.
    let instance: String
    let logger: Logger
    let stopping = Atomic<Bool>(false)
    /// Set when committed ids may be left unrecorded in Redis (it was away at their commit, or
    /// their record failed): the maintenance thread then looks for them. Not on every pass: the
    /// look walks every held id, and the ids of a record in flight are not left over.
    let unrecordedLeft = Atomic<Bool>(false)
    let maintenanceDone = DispatchSemaphore(value: 0)
    let lastRenewal = Mutex<UInt64>(0)

    /// Events admitted on the in-memory check alone because Redis was unreachable (open mode).
    let admittedWithoutRedis = Atomic<Int>(0)
    private let duplicatesInMemory = Atomic<Int>(0)
    private let duplicatesInRedis = Atomic<Int>(0)

    /// Repeats found, by where.
    func duplicates(_ source: DuplicateSource) -> Int {
        source == .memory ? duplicatesInMemory.load(ordering: .relaxed) : duplicatesInRedis.load(ordering: .relaxed)
    }

    /// Redis commands that failed for want of a connection.
    var redisFailedCommands: Int { store?.client.failedCommands ?? 0 }

    init(
        configuration: Configuration, redis: RedisClient?,
        isFlushCommitted: @escaping @Sendable (Int64) throws -> Bool = { _ in false }, logger: Logger
    ) {
        self.configuration = configuration
        self.isFlushCommitted = isFlushCommitted
        self.logger = logger
        held = HeldEventIDs(capacity: configuration.localCapacity, pendingLimit: configuration.pendingLimit)
        let instance = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        self.instance = instance
        store = redis.map {
            RedisDedupStore(client: $0, namespace: configuration.namespace, instance: instance, ttl: configuration.ttl, lease: configuration.lease)
        }
        let thread = Thread { [self] in
            self.maintain()
            self.maintenanceDone.signal()
        }
        thread.name = "dedup-maintenance"
        thread.start()
    }

    /// True when Redis is configured and answering.
    var redisUp: Bool { store?.client.isUp ?? false }
    var usesRedis: Bool { store != nil }

    // MARK: - Admission

    /// Admits one event id without blocking the caller (gRPC handlers on an event loop):
    /// `completion` runs at once when memory decides, else on the Redis thread with its reply.
    func admit(_ id: String, kafka: KafkaCoordinate? = nil, completion: @escaping @Sendable (Admission) -> Void) {
        if let held = reserved(id) { return completion(held) }
        guard let store else { return completion(.admitted(claimed: false)) }
        store.client.submit([store.claim(id, kafka: kafka)]) { [self] reply in
            switch afterClaim(id, reply: reply?.first) {
            case .settled(let admission):
                completion(counted(admission))
            case .committing(let mark):
                // A repeat of an event of a marked flush: its flush key says committed, in one
                // more round trip.
                store.client.submit([store.flushKey(of: mark)]) { [self] replies in
                    if RedisDedupStore.saysCommitted(replies?.first) { return completion(counted(.duplicate(.redis))) }
                    // Rare (its flush was committing when its process died or failed): the
                    // database answers, on a thread of our own, not Redis's.
                    let thread = Thread { completion(self.counted(self.resolve(id, mark, kafka: kafka))) }
                    thread.name = "dedup-resolve"
                    thread.start()
                }
            }
        }
    }

    /// Admits one event id, blocking the calling thread (the Kafka consumer's own thread).
    func admitBlocking(_ id: String, kafka: KafkaCoordinate? = nil) -> Admission {
        if let held = reserved(id) { return held }
        guard let store else { return .admitted(claimed: false) }
        switch afterClaim(id, reply: store.client.execute([store.claim(id, kafka: kafka)])?.first) {
        case .settled(let admission): return counted(admission)
        case .committing(let mark):
            if RedisDedupStore.saysCommitted(store.client.execute([store.flushKey(of: mark)])?.first) {
                return counted(.duplicate(.redis))
            }
            return counted(resolve(id, mark, kafka: kafka))
        }
    }

    /// Admits the ids of a batch of Kafka records, blocking (the consumer's thread), with one
    /// pipelined Redis round trip for every claim that memory does not decide: the same answers,
    /// in order, as `admitBlocking` one by one, without a round trip per record. The ids must
    /// differ (a repeat within the batch is admitted after the first is buffered).
    func admitBatchBlocking(_ items: [(id: String, kafka: KafkaCoordinate)]) -> [Admission] {
        var answers = [Admission?](repeating: nil, count: items.count)
        var asking: [Int] = []
        for (index, item) in items.enumerated() {
            if let held = reserved(item.id) {
                answers[index] = held
            } else if store == nil {
                answers[index] = .admitted(claimed: false)
            } else {
                asking.append(index)
            }
        }
        if let store, !asking.isEmpty {
            let replies = store.client.execute(asking.map { store.claim(items[$0].id, kafka: items[$0].kafka) })
            var marked: [(index: Int, mark: CommittingMark)] = []
            for (position, index) in asking.enumerated() {
                let reply = replies.flatMap { position < $0.count ? $0[position] : nil }
                switch afterClaim(items[index].id, reply: reply) {
                case .settled(let admission): answers[index] = counted(admission)
                case .committing(let mark): marked.append((index, mark))
                }
            }
            // Repeats of events of marked flushes: their flush keys, in one more round trip.
            if !marked.isEmpty {
                let flushes = store.client.execute(marked.map { store.flushKey(of: $0.mark) })
                for (position, item) in marked.enumerated() {
                    let reply = flushes.flatMap { position < $0.count ? $0[position] : nil }
                    answers[item.index] =
                        RedisDedupStore.saysCommitted(reply)
                        ? counted(.duplicate(.redis)) : counted(resolve(items[item.index].id, item.mark, kafka: items[item.index].kafka))
                }
            }
        }
        return answers.map { $0! }
    }

    /// Holds `id` in memory as admitting; nil when that worked, else the answer: a duplicate
    /// (held in the buffer or committed), "later" (another delivery of it is being admitted) or
    /// "full" (too many ids wait for their commit).
    private func reserved(_ id: String) -> Admission? {
        switch held.reserve(id, now: MonotonicTime.now) {
        case .reserved: return nil
        case .held: return counted(.duplicate(.memory))
        case .admitting: return .heldElsewhere(Holder(instance: instance, kafka: nil))
        case .full: return .full
        }
    }

    /// The admitted event of `id` is in the buffer: repeats are duplicates from now on.
    func buffered(_ id: String) {
        held.buffered(id)
    }

    private enum Claimed {
        case settled(Admission)
        case committing(CommittingMark)
    }

    /// A claim's reply, decided by `DedupPolicy` and applied to memory: an id settled by someone
    /// else's value is not held here.
    private func afterClaim(_ id: String, reply: RedisReply?) -> Claimed {
        switch DedupPolicy.afterClaim(RedisDedupStore.claimReply(reply)) {
        case .admit:
            return .settled(.admitted(claimed: true))
        case .settled(let admission):
            held.release(id)
            return .settled(admission)
        case .askFlushKey(let mark):
            held.release(id)
            return .committing(mark)
        case .fallBack:
            return .settled(fallback(id))
        }
    }

    /// Resolves a committing mark whose flush key is absent (`DedupPolicy.resolveMark`): a
    /// committed flush makes a duplicate (and the mark becomes `c`); a dead holder whose flush
    /// never committed lets the id be taken over (compare-and-set, so one replica wins);
    /// anything else is "later". Blocking (a database query and Redis round trips).
    private func resolve(_ id: String, _ mark: CommittingMark, kafka: KafkaCoordinate?) -> Admission {
        let holder = Holder(instance: mark.instance, kafka: nil)
        guard let store else { return .heldElsewhere(holder) }
        let flushCommitted = try? isFlushCommitted(mark.flush)
        let holderIsThisProcess = mark.instance == instance
        var holderAlive: Bool?
        if flushCommitted == false, !holderIsThisProcess {
            switch store.client.execute([store.isAlive(mark.instance)])?.first {
            case .integer(0)?: holderAlive = false
            case .integer?: holderAlive = true
            default: holderAlive = nil
            }
        }
        switch DedupPolicy.resolveMark(flushCommitted: flushCommitted, holderAlive: holderAlive, holderIsThisProcess: holderIsThisProcess) {
        case .duplicate:
            store.client.submit([store.upgradeToCommitted(id)]) { _ in }
            return .duplicate(.redis)
        case .later:
            return .heldElsewhere(holder)
        case .takeOver:
            if let held = reserved(id) { return held }
            guard case .integer(1)? = store.client.execute([store.takeOver(id, from: mark, kafka: kafka)])?.first else {
                held.release(id)
                return .heldElsewhere(holder)
            }
            logger.info(
                "took over an event id its dead holder marked as committing in a flush that never committed",
                metadata: ["holder": "\(mark.instance)", "flush_id": "\(mark.flush)"])
            return .admitted(claimed: true)
        }
    }

    /// Counts a duplicate found where `admission` says.
    func counted(_ admission: Admission) -> Admission {
        if case .duplicate(let source) = admission {
            if source == .memory {
                duplicatesInMemory.add(1, ordering: .relaxed)
            } else {
                duplicatesInRedis.add(1, ordering: .relaxed)
            }
        }
        return admission
    }

    /// Takes back the count of a duplicate whose record was not taken after all (it will be
    /// offered, and counted, again).
    func uncount(_ source: DuplicateSource) {
        if source == .memory {
            duplicatesInMemory.subtract(1, ordering: .relaxed)
        } else {
            duplicatesInRedis.subtract(1, ordering: .relaxed)
        }
    }

    /// Takes over a claim whose holder can never commit it (a Kafka record the partition's
    /// previous owner claimed and did not commit: fencing stops it from ever committing).
    func takeOver(_ id: String, kafka: KafkaCoordinate) -> Admission {
        if let held = reserved(id) { return held }
        guard let store else { return .admitted(claimed: false) }
        guard RedisDedupStore.wrote(store.client.execute([store.overwriteClaim(id, kafka: kafka)])?.first) else {
            return fallback(id)
        }
        return .admitted(claimed: true)
    }

    /// Lets go of an admitted id whose event did not go into the buffer after all (buffer full,
    /// shutting down): a retry must find it free.
    func release(_ id: String, claimed: Bool) {
        held.release(id)
        guard claimed, let store else { return }
        store.client.submit([store.release(id)]) { _ in }
    }

    /// The ids of a flush about to commit (flush `id`): marked in Redis as committing in it,
    /// with `DEDUP_TTL`, before the COMMIT is sent. If this process dies before it learns the
    /// outcome, a repeat finds the mark and asks the flush's commit record (see `resolve`); no
    /// moment is left where a committed id looks uncommitted. Blocking (the flush worker's
    /// thread); with Redis away it goes on without the marks (counted, as in open mode).
    /// True when every mark was written (the flush key then records the commit of them all).
    func markCommitting(_ ids: [String], flush id: Int64) -> Bool {
        guard let store, store.client.isUp, !ids.isEmpty else { return false }
        let commands = store.markCommitting(ids, flush: id)
        guard let replies = store.client.execute(commands), replies.count == commands.count else { return false }
        return replies.allSatisfy { RedisDedupStore.wrote($0) }
    }

    /// The ids of flush `flush`, which committed: recorded as committed in Redis (and kept in
    /// memory until that is done, or for in-process deduplication without Redis). `marked`:
    /// `markCommitting` wrote all their marks, so one flush key records them all; otherwise each
    /// gets its `c`.
    func committed(_ ids: [String], flush: Int64, marked: Bool) {
        guard !ids.isEmpty else { return }
        held.markCommitted(ids, now: MonotonicTime.now)
        guard marked, let store, store.client.isUp else { return record(ids) }
        store.client.submit([store.flushCommitted(flush)]) { [self] replies in
            guard RedisDedupStore.wrote(replies?.first) else {
                // Kept in memory; the maintenance thread records them one by one.
                unrecordedLeft.store(true, ordering: .relaxed)
                return
            }
            held.markRecorded(ids)
        }
    }

    /// Records committed ids as `c` one by one (their marks were not all written); what Redis
    /// does not take stays in memory for the maintenance thread.
    func record(_ ids: [String], then done: @escaping @Sendable () -> Void = {}) {
        guard let store, store.client.isUp else {
            unrecordedLeft.store(true, ordering: .relaxed)
            return done()
        }
        store.client.submit(store.record(ids)) { [self] replies in
            defer { done() }
            guard let replies else {
                // Kept in memory; the maintenance thread retries.
                unrecordedLeft.store(true, ordering: .relaxed)
                return
            }
            let recorded = zip(ids, replies).compactMap { id, reply in RedisDedupStore.wrote(reply) ? id : nil }
            if recorded.count < ids.count { unrecordedLeft.store(true, ordering: .relaxed) }
            held.markRecorded(recorded)
        }
    }

    private func fallback(_ id: String) -> Admission {
        let admission = DedupPolicy.fallback(configuration.failMode)
        switch admission {
        case .admitted: admittedWithoutRedis.add(1, ordering: .relaxed)
        default: held.release(id)
        }
        return admission
    }
}
