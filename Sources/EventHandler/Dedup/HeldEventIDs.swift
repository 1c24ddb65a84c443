import Buffer
import Synchronization

/// The event ids this process holds in memory: the first line of deduplication, and the only one
/// while Redis is away.
///
/// An id is here from the moment its event is admitted until Redis has recorded it as committed
/// (or, without Redis, until `DEDUP_TTL` passes or `capacity` pushes it out):
/// - `claimed`: admitted into the buffer (or about to be), not yet committed. A repeat is a
///   duplicate of an event that is on its way; the lease on its Redis claim is renewed while it
///   stays here, so no other replica takes the id meanwhile.
/// - `committed`: its flush committed; waiting for Redis to record it (or kept as the
///   in-process record when Redis is off or down).
///
/// 64 mutex-guarded shards by FNV-1a of the id: the gRPC handlers and the Kafka thread reserve
/// concurrently without one lock between them.
final class HeldEventIDs: Sendable {
    enum State: Sendable, Equatable {
        case claimed(since: UInt64)
        case committed(at: UInt64)
    }

    /// Most committed ids kept for in-process deduplication (claimed ids are never dropped).
    let capacity: Int
    private let shards: [Shard]
    private let claimedCount = Atomic<Int>(0)
    private let committedCount = Atomic<Int>(0)

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
    var committed: Int { committedCount.load(ordering: .relaxed) }

    /// Holds `id` as claimed at `now`. False when it is held already (a duplicate), in whatever
    /// state.
    func reserve(_ id: String, now: UInt64) -> Bool {
        let inserted = shard(id).ids.withLock { ids in
            if ids[id] != nil { return false }
            ids[id] = .claimed(since: now)
            return true
        }
        if inserted { claimedCount.add(1, ordering: .relaxed) }
        return inserted
    }

    /// Lets go of a claimed id whose event was not admitted after all.
    func release(_ id: String) {
        let removed = shard(id).ids.withLock { ids -> Bool in
            guard case .claimed = ids[id] else { return false }
            ids[id] = nil
            return true
        }
        if removed { claimedCount.subtract(1, ordering: .relaxed) }
    }

    /// Marks ids whose flush committed.
    func markCommitted(_ committedIDs: [String], now: UInt64) {
        var moved = 0
        for id in committedIDs {
            let wasClaimed = shard(id).ids.withLock { ids -> Bool in
                guard case .claimed = ids[id] else { return false }
                ids[id] = .committed(at: now)
                return true
            }
            if wasClaimed { moved += 1 }
        }
        claimedCount.subtract(moved, ordering: .relaxed)
        committedCount.add(moved, ordering: .relaxed)
    }

    /// Forgets committed ids that Redis now records.
    func forget(_ recordedIDs: [String]) {
        var removed = 0
        for id in recordedIDs {
            let was = shard(id).ids.withLock { ids -> Bool in
                guard case .committed = ids[id] else { return false }
                ids[id] = nil
                return true
            }
            if was { removed += 1 }
        }
        committedCount.subtract(removed, ordering: .relaxed)
    }

    /// Claimed ids held since before `cutoff` (their Redis leases need renewing).
    func claimedIDs(since cutoff: UInt64) -> [String] {
        var result: [String] = []
        for shard in shards {
            shard.ids.withLock { ids in
                for (id, state) in ids {
                    if case .claimed(let since) = state, since <= cutoff { result.append(id) }
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
                    if case .committed = state { result.append(id) }
                }
            }
        }
        return result
    }

    /// Drops committed ids older than `cutoff`, then the oldest beyond `capacity`. Returns how
    /// many went because of the capacity (their repeats can no longer be caught in-process).
    @discardableResult
    func expire(committedBefore cutoff: UInt64) -> Int {
        var removed = 0
        for shard in shards {
            removed += shard.ids.withLock { ids in
                let before = ids.count
                ids = ids.filter { _, state in
                    if case .committed(let at) = state { return at >= cutoff }
                    return true
                }
                return before - ids.count
            }
        }
        committedCount.subtract(removed, ordering: .relaxed)
        let excess = committed - capacity
        guard excess > 0 else { return 0 }
        // Over capacity: drop the oldest committed ids, shard by shard, in proportion.
        var dropped = 0
        let perShard = excess / shards.count + 1
        for shard in shards {
            dropped += shard.ids.withLock { ids in
                let oldest = ids.compactMap { id, state -> (String, UInt64)? in
                    if case .committed(let at) = state { return (id, at) }
                    return nil
                }.sorted { $0.1 < $1.1 }.prefix(perShard)
                for (id, _) in oldest { ids[id] = nil }
                return oldest.count
            }
        }
        committedCount.subtract(dropped, ordering: .relaxed)
        return dropped
    }
}
