import Synchronization

/// The per-user merge buffer: 256 shards (by default), each a dictionary of pending entries behind
/// its own mutex, chosen by FNV-1a of the user id.
///
/// Contract:
/// - One pending entry per (user, goal); a new event merges into it (`PendingProgress`).
/// - `pendingCount` is the exact number of entries held once callers are quiescent; it is the
///   `event_buffer_size` gauge. While `add` runs it may read up to one event's goal count high.
/// - `limit` is a hard cap on entries: an event that would create new entries beyond it is
///   refused whole (`.full`), so a caller can push back and the sender can retry without any part
///   of the event having been applied. An event that only merges into existing entries is always
///   taken: it costs no memory.
/// - `restore` puts back what a failed flush drained, merged under newer entries, ignoring the
///   limit: nothing that was accepted is ever dropped.
/// - All of one user's entries live in one shard, so draining whole shards keeps a user's writes
///   together and in order.
/// - An event may bring its id (the deduplication key): the shard keeps the ids of the events
///   merged since its last drain, and a drain hands them over with the entries, so whoever
///   commits the entries knows exactly which events that commit applied.
/// - `deleteUser` (a GDPR deletion) drops the user's entries and leaves a deletion in the shard,
///   handed over by the next drain before any entry the user gets later: whoever commits it
///   deletes the user's stored rows in the same transaction as the entries drained with it, so
///   nothing buffered before the deletion is written after it. `restore` keeps that order: an
///   entry given back for a user whose deletion arrived after the entry was drained is dropped.
///
/// Cost: one mutex acquisition and one dictionary lookup per goal an event moves. No I/O, no
/// clock (the caller hands in the arrival time), no allocation beyond dictionary growth and the
/// user-id string the entry keeps.
public final class EventBuffer: Sendable {
    public enum AddResult: Sendable, Equatable {
        /// Taken. `newEntries` is how many entries it created; `flushDue` says the pending count
        /// has reached `flushThreshold`, so the caller should wake the flusher.
        case accepted(newEntries: Int, flushDue: Bool)
        /// Refused whole: it would have taken the buffer past `limit`.
        case full
    }

    public let shardCount: Int
    public var limit: Int { pending.limit }
    public let flushThreshold: Int

    private let shards: [Shard]
    /// Pending entries, never past `limit` by `add` (`restore` may pass it).
    private let pending: BoundedCount

    /// A shard's entries, grouped by user: an event hashes its user id once, then touches its
    /// goals in a small integer-keyed dictionary (a flat (user, goal) key would hash the user id
    /// once per goal, and a stat event moves many goals).
    private struct ShardState {
        var users: [String: [Int32: PendingProgress]] = [:]
        var count = 0
        /// Ids of the events merged since the last drain (those that had one), with their users.
        var eventIDs: [BufferedEventID] = []
        /// Users whose stored rows are to be deleted, asked for since the last drain.
        var deletions: Set<String> = []
    }

    private final class Shard: Sendable {
        let state = Mutex(ShardState())
    }

    /// - Parameters:
    ///   - shardCount: number of shards (256 in the service).
    ///   - limit: the most pending entries the buffer holds before it refuses new ones.
    ///   - flushThreshold: pending count at which `add` reports `flushDue` (defaults to `limit`).
    public init(shardCount: Int = 256, limit: Int, flushThreshold: Int? = nil) {
        precondition(shardCount > 0, "shardCount must be positive")
        precondition(limit > 0, "limit must be positive")
        self.shardCount = shardCount
        self.pending = BoundedCount(limit: limit)
        self.flushThreshold = min(flushThreshold ?? limit, limit)
        self.shards = (0..<shardCount).map { _ in Shard() }
    }

    /// The shard a user's entries live in.
    @inlinable
    public func shardIndex(of userID: String) -> Int {
        Int(fnv1a32(userID) % UInt32(shardCount))
    }

    /// Pending entries across all shards (the `event_buffer_size` gauge).
    public var pendingCount: Int { pending.count }

    /// Merges one event's updates for `userID`. All or nothing: see `AddResult`.
    /// `receivedAt` is the event's arrival on the caller's monotonic clock, in nanoseconds; an
    /// entry keeps its oldest event's (`PendingProgress.oldestEventAt`). 0 when not tracked.
    /// Takes an array, not a generic collection: called from another module, a generic parameter
    /// is not specialized, and callgrind showed its iteration at ~10% of the instructions.
    /// `eventID`, when given, is kept with the shard's entries until they are drained.
    /// `shard`: the user's `shardIndex(of:)` when the caller has it already (hashed once per event).
    public func add(
        userID: String, updates: [GoalUpdate], receivedAt: UInt64 = 0, eventID: String? = nil, shard index: Int? = nil
    ) -> AddResult {
        let n = updates.count
        if n == 0 { return .accepted(newEntries: 0, flushDue: false) }
        let shard = shards[index ?? shardIndex(of: userID)]
        let created: Int? = shard.state.withLock { state in
            // Reserve room for the worst case (every update a new entry) and give back what was
            // not used; this keeps the limit exact with a single lookup per update.
            if pending.take(n) {
                let created = Self.apply(updates, at: receivedAt, to: &state.users[userID, default: Dictionary(minimumCapacity: n)])
                state.count += created
                if let eventID { state.eventIDs.append(BufferedEventID(id: eventID, userID: userID)) }
                if created < n { pending.giveBack(n - created) }
                return created
            }
            // Near the limit: count what would really be new, and take it only if that fits.
            let held = state.users[userID]
            var wouldCreate = 0
            for update in updates where held?[update.goal] == nil {
                wouldCreate += 1
            }
            guard pending.take(wouldCreate) else { return nil }
            let created = Self.apply(updates, at: receivedAt, to: &state.users[userID, default: Dictionary(minimumCapacity: n)])
            state.count += created
            if let eventID { state.eventIDs.append(BufferedEventID(id: eventID, userID: userID)) }
            return created
        }
        guard let created else { return .full }
        return .accepted(newEntries: created, flushDue: pendingCount >= flushThreshold)
    }

    /// Pending entries in one shard.
    public func entryCount(shard index: Int) -> Int {
        shards[index].state.withLock { $0.count }
    }

    /// Whether one shard holds nothing to write: no entry and no deletion.
    public func isEmpty(shard index: Int) -> Bool {
        shards[index].state.withLock { $0.count == 0 && $0.deletions.isEmpty }
    }

    /// A GDPR deletion of `userID`: drops the user's pending entries and records the deletion
    /// for the next drain of its shard (see the type's contract). Events added for the user
    /// afterwards are kept as usual and written after the deletion. Returns the entries dropped.
    @discardableResult
    public func deleteUser(_ userID: String) -> Int {
        let dropped = shards[shardIndex(of: userID)].state.withLock { state in
            let dropped = state.users.removeValue(forKey: userID)?.count ?? 0
            state.count -= dropped
            state.deletions.insert(userID)
            return dropped
        }
        if dropped > 0 { pending.giveBack(dropped) }
        return dropped
    }

    /// Removes and returns every pending entry of one shard.
    public func drain(shard index: Int) -> [PendingEntry] {
        var ignored: [BufferedEventID] = []
        return drain(shard: index, eventIDs: &ignored)
    }

    /// Removes and returns every pending entry of one shard, and appends the ids of the events
    /// merged into them to `eventIDs`. Deletions are dropped: for callers that never delete.
    public func drain(shard index: Int, eventIDs: inout [BufferedEventID]) -> [PendingEntry] {
        var deletions: [String] = []
        return drain(shard: index, eventIDs: &eventIDs, deletions: &deletions)
    }

    /// Removes and returns every pending entry of one shard, appends the ids of the events
    /// merged into them to `eventIDs`, and the users to delete before writing them to
    /// `deletions`.
    public func drain(shard index: Int, eventIDs: inout [BufferedEventID], deletions: inout [String]) -> [PendingEntry] {
        let taken = shards[index].state.withLock { state in
            let taken = state
            state = ShardState()
            state.users.reserveCapacity(taken.users.count)
            return taken
        }
        eventIDs.append(contentsOf: taken.eventIDs)
        deletions.append(contentsOf: taken.deletions)
        if taken.count == 0 { return [] }
        pending.giveBack(taken.count)
        var entries: [PendingEntry] = []
        entries.reserveCapacity(taken.count)
        for (userID, goals) in taken.users {
            for (goal, progress) in goals {
                entries.append(PendingEntry(key: EntryKey(userID: userID, goal: goal), progress: progress))
            }
        }
        return entries
    }

    /// Puts back entries a failed flush drained. Each merges under any newer entry of the same
    /// key that arrived meanwhile (the newer absolute value stands; increments add up). The limit
    /// does not apply: these events were accepted already.
    ///
    /// `eventIDs` (the ids drained with them) go back into `idShard`: any shard that is drained
    /// together with the entries' own shards, so the next drain hands them over again.
    ///
    /// `deletions` (drained with the entries) go back to their shards. An entry whose user has
    /// a deletion that arrived after the drain is dropped: it is older than that deletion.
    public func restore(
        _ drained: some Sequence<PendingEntry>, eventIDs: [BufferedEventID] = [], idShard: Int = 0, deletions: [String] = []
    ) {
        if !eventIDs.isEmpty {
            shards[idShard].state.withLock { $0.eventIDs.append(contentsOf: eventIDs) }
        }
        var byShard: [Int: (entries: [PendingEntry], deletions: [String])] = [:]
        for entry in drained {
            byShard[shardIndex(of: entry.userID), default: ([], [])].entries.append(entry)
        }
        for userID in deletions {
            byShard[shardIndex(of: userID), default: ([], [])].deletions.append(userID)
        }
        for (index, restored) in byShard {
            let created = shards[index].state.withLock { state in
                var created = 0
                for entry in restored.entries where !state.deletions.contains(entry.userID) {
                    if var newer = state.users[entry.userID]?[entry.goal] {
                        newer.merge(older: entry.progress)
                        state.users[entry.userID]![entry.goal] = newer
                    } else {
                        state.users[entry.userID, default: [:]][entry.goal] = entry.progress
                        created += 1
                    }
                }
                state.deletions.formUnion(restored.deletions)
                state.count += created
                return created
            }
            pending.force(created)
        }
    }

    // MARK: - Internals

    private static func apply(
        _ updates: [GoalUpdate], at time: UInt64, to goals: inout [Int32: PendingProgress]
    ) -> Int {
        var created = 0
        for update in updates {
            if let index = goals.index(forKey: update.goal) {
                goals.values[index].merge(newer: update)
            } else {
                goals[update.goal] = PendingProgress(update, at: time)
                created += 1
            }
        }
        return created
    }
}
