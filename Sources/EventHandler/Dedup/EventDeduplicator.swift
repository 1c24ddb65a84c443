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
    }

    /// Where a Kafka record's event came from: a claim made for it names it, so the partition's
    /// next owner can tell whether its holder committed it (see `KafkaIngest`).
    struct KafkaCoordinate: Sendable, Equatable {
        var topic: String
        var partition: Int32
        var offset: Int64
    }

    /// Who holds a claim, as its value says.
    struct Holder: Sendable, Equatable {
        var instance: String
        var kafka: KafkaCoordinate?
    }

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
    }

    let configuration: Configuration
    let held: HeldEventIDs
    private let redis: RedisClient?
    /// Asks the database whether a flush committed (`flush_commits`); blocking.
    private let isFlushCommitted: @Sendable (Int64) throws -> Bool
    /// Names this process in claim values.
    let instance: String
    private let logger: Logger
    private let keyPrefix: String
    /// `eh:flush:{ns}:`, then instance, colon, flush id: set once a marked flush committed.
    private let flushPrefix: String
    /// `DEDUP_TTL` and `DEDUP_LEASE` in milliseconds, as command arguments.
    private let ttlArgument: String
    private let leaseArgument: String
    /// `eh:live:{ns}:{instance}`: present while the instance runs (renewed every third of the
    /// lease), so others can tell a dead holder's marks from a live one's.
    private let livePrefix: String
    private let stopping = Atomic<Bool>(false)
    /// Set when committed ids may be left unrecorded in Redis (it was away at their commit, or
    /// their record failed): the maintenance thread then looks for them. Not on every pass: the
    /// look walks every held id, and the ids of a record in flight are not left over.
    private let unrecordedLeft = Atomic<Bool>(false)
    private let maintenanceDone = DispatchSemaphore(value: 0)

    /// Events admitted on the in-memory check alone because Redis was unreachable (open mode).
    let admittedWithoutRedis = Atomic<Int>(0)
    private let duplicatesInMemory = Atomic<Int>(0)
    private let duplicatesInRedis = Atomic<Int>(0)

    /// Repeats found, by where.
    func duplicates(_ source: DuplicateSource) -> Int {
        source == .memory ? duplicatesInMemory.load(ordering: .relaxed) : duplicatesInRedis.load(ordering: .relaxed)
    }

    /// Redis commands that failed for want of a connection.
    var redisFailedCommands: Int { redis?.failedCommands ?? 0 }

    init(
        configuration: Configuration, redis: RedisClient?,
        isFlushCommitted: @escaping @Sendable (Int64) throws -> Bool = { _ in false }, logger: Logger
    ) {
        self.configuration = configuration
        self.redis = redis
        self.isFlushCommitted = isFlushCommitted
        self.logger = logger
        held = HeldEventIDs(capacity: configuration.localCapacity)
        keyPrefix = "eh:dedup:\(configuration.namespace):"
        flushPrefix = "eh:flush:\(configuration.namespace):"
        ttlArgument = "\(configuration.ttl.milliseconds)"
        leaseArgument = "\(configuration.lease.milliseconds)"
        livePrefix = "eh:live:\(configuration.namespace):"
        instance = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let thread = Thread { [self] in
            self.maintain()
            self.maintenanceDone.signal()
        }
        thread.name = "dedup-maintenance"
        thread.start()
    }

    /// True when Redis is configured and answering.
    var redisUp: Bool { redis?.isUp ?? false }
    var usesRedis: Bool { redis != nil }

    // MARK: - Admission

    /// Admits one event id without blocking the caller (gRPC handlers on an event loop):
    /// `completion` runs at once when memory decides, else on the Redis thread with its reply.
    func admit(_ id: String, kafka: KafkaCoordinate? = nil, completion: @escaping @Sendable (Admission) -> Void) {
        if let held = reserved(id) { return completion(held) }
        guard let redis else { return completion(.admitted(claimed: false)) }
        redis.submit([claimCommand(id, kafka: kafka)]) { [self] reply in
            switch settle(id, reply: reply?.first) {
            case .settled(let admission):
                completion(counted(admission))
            case .committing(let mark):
                // A repeat of an event of a marked flush: its flush key says committed, in one
                // more round trip.
                redis.submit([flushKeyQuery(mark)]) { [self] replies in
                    if Self.saysCommitted(replies?.first) { return completion(counted(.duplicate(.redis))) }
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
        guard let redis else { return .admitted(claimed: false) }
        switch settle(id, reply: redis.execute([claimCommand(id, kafka: kafka)])?.first) {
        case .settled(let admission): return counted(admission)
        case .committing(let mark):
            if Self.saysCommitted(redis.execute([flushKeyQuery(mark)])?.first) { return counted(.duplicate(.redis)) }
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
            } else if redis == nil {
                answers[index] = .admitted(claimed: false)
            } else {
                asking.append(index)
            }
        }
        if let redis, !asking.isEmpty {
            let replies = redis.execute(asking.map { claimCommand(items[$0].id, kafka: items[$0].kafka) })
            var marked: [(index: Int, mark: CommittingMark)] = []
            for (position, index) in asking.enumerated() {
                let reply = replies.flatMap { position < $0.count ? $0[position] : nil }
                switch settle(items[index].id, reply: reply) {
                case .settled(let admission): answers[index] = counted(admission)
                case .committing(let mark): marked.append((index, mark))
                }
            }
            // Repeats of events of marked flushes: their flush keys, in one more round trip.
            if !marked.isEmpty {
                let flushes = redis.execute(marked.map { flushKeyQuery($0.mark) })
                for (position, item) in marked.enumerated() {
                    let reply = flushes.flatMap { position < $0.count ? $0[position] : nil }
                    answers[item.index] =
                        Self.saysCommitted(reply)
                        ? counted(.duplicate(.redis)) : counted(resolve(items[item.index].id, item.mark, kafka: items[item.index].kafka))
                }
            }
        }
        return answers.map { $0! }
    }

    /// Holds `id` in memory as admitting; nil when that worked, else the answer: a duplicate
    /// (held in the buffer or committed) or "later" (another delivery of it is being admitted).
    private func reserved(_ id: String) -> Admission? {
        switch held.reserve(id, now: MonotonicTime.now) {
        case .reserved: return nil
        case .held: return counted(.duplicate(.memory))
        case .admitting: return .heldElsewhere(Holder(instance: instance, kafka: nil))
        }
    }

    /// The admitted event of `id` is in the buffer: repeats are duplicates from now on.
    func buffered(_ id: String) {
        held.buffered(id)
    }

    /// A claim's value `k`, tab, instance, tab, flush id: the holder marked the id as committing
    /// in that flush just before its COMMIT.
    struct CommittingMark: Sendable, Equatable {
        var value: String
        var instance: String
        var flush: Int64
    }

    private enum Settled {
        case settled(Admission)
        case committing(CommittingMark)
    }

    /// Resolves a committing mark: the flush's commit record says whether the event was applied.
    /// - committed: a duplicate (and the mark becomes `c`, so the next repeat needs no lookup);
    /// - not committed, holder alive: its flush failed or is still committing: later;
    /// - not committed, holder gone: it never will: the id is taken over (compare-and-set, so
    ///   one replica wins) and admitted.
    /// Blocking (a database query and Redis round trips).
    private func resolve(_ id: String, _ mark: CommittingMark, kafka: KafkaCoordinate?) -> Admission {
        let holder = Holder(instance: mark.instance, kafka: nil)
        guard let redis else { return .heldElsewhere(holder) }
        let committed: Bool
        do {
            committed = try isFlushCommitted(mark.flush)
        } catch {
            return .heldElsewhere(holder)  // cannot tell now: deliver again later
        }
        if committed {
            var upgrade = RedisCommand("SET")
            upgrade.append(keyPrefix, id)
            upgrade.append("c")
            upgrade.append("PX")
            upgrade.append(ttlArgument)
            upgrade.append("XX")
            redis.submit([upgrade]) { _ in }
            return .duplicate(.redis)
        }
        var alive = RedisCommand("EXISTS")
        alive.append(livePrefix + mark.instance)
        guard mark.instance != instance, case .integer(0)? = redis.execute([alive])?.first else {
            return .heldElsewhere(holder)
        }
        if let held = reserved(id) { return held }
        var takeOver = RedisCommand("EVAL")
        takeOver.append(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0")
        takeOver.append("1")
        takeOver.append(keyPrefix, id)
        takeOver.append(mark.value)
        takeOver.append(claimValue(kafka))
        takeOver.append(leaseArgument)
        guard case .integer(1)? = redis.execute([takeOver])?.first else {
            held.release(id)
            return .heldElsewhere(holder)
        }
        logger.info(
            "took over an event id its dead holder marked as committing in a flush that never committed",
            metadata: ["holder": "\(mark.instance)", "flush_id": "\(mark.flush)"])
        return .admitted(claimed: true)
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
        guard let redis else { return .admitted(claimed: false) }
        var command = RedisCommand("SET")
        command.append(keyPrefix, id)
        command.append(claimValue(kafka))
        command.append("PX")
        command.append(leaseArgument)
        guard case .status = redis.execute([command])?.first else {
            return fallback(id)
        }
        return .admitted(claimed: true)
    }

    /// Lets go of an admitted id whose event did not go into the buffer after all (buffer full,
    /// shutting down): a retry must find it free.
    func release(_ id: String, claimed: Bool) {
        held.release(id)
        guard claimed, let redis else { return }
        // Compare-and-delete: only our own claim goes.
        var command = RedisCommand("EVAL")
        command.append("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
        command.append("1")
        command.append(keyPrefix, id)
        command.append(claimValue(nil))
        redis.submit([command]) { _ in }
    }

    /// The ids of a flush about to commit (flush `id`): marked in Redis as committing in it,
    /// with `DEDUP_TTL`, before the COMMIT is sent. If this process dies before it learns the
    /// outcome, a repeat finds the mark and asks the flush's commit record (see `resolve`); no
    /// moment is left where a committed id looks uncommitted. Blocking (the flush worker's
    /// thread); with Redis away it goes on without the marks (counted, as in open mode).
    /// True when every mark was written (the flush key then records the commit of them all).
    func markCommitting(_ ids: [String], flush id: Int64) -> Bool {
        guard let redis, redis.isUp, !ids.isEmpty else { return false }
        let value = "k\t\(instance)\t\(id)"
        let ttl = ttlArgument
        let commands = ids.map { eventID -> RedisCommand in
            var command = RedisCommand("SET")
            command.append(keyPrefix, eventID)
            command.append(value)
            command.append("PX")
            command.append(ttl)
            return command
        }
        guard let replies = redis.execute(commands), replies.count == commands.count else { return false }
        return replies.allSatisfy { if case .status = $0 { true } else { false } }
    }

    /// The ids of flush `flush`, which committed: recorded as committed in Redis (and kept in
    /// memory until that is done, or for in-process deduplication without Redis). `marked`:
    /// `markCommitting` wrote all their marks, so one flush key records them all; otherwise each
    /// gets its `c`.
    func committed(_ ids: [String], flush: Int64, marked: Bool) {
        guard !ids.isEmpty else { return }
        held.markCommitted(ids, now: MonotonicTime.now)
        guard marked, let redis, redis.isUp else { return record(ids) }
        var command = RedisCommand("SET")
        command.append(flushPrefix, "\(instance):\(flush)")
        command.append("c")
        command.append("PX")
        command.append(ttlArgument)
        redis.submit([command]) { [self] replies in
            guard case .status? = replies?.first else {
                // Kept in memory; the maintenance thread records them one by one.
                unrecordedLeft.store(true, ordering: .relaxed)
                return
            }
            held.markRecorded(ids)
        }
    }

    /// `GET` of the flush key of the flush a mark names.
    private func flushKeyQuery(_ mark: CommittingMark) -> RedisCommand {
        var command = RedisCommand("GET")
        command.append(flushPrefix, "\(mark.instance):\(mark.flush)")
        return command
    }

    private static func saysCommitted(_ reply: RedisReply?) -> Bool {
        if case .string(let bytes)? = reply { return bytes == [UInt8(ascii: "c")] }
        return false
    }

    private func record(_ ids: [String], then done: @escaping @Sendable () -> Void = {}) {
        guard let redis, redis.isUp else {
            unrecordedLeft.store(true, ordering: .relaxed)
            return done()
        }
        let ttl = ttlArgument
        let commands = ids.map { id -> RedisCommand in
            var command = RedisCommand("SET")
            command.append(keyPrefix, id)
            command.append("c")
            command.append("PX")
            command.append(ttl)
            return command
        }
        redis.submit(commands) { [self] replies in
            defer { done() }
            guard let replies else {
                // Kept in memory; the maintenance thread retries.
                unrecordedLeft.store(true, ordering: .relaxed)
                return
            }
            let recorded = zip(ids, replies).compactMap { id, reply -> String? in
                if case .status = reply { return id }
                return nil
            }
            if recorded.count < ids.count { unrecordedLeft.store(true, ordering: .relaxed) }
            held.markRecorded(recorded)
        }
    }

    private func settle(_ id: String, reply: RedisReply?) -> Settled {
        switch reply {
        case .null?:
            return .settled(.admitted(claimed: true))
        case .string(let bytes)?:
            held.release(id)
            let value = String(decoding: bytes, as: UTF8.self)
            if value == "c" { return .settled(.duplicate(.redis)) }
            if let mark = Self.committingMark(from: value) { return .committing(mark) }
            return .settled(.heldElsewhere(Self.holder(from: value)))
        default:
            // Unreachable (nil) or an error reply: Redis cannot vouch either way.
            return .settled(fallback(id))
        }
    }

    private func fallback(_ id: String) -> Admission {
        switch configuration.failMode {
        case .open:
            admittedWithoutRedis.add(1, ordering: .relaxed)
            return .admitted(claimed: false)
        case .closed:
            held.release(id)
            return .unavailable
        }
    }

    // MARK: - Keys and values


    private func claimCommand(_ id: String, kafka: KafkaCoordinate?) -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(keyPrefix, id)
        command.append(claimValue(kafka))
        command.append("NX")
        command.append("PX")
        command.append(leaseArgument)
        command.append("GET")
        return command
    }

    /// `p`, tab, instance; for a Kafka record also tab, topic, tab, partition, tab, offset.
    private func claimValue(_ kafka: KafkaCoordinate?) -> String {
        guard let kafka else { return "p\t\(instance)" }
        return "p\t\(instance)\t\(kafka.topic)\t\(kafka.partition)\t\(kafka.offset)"
    }

    static func committingMark(from value: String) -> CommittingMark? {
        let fields = value.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0] == "k", let flush = Int64(fields[2]) else { return nil }
        return CommittingMark(value: value, instance: String(fields[1]), flush: flush)
    }

    static func holder(from value: String) -> Holder {
        let fields = value.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        let instance = fields.count > 1 ? fields[1] : ""
        if fields.count == 5, let partition = Int32(fields[3]), let offset = Int64(fields[4]) {
            return Holder(instance: instance, kafka: KafkaCoordinate(topic: fields[2], partition: partition, offset: offset))
        }
        return Holder(instance: instance, kafka: nil)
    }

    // MARK: - Maintenance

    /// Renews the leases of claims held here, records committed ids Redis missed while it was
    /// down, and expires what memory keeps, every third of the lease (at most every 5 s).
    private func maintain() {
        let period = min(configuration.lease / 3, .seconds(5))
        while !stopping.load(ordering: .acquiring) {
            Thread.sleep(forTimeInterval: min(period.seconds, 0.5))
            let now = MonotonicTime.now
            if let redis, redis.isUp {
                renewLeases(now: now, period: period)
                // Back after an outage, or leftovers from a failed record: record them now.
                if unrecordedLeft.exchange(false, ordering: .relaxed), held.committed > 0 {
                    let unrecorded = held.committedIDs(limit: 10_000)
                    if unrecorded.count == 10_000 { unrecordedLeft.store(true, ordering: .relaxed) }
                    if !unrecorded.isEmpty { record(unrecorded) }
                }
            }
            // Expiry takes the oldest commits from the front of a queue: its cost is what expires.
            if held.committed + held.recorded > 0 {
                let ttl = UInt64(configuration.ttl.nanoseconds)
                held.expire(committedBefore: now > ttl ? now - ttl : 0)
            }
        }
    }

    private let lastRenewal = Mutex<UInt64>(0)

    /// KEYS: claims to renew; ARGV[1]: our claim value, ARGV[2]: the lease in milliseconds.
    static let renewScript = """
        for _, key in ipairs(KEYS) do
          local value = redis.call('GET', key)
          if not value then redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
          elseif string.sub(value, 1, 1) == 'p' then redis.call('PEXPIRE', key, ARGV[2]) end
        end
        return #KEYS
        """

    private func renewLeases(now: UInt64, period: Duration) {
        let periodNanos = UInt64(period.nanoseconds)
        let due = lastRenewal.withLock { last -> Bool in
            guard now - last >= periodNanos else { return false }
            last = now
            return true
        }
        guard due, let redis else { return }
        let ids = held.claimedIDs(since: now > periodNanos ? now - periodNanos : 0)
        let lease = leaseArgument
        var commands: [RedisCommand] = []
        commands.reserveCapacity(ids.count / 500 + 2)
        var live = RedisCommand("SET")
        live.append(livePrefix + instance)
        live.append("1")
        live.append("PX")
        live.append(lease)
        commands.append(live)
        // Extend our claims; re-create one that expired while Redis was away. Only a claim (`p`)
        // is touched: the id's flush may have committed since the list was taken, and its `c`
        // (or `k`) must keep its own TTL, not be cut to the lease (found by the Redis fault
        // scenario: a `c` cut to 30 s let a late repeat be applied again).
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ ids[$0..<min($0 + 500, ids.count)] }) {
            var renew = RedisCommand("EVAL")
            renew.append(Self.renewScript)
            renew.append("\(chunk.count)")
            for id in chunk { renew.append(keyPrefix, id) }
            renew.append(claimValue(nil))
            renew.append(lease)
            commands.append(renew)
        }
        redis.submit(commands) { _ in }
    }

    /// At shutdown, after the last flush: records the committed ids Redis has not got yet
    /// (bounded by `timeout`), stops the maintenance thread and closes Redis. Blocking.
    func stop(timeout: Duration) {
        stopping.store(true, ordering: .releasing)
        _ = maintenanceDone.wait(timeout: .now() + 2)
        guard let redis else { return }
        let deadline = ContinuousClock.now + timeout
        while redis.isUp, ContinuousClock.now < deadline {
            let left = held.committedIDs(limit: 10_000)
            if left.isEmpty { break }
            let done = DispatchSemaphore(value: 0)
            record(left) { done.signal() }
            _ = done.wait(timeout: .now() + max(0, (deadline - ContinuousClock.now).seconds))
        }
        var gone = RedisCommand("DEL")
        gone.append(livePrefix + instance)
        _ = redis.execute([gone])
        if held.committed > 0 {
            logger.warning(
                "stopping with committed event ids not recorded in Redis: a repeat of one reaching another replica may be applied again",
                metadata: ["ids": "\(held.committed)"])
        }
        redis.close()
    }
}
