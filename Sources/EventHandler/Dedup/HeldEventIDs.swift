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
/// 64 mutex-guarded shards by FNV-1a of the id: the gRPC handlers and the Kafka thread reserve
/// concurrently without one lock between them.
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
    }

    /// Most committed ids kept for in-process deduplication (claimed ids are never dropped).
    let capacity: Int
    private let shards: [Shard]
    private let claimedCount = Atomic<Int>(0)
    private let committedCount = Atomic<Int>(0)
    private let recordedCount = Atomic<Int>(0)

    private final class Shard: Sendable {
        let ids = Mutex<[String: State]>([:])
    }

    init(capacity: Int, shardCount: Int = 64) {
        self.capacity = capacity
        shards = (0..<shardCount).map { _ in Shard() }
    }

    private func shard(_ id: String) -> Shard {
        shards[Int(fnv1a32(id) % UInt32(shards.count))]
    }

    var claimed: Int { claimedCount.load(ordering: .relaxed) }
    /// Committed, not yet recorded in Redis.
    var committed: Int { committedCount.load(ordering: .relaxed) }
    /// Committed and recorded in Redis, kept for in-process deduplication.
    var recorded: Int { recordedCount.load(ordering: .relaxed) }

    /// Holds `id` as admitting at `now`, unless it is held already (see `Reservation`).
    func reserve(_ id: String, now: UInt64) -> Reservation {
        let reservation = shard(id).ids.withLock { ids -> Reservation in
            switch ids[id] {
            case nil:
                ids[id] = .admitting(since: now)
                return .reserved
            case .admitting?: return .admitting
            case .claimed?, .committed?: return .held
            }
        }
        if reservation == .reserved { claimedCount.add(1, ordering: .relaxed) }
        return reservation
    }

    /// An admitting id's event is in the buffer now: a repeat is a duplicate from here on.
    func buffered(_ id: String) {
        shard(id).ids.withLock { ids in
            if case .admitting(let since)? = ids[id] { ids[id] = .claimed(since: since) }
        }
    }

    /// Lets go of an id whose event was not admitted after all.
    func release(_ id: String) {
        let removed = shard(id).ids.withLock { ids -> Bool in
            guard ids[id]?.since != nil else { return false }
            ids[id] = nil
            return true
        }
        if removed { claimedCount.subtract(1, ordering: .relaxed) }
    }

    /// Marks ids whose flush committed (an id still marked admitting too: its flush can drain
    /// it in the instant between the buffer taking it and `buffered`).
    func markCommitted(_ committedIDs: [String], now: UInt64) {
        var moved = 0
        for id in committedIDs {
            let wasClaimed = shard(id).ids.withLock { ids -> Bool in
                guard ids[id]?.since != nil else { return false }
                ids[id] = .committed(at: now, recorded: false)
                return true
            }
            if wasClaimed { moved += 1 }
        }
        claimedCount.subtract(moved, ordering: .relaxed)
        committedCount.add(moved, ordering: .relaxed)
    }

    /// Committed ids that Redis now records (kept, as recorded).
    func markRecorded(_ recordedIDs: [String]) {
        var moved = 0
        for id in recordedIDs {
            let was = shard(id).ids.withLock { ids -> Bool in
                guard case .committed(let at, false)? = ids[id] else { return false }
                ids[id] = .committed(at: at, recorded: true)
                return true
            }
            if was { moved += 1 }
        }
        committedCount.subtract(moved, ordering: .relaxed)
        recordedCount.add(moved, ordering: .relaxed)
    }

    /// Claimed ids held since before `cutoff` (their Redis leases need renewing).
    func claimedIDs(since cutoff: UInt64) -> [String] {
        var result: [String] = []
        for shard in shards {
            shard.ids.withLock { ids in
                for (id, state) in ids {
                    if let since = state.since, since <= cutoff { result.append(id) }
                }
            }
        }
        return result
    }

    /// Committed ids not yet known to be in Redis, at most `limit`.
    func committedIDs(limit: Int) -> [String] {
        var result: [String] = []
        for shard in shards where result.count < limit {
            shard.ids.withLock { ids in
                for (id, state) in ids where result.count < limit {
                    if case .committed(_, false) = state { result.append(id) }
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
        var removed = (unrecorded: 0, recorded: 0)
        for shard in shards {
            let gone = shard.ids.withLock { ids -> (Int, Int) in
                var gone = (0, 0)
                ids = ids.filter { _, state in
                    guard case .committed(let at, let recorded) = state, at < cutoff else { return true }
                    if recorded { gone.1 += 1 } else { gone.0 += 1 }
                    return false
                }
                return gone
            }
            removed.unrecorded += gone.0
            removed.recorded += gone.1
        }
        committedCount.subtract(removed.unrecorded, ordering: .relaxed)
        recordedCount.subtract(removed.recorded, ordering: .relaxed)
        let excess = committed + recorded - capacity
        guard excess > 0 else { return 0 }
        // Over capacity: drop the oldest committed ids, shard by shard, in proportion.
        var dropped = (unrecorded: 0, recorded: 0)
        let perShard = excess / shards.count + 1
        for shard in shards {
            let gone = shard.ids.withLock { ids -> (Int, Int) in
                let oldest = ids.compactMap { id, state -> (String, UInt64)? in
                    state.committedAt.map { (id, $0) }
                }.sorted { $0.1 < $1.1 }.prefix(perShard)
                var gone = (0, 0)
                for (id, _) in oldest {
                    if case .committed(_, true)? = ids[id] { gone.1 += 1 } else { gone.0 += 1 }
                    ids[id] = nil
                }
                return gone
            }
            dropped.unrecorded += gone.0
            dropped.recorded += gone.1
        }
        committedCount.subtract(dropped.unrecorded, ordering: .relaxed)
        recordedCount.subtract(dropped.recorded, ordering: .relaxed)
        return dropped.unrecorded + dropped.recorded
    }
}
