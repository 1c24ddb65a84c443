import Buffer
import Synchronization

/// The event ids this process holds in memory: the first line of deduplication, and the only one
/// while Redis is away.
///
/// An id is here from the moment its event is admitted until Redis has recorded it as committed
/// (or, without Redis, until `DEDUP_TTL` passes or `capacity` pushes it out):
/// - `admitting`: reserved by a delivery that is being admitted (its Redis claim on the way), not
///   in the buffer yet. A repeat must not be answered OK now: its sender would go on to the
///   user's next event, which could reach the buffer first and be overwritten by this one. It is
///   told "later" instead.
/// - `claimed`: in the buffer, not yet committed. A repeat is a duplicate of an event that is on
///   its way; the lease on its Redis claim is renewed while it stays here, so no other replica
///   takes the id meanwhile.
/// - `committed`: its flush committed. `recorded` once Redis holds its `c`; kept either way,
///   until `DEDUP_TTL` passes or `capacity` pushes it out, as the in-process record: were it
///   dropped as soon as Redis held it, a repeat arriving while Redis is unreachable would find
///   nothing anywhere and be applied again (found by the Redis fault scenario).
///
/// 64 mutex-guarded shards by the id's 64-bit FNV-1a hash, computed once per call (`HeldID`):
/// the gRPC handlers and the Kafka thread reserve concurrently without one lock between them,
/// and a lookup compares the stored hashes before it compares two ids' bytes. Committed ids are
/// also queued in the order they committed, so expiry and the capacity take the oldest from the
/// front instead of walking (and rebuilding) every shard.
final class HeldEventIDs: Sendable {
    enum State: Sendable, Equatable {
        case admitting(since: UInt64)
        case claimed(since: UInt64)
        case committed(at: UInt64, recorded: Bool)

        /// Admitting or claimed: held, not committed.
        var since: UInt64? {
            switch self {
            case .admitting(let since), .claimed(let since): since
            case .committed: nil
            }
        }

        var committedAt: UInt64? {
            if case .committed(let at, _) = self { return at }
            return nil
        }
    }

    enum Reservation: Sendable, Equatable {
        /// Held now, as admitting.
        case reserved
        /// Another delivery of it is being admitted and is not in the buffer yet.
        case admitting
        /// In the buffer, or committed: a duplicate.
        case held
        /// Not held, and `pendingLimit` ids wait for their commit already: push back.
        case full
    }

    /// Most committed ids kept for in-process deduplication (claimed ids are never dropped).
    let capacity: Int
    /// Most ids held at once whose events have not committed (admitting and claimed), the
    /// memory a database outage can make the service hold (`BUFFER_EVENT_ID_LIMIT`): past it a
    /// new id is refused, as a full buffer refuses a new entry, until a flush commits.
    var pendingLimit: Int { claimedCount.limit }
    private let shards: [Shard]
    private let claimedCount: BoundedCount
    private let committedCount = Atomic<Int>(0)
    private let recordedCount = Atomic<Int>(0)
    /// Every id marked committed, oldest first (an id committed twice, after it expired and came
    /// back, is queued twice; the older entry no longer matches its state and is skipped).
    private let committedOrder = Mutex(CommitQueue())

    private final class Shard: Sendable {
        let ids = Mutex<[HeldID: State]>([:])
    }

    init(capacity: Int, pendingLimit: Int = .max, shardCount: Int = 64) {
        self.capacity = capacity
        claimedCount = BoundedCount(limit: pendingLimit)
        shards = (0..<shardCount).map { _ in Shard() }
    }

    private func shard(_ key: HeldID) -> Shard {
        shards[Int(truncatingIfNeeded: (key.hash >> 32) % UInt64(shards.count))]
    }

    var claimed: Int { claimedCount.count }
    /// Committed, not yet recorded in Redis.
    var committed: Int { committedCount.load(ordering: .relaxed) }
    /// Committed and recorded in Redis, kept for in-process deduplication.
    var recorded: Int { recordedCount.load(ordering: .relaxed) }

    /// Holds `id` as admitting at `now`, unless it is held already or `pendingLimit` ids wait
    /// for their commit (see `Reservation`). A repeat of a held id is answered as one even at the
    /// limit: it adds nothing.
    func reserve(_ id: String, now: UInt64) -> Reservation {
        let key = HeldID(id)
        return shard(key).ids.withLock { ids -> Reservation in
            switch ids[key] {
            case nil:
                // Counted before it is held, under its shard's lock, so the limit is exact across
                // shards: two reservers cannot both take the last place.
                guard claimedCount.take() else { return .full }
                ids[key] = .admitting(since: now)
                return .reserved
            case .admitting?: return .admitting
            case .claimed?, .committed?: return .held
            }
        }
    }

    /// An admitting id's event is in the buffer now: a repeat is a duplicate from here on.
    func buffered(_ id: String) {
        let key = HeldID(id)
        shard(key).ids.withLock { ids in
            if case .admitting(let since)? = ids[key] { ids[key] = .claimed(since: since) }
        }
    }

    /// Lets go of an id whose event was not admitted after all.
    func release(_ id: String) {
        let key = HeldID(id)
        let removed = shard(key).ids.withLock { ids -> Bool in
            guard ids[key]?.since != nil else { return false }
            ids[key] = nil
            return true
        }
        if removed { claimedCount.giveBack() }
    }

    /// Marks ids whose flush committed (an id still marked admitting too: its flush can drain
    /// it in the instant between the buffer taking it and `buffered`).
    func markCommitted(_ committedIDs: [String], now: UInt64) {
        var moved: [HeldID] = []
        moved.reserveCapacity(committedIDs.count)
        forEachShard(of: committedIDs) { ids, key in
            guard ids[key]?.since != nil else { return }
            ids[key] = .committed(at: now, recorded: false)
            moved.append(key)
        }
        committedOrder.withLock { $0.append(moved, at: now) }
        claimedCount.giveBack(moved.count)
        committedCount.add(moved.count, ordering: .relaxed)
    }

    /// Committed ids that Redis now records (kept, as recorded).
    func markRecorded(_ recordedIDs: [String]) {
        var moved = 0
        forEachShard(of: recordedIDs) { ids, key in
            guard case .committed(let at, false)? = ids[key] else { return }
            ids[key] = .committed(at: at, recorded: true)
            moved += 1
        }
        committedCount.subtract(moved, ordering: .relaxed)
        recordedCount.add(moved, ordering: .relaxed)
    }

    /// Runs `body` for each of `ids` under its shard's lock, taking each shard's lock once.
    private func forEachShard(of ids: [String], _ body: (inout [HeldID: State], HeldID) -> Void) {
        var byShard = [[HeldID]](repeating: [], count: shards.count)
        for id in ids {
            let key = HeldID(id)
            byShard[Int(truncatingIfNeeded: (key.hash >> 32) % UInt64(shards.count))].append(key)
        }
        for (index, keys) in byShard.enumerated() where !keys.isEmpty {
            shards[index].ids.withLock { ids in
                for key in keys { body(&ids, key) }
            }
        }
    }

    /// Claimed ids held since before `cutoff` (their Redis leases need renewing).
    func claimedIDs(since cutoff: UInt64) -> [String] {
        var result: [String] = []
        for shard in shards {
            shard.ids.withLock { ids in
                for (key, state) in ids {
                    if let since = state.since, since <= cutoff { result.append(key.id) }
                }
            }
        }
        return result
    }

    /// Committed ids not yet known to be in Redis, at most `limit`. Walks every shard: for the
    /// rare times a record failed (Redis away) and at shutdown.
    func committedIDs(limit: Int) -> [String] {
        var result: [String] = []
        for shard in shards where result.count < limit {
            shard.ids.withLock { ids in
                for (key, state) in ids where result.count < limit {
                    if case .committed(_, false) = state { result.append(key.id) }
                }
            }
        }
        return result
    }

    /// Drops committed ids older than `cutoff`, then the oldest beyond `capacity` (recorded and
    /// not). Returns how many went because of the capacity (their repeats can no longer be
    /// caught in-process).
    @discardableResult
    func expire(committedBefore cutoff: UInt64) -> Int {
        var droppedForCapacity = 0
        while true {
            let overCapacity = committed + recorded > capacity
            let next = committedOrder.withLock { queue -> CommitQueue.Entry? in
                guard let oldest = queue.first, overCapacity || oldest.at < cutoff else { return nil }
                return queue.removeFirst()
            }
            guard let next else { break }
            let removed = shard(next.key).ids.withLock { ids -> Bool? in
                // Still the commit queued (not released and admitted again since).
                guard case .committed(let at, let recorded)? = ids[next.key], at == next.at else { return nil }
                ids[next.key] = nil
                return recorded
            }
            guard let recorded = removed else { continue }
            if recorded {
                recordedCount.subtract(1, ordering: .relaxed)
            } else {
                committedCount.subtract(1, ordering: .relaxed)
            }
            if next.at >= cutoff { droppedForCapacity += 1 }
        }
        return droppedForCapacity
    }
}

/// An event id with its 64-bit FNV-1a hash, computed once: the held-id table's key. Equal
/// hashes are compared first, so a probe past another id costs no byte comparison.
struct HeldID: Hashable, Sendable {
    let id: String
    let hash: UInt64

    init(_ id: String) {
        self.id = id
        hash = fnv1a64(id)
    }

    static func == (lhs: HeldID, rhs: HeldID) -> Bool {
        lhs.hash == rhs.hash && lhs.id == rhs.id
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }
}

/// Committed ids in commit order: a growing array read from `head`, compacted as it drains.
private struct CommitQueue: Sendable {
    struct Entry: Sendable {
        var key: HeldID
        var at: UInt64
    }

    private var entries: [Entry] = []
    private var head = 0

    var first: Entry? { head < entries.count ? entries[head] : nil }

    mutating func append(_ keys: [HeldID], at: UInt64) {
        entries.reserveCapacity(entries.count + keys.count)
        for key in keys { entries.append(Entry(key: key, at: at)) }
    }

    mutating func removeFirst() -> Entry {
        let entry = entries[head]
        head += 1
        if head >= 4_096 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return entry
    }
}
