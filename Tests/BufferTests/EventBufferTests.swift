import Buffer
import Testing

@Suite("EventBuffer merge rules")
struct EventBufferMergeTests {
    @Test("an absolute value is replaced by a newer one; increases add up")
    func absoluteLatestWins() {
        let buffer = EventBuffer(limit: 100)
        _ = buffer.add(userID: "u1", updates: [.absolute(goal: 3, value: 10, increase: 10)])
        _ = buffer.add(userID: "u1", updates: [.absolute(goal: 3, value: 7, increase: 2)])
        let drained = drainAll(buffer)
        #expect(drained.count == 1)
        #expect(drained[0].progress == PendingProgress(kind: .absolute, value: 7, increase: 12, events: 2))
        #expect(buffer.pendingCount == 0)
    }

    @Test("increments add up")
    func incrementsAddUp() {
        let buffer = EventBuffer(limit: 100)
        for _ in 0..<5 { _ = buffer.add(userID: "u1", updates: [.increment(goal: 1)]) }
        _ = buffer.add(userID: "u1", updates: [.increment(goal: 1, by: 3)])
        let drained = drainAll(buffer)
        #expect(drained.map(\.progress) == [PendingProgress(kind: .increment, value: 8, increase: 8, events: 6)])
    }

    @Test("one entry per (user, goal)")
    func oneEntryPerKey() {
        let buffer = EventBuffer(limit: 100)
        _ = buffer.add(userID: "u1", updates: [.increment(goal: 1), .increment(goal: 2)])
        _ = buffer.add(userID: "u2", updates: [.increment(goal: 1)])
        _ = buffer.add(userID: "u1", updates: [.increment(goal: 2)])
        #expect(buffer.pendingCount == 3)
        let drained = drainAll(buffer).sorted { ($0.userID, $0.goal) < ($1.userID, $1.goal) }
        #expect(drained.map { "\($0.userID)/\($0.goal)/\($0.progress.value)" } == ["u1/1/1", "u1/2/2", "u2/1/1"])
    }

    @Test("a user always maps to the same shard, and shards spread users")
    func sharding() {
        let buffer = EventBuffer(limit: 1_000_000)
        #expect(buffer.shardCount == 256)
        #expect(buffer.shardIndex(of: "player-42") == buffer.shardIndex(of: "player-42"))
        // FNV-1a 32 of "a" is 0xE40C292C; 0x2C = 44.
        #expect(fnv1a32("a") == 0xE40C_292C)
        #expect(fnv1a32("") == 0x811C_9DC5 && fnv1a32("foobar") == 0xBF9C_F968)
        // Small and large strings, ASCII or not, hash their UTF-8 bytes: the shard of a user
        // must never change between versions (Kafka checkpoints are kept per shard).
        for id in ["player-42", "0b3c9e1a-5f1e-4c55-9a57-2d2f5e1f7c11-with-a-long-tail", "jöran-ß-ユーザー"] {
            #expect(fnv1a32(id) == fnv1a32(bytes: Array(id.utf8)))
        }
        #expect(buffer.shardIndex(of: "a") == 44)
        var used = Set<Int>()
        for i in 0..<10_000 { used.insert(buffer.shardIndex(of: "user-\(i)")) }
        #expect(used.count == 256)
        _ = buffer.add(userID: "a", updates: [.increment(goal: 0)])
        #expect(buffer.drain(shard: 43).isEmpty)
        #expect(buffer.drain(shard: 44).count == 1)
    }

    @Test("restore merges an older drained entry under newer ones without losing an increment")
    func restoreMergesUnderNewer() {
        let buffer = EventBuffer(limit: 100)
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1, by: 2), .absolute(goal: 2, value: 5, increase: 5)])
        let failed = drainAll(buffer)
        #expect(buffer.pendingCount == 0)
        // Newer events arrive while the flush fails.
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1), .absolute(goal: 2, value: 9, increase: 4)])
        buffer.restore(failed)
        #expect(buffer.pendingCount == 2)
        let merged = Dictionary(uniqueKeysWithValues: drainAll(buffer).map { ($0.goal, $0.progress) })
        #expect(merged[1] == PendingProgress(kind: .increment, value: 3, increase: 3, events: 2))
        #expect(merged[2] == PendingProgress(kind: .absolute, value: 9, increase: 9, events: 2))
    }

    @Test("restore into an empty buffer puts entries back as they were")
    func restoreIntoEmpty() {
        let buffer = EventBuffer(limit: 10)
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1, by: 4)])
        let failed = drainAll(buffer)
        buffer.restore(failed)
        #expect(buffer.pendingCount == 1)
        #expect(drainAll(buffer) == failed)
    }

    @Test("an entry keeps its oldest event's arrival time, through merges and a restore under newer events")
    func oldestArrivalKept() {
        let buffer = EventBuffer(limit: 10)
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1)], receivedAt: 1_000)
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1)], receivedAt: 2_000)
        let failed = drainAll(buffer)
        #expect(failed.map(\.progress.oldestEventAt) == [1_000])
        // While the failed flush's entry is out, a newer event starts a new entry; the restore
        // merges the older entry under it and the merged entry dates from the older one.
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1)], receivedAt: 5_000)
        _ = buffer.add(userID: "u", updates: [.increment(goal: 2)], receivedAt: 6_000)
        buffer.restore(failed)
        let merged = drainAll(buffer).sorted { $0.goal < $1.goal }
        #expect(merged.map(\.progress.oldestEventAt) == [1_000, 6_000])
        #expect(merged[0].progress.value == 3)
    }
}

@Suite("EventBuffer limits and triggers")
struct EventBufferLimitTests {
    @Test("flushDue is reported once the pending count reaches the threshold")
    func sizeTrigger() {
        let buffer = EventBuffer(limit: 10, flushThreshold: 3)
        #expect(buffer.add(userID: "a", updates: [.increment(goal: 0)]) == .accepted(newEntries: 1, flushDue: false))
        #expect(buffer.add(userID: "b", updates: [.increment(goal: 0)]) == .accepted(newEntries: 1, flushDue: false))
        #expect(buffer.add(userID: "c", updates: [.increment(goal: 0)]) == .accepted(newEntries: 1, flushDue: true))
        #expect(buffer.add(userID: "a", updates: [.increment(goal: 0)]) == .accepted(newEntries: 0, flushDue: true))
        _ = drainAll(buffer)
        #expect(buffer.add(userID: "a", updates: [.increment(goal: 0)]) == .accepted(newEntries: 1, flushDue: false))
    }

    @Test("at the limit new entries are refused whole, merges still land, nothing half-applied")
    func backPressure() {
        let buffer = EventBuffer(limit: 4)
        #expect(buffer.add(userID: "a", updates: [.increment(goal: 0), .increment(goal: 1)]) == .accepted(newEntries: 2, flushDue: false))
        #expect(buffer.add(userID: "b", updates: [.increment(goal: 0)]) == .accepted(newEntries: 1, flushDue: false))
        // Three updates, two of them new: would make 5 > 4. Refused whole.
        #expect(buffer.add(userID: "c", updates: [.increment(goal: 0), .increment(goal: 1), .increment(goal: 2)]) == .full)
        #expect(buffer.pendingCount == 3)
        // Two updates into existing entries plus one new: 4, fits exactly (slow path).
        #expect(buffer.add(userID: "a", updates: [.increment(goal: 0), .increment(goal: 1), .increment(goal: 5)]) == .accepted(newEntries: 1, flushDue: true))
        #expect(buffer.pendingCount == 4)
        // Full now: a new key is refused, a pure merge is taken.
        #expect(buffer.add(userID: "d", updates: [.increment(goal: 0)]) == .full)
        #expect(buffer.add(userID: "b", updates: [.increment(goal: 0)]) == .accepted(newEntries: 0, flushDue: true))
        let byKey = Dictionary(uniqueKeysWithValues: drainAll(buffer).map { ("\($0.userID)/\($0.goal)", $0.progress.value) })
        #expect(byKey == ["a/0": 2, "a/1": 2, "a/5": 1, "b/0": 2])
        // Drained: room again.
        #expect(buffer.add(userID: "d", updates: [.increment(goal: 0)]) == .accepted(newEntries: 1, flushDue: false))
    }

    @Test("restore may exceed the limit (accepted events are never dropped), then new keys are refused")
    func restoreIgnoresLimit() {
        let buffer = EventBuffer(limit: 2)
        _ = buffer.add(userID: "a", updates: [.increment(goal: 0), .increment(goal: 1)])
        let failed = drainAll(buffer)
        _ = buffer.add(userID: "b", updates: [.increment(goal: 0), .increment(goal: 1)])
        buffer.restore(failed)
        #expect(buffer.pendingCount == 4)
        #expect(buffer.add(userID: "c", updates: [.increment(goal: 0)]) == .full)
    }
}

@Suite("EventBuffer under concurrency")
struct EventBufferConcurrencyTests {
    @Test("many tasks on the same user and on different users: exact totals")
    func exactTotals() async {
        let buffer = EventBuffer(limit: 1_000_000)
        let tasks = 8, perTask = 5_000
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in 0..<perTask {
                        _ = buffer.add(userID: "hot", updates: [.increment(goal: 0), .absolute(goal: 1, value: Int64(i), increase: 1)])
                        _ = buffer.add(userID: "user-\(t)-\(i % 100)", updates: [.increment(goal: 2)])
                    }
                }
            }
        }
        #expect(buffer.pendingCount == 2 + tasks * 100)
        let drained = drainAll(buffer)
        #expect(drained.count == 2 + tasks * 100)
        let hot = Dictionary(uniqueKeysWithValues: drained.filter { $0.userID == "hot" }.map { ($0.goal, $0.progress) })
        #expect(hot[0]?.value == Int64(tasks * perTask))
        #expect(hot[1]?.increase == Int64(tasks * perTask))
        #expect(hot[1]?.events == Int32(tasks * perTask))
        let others = drained.filter { $0.userID != "hot" }
        #expect(others.allSatisfy { $0.progress.value == Int64(perTask / 100) })
        #expect(buffer.pendingCount == 0)
    }

    @Test("concurrent adds and drains lose nothing")
    func drainWhileAdding() async {
        let buffer = EventBuffer(shardCount: 16, limit: 1_000_000)
        let writers = 4, perWriter = 20_000
        let drainedTotal = await withTaskGroup(of: Int64.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for i in 0..<perWriter { _ = buffer.add(userID: "u\(w)-\(i % 500)", updates: [.increment(goal: 0)]) }
                    return 0
                }
            }
            group.addTask {
                var sum: Int64 = 0
                for round in 0..<2_000 { sum += buffer.drain(shard: round % 16).reduce(0) { $0 + $1.progress.value } }
                return sum
            }
            var total: Int64 = 0
            for await part in group { total += part }
            return total
        }
        let rest = drainAll(buffer).reduce(Int64(0)) { $0 + $1.progress.value }
        #expect(drainedTotal + rest == Int64(writers * perWriter))
        #expect(buffer.pendingCount == 0)
    }

    @Test("the limit holds under concurrent adders")
    func limitUnderConcurrency() async {
        let buffer = EventBuffer(limit: 1_000)
        let accepted = await withTaskGroup(of: Int.self) { group in
            for t in 0..<8 {
                group.addTask {
                    var created = 0
                    for i in 0..<1_000 {
                        if case .accepted(let n, _) = buffer.add(userID: "t\(t)-\(i)", updates: [.increment(goal: 0), .increment(goal: 1)]) { created += n }
                    }
                    return created
                }
            }
            return await group.reduce(0, +)
        }
        #expect(buffer.pendingCount <= 1_000)
        #expect(accepted == buffer.pendingCount)
        #expect(drainAll(buffer).count == accepted)
    }
}

func drainAll(_ buffer: EventBuffer) -> [PendingEntry] {
    (0..<buffer.shardCount).flatMap { buffer.drain(shard: $0) }
}

/// GDPR deletions in the buffer: the order between a user's deletion and their entries.
@Suite("EventBuffer deletions")
struct EventBufferDeletionTests {
    /// Drains the shard of `user`: its entries and deletions.
    func drain(_ buffer: EventBuffer, shardOf user: String) -> (entries: [PendingEntry], deletions: [String], ids: [BufferedEventID]) {
        var ids: [BufferedEventID] = []
        var deletions: [String] = []
        let entries = buffer.drain(shard: buffer.shardIndex(of: user), eventIDs: &ids, deletions: &deletions)
        return (entries, deletions, ids)
    }

    @Test("a deletion drops the user's pending entries, not others', and is handed over by the next drain")
    func dropsAndQueues() {
        let buffer = EventBuffer(shardCount: 1, limit: 100)
        _ = buffer.add(userID: "gone", updates: [.increment(goal: 1), .increment(goal: 2)])
        _ = buffer.add(userID: "kept", updates: [.increment(goal: 1)])
        #expect(buffer.deleteUser("gone") == 2)
        #expect(buffer.pendingCount == 1)
        #expect(!buffer.isEmpty(shard: 0))
        let drained = drain(buffer, shardOf: "gone")
        #expect(drained.entries.map(\.userID) == ["kept"])
        #expect(drained.deletions == ["gone"])
        #expect(buffer.isEmpty(shard: 0))
    }

    @Test("events after the deletion are kept and drained with it (written after the delete)")
    func laterEventsCount() {
        let buffer = EventBuffer(shardCount: 4, limit: 100)
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1)])
        buffer.deleteUser("u")
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1, by: 5)])
        let drained = drain(buffer, shardOf: "u")
        #expect(drained.deletions == ["u"])
        #expect(drained.entries.map(\.progress.value) == [5])
    }

    @Test("restore: entries drained before a deletion that came meanwhile are dropped; a restored deletion keeps its later entries")
    func restoreKeepsTheOrder() {
        let buffer = EventBuffer(shardCount: 1, limit: 100)
        // A flush drained u's entry, then a deletion of u came, then the flush failed.
        _ = buffer.add(userID: "u", updates: [.increment(goal: 1, by: 7)])
        _ = buffer.add(userID: "v", updates: [.increment(goal: 1, by: 3)])
        let first = drain(buffer, shardOf: "u")
        buffer.deleteUser("u")
        buffer.restore(first.entries, deletions: first.deletions)
        let second = drain(buffer, shardOf: "u")
        #expect(second.deletions == ["u"])
        #expect(second.entries.map(\.userID) == ["v"], "u's older entry must not be written after its deletion")

        // That flush (deletion and a later event of u) fails too: both come back, in order.
        _ = buffer.add(userID: "u", updates: [.increment(goal: 2, by: 1)])
        let third = drain(buffer, shardOf: "u")
        buffer.restore(second.entries + third.entries, deletions: second.deletions + third.deletions)
        let fourth = drain(buffer, shardOf: "u")
        #expect(fourth.deletions == ["u"])
        #expect(Set(fourth.entries.map { "\($0.userID)/\($0.goal)" }) == ["v/1", "u/2"])
        #expect(buffer.pendingCount == 0)
    }
}
