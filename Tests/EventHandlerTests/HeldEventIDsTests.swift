@testable import EventHandler
import Testing

@Suite("Event ids held in memory")
struct HeldEventIDsTests {
    @Test("an id is held from admission until its TTL: 'later' while it is admitted, a duplicate once buffered, committed or recorded")
    func lifecycle() {
        let held = HeldEventIDs(capacity: 10)
        #expect(held.reserve("a", now: 1) == .reserved)
        #expect(held.reserve("a", now: 2) == .admitting, "not in the buffer yet: the repeat must wait")
        held.buffered("a")
        #expect(held.reserve("a", now: 2) == .held)
        #expect(held.claimed == 1)
        held.markCommitted(["a"], now: 3)
        #expect(held.claimed == 0 && held.committed == 1)
        #expect(held.reserve("a", now: 4) == .held, "committed, not yet recorded: still a duplicate")
        #expect(held.committedIDs(limit: 10) == ["a"])
        held.markRecorded(["a"])
        #expect(held.committed == 0 && held.recorded == 1 && held.committedIDs(limit: 10).isEmpty)
        #expect(held.reserve("a", now: 5) == .held, "recorded in Redis, still caught here (Redis may be away)")
        // Drained and committed before `buffered` was called: committed all the same.
        #expect(held.reserve("b", now: 6) == .reserved)
        held.markCommitted(["b"], now: 6)
        held.buffered("b")
        #expect(held.committed == 1 && held.claimed == 0)
    }

    @Test("BUFFER_EVENT_ID_LIMIT: past the limit a new id is refused, a repeat is still a duplicate, and a commit or release makes room")
    func pendingLimit() {
        let held = HeldEventIDs(capacity: 10, pendingLimit: 2, shardCount: 4)
        #expect(held.reserve("a", now: 1) == .reserved)
        #expect(held.reserve("b", now: 1) == .reserved)
        #expect(held.reserve("c", now: 1) == .full)
        #expect(held.claimed == 2, "a refused id is not held")
        held.buffered("a")
        #expect(held.reserve("a", now: 2) == .held, "a repeat at the limit adds nothing: a duplicate")
        #expect(held.reserve("b", now: 2) == .admitting)
        held.markCommitted(["a"], now: 3)
        #expect(held.reserve("c", now: 3) == .reserved, "a commit made room")
        #expect(held.reserve("d", now: 3) == .full)
        held.release("b")
        #expect(held.reserve("d", now: 4) == .reserved, "a release made room")
        // Committed ids do not count: they are bounded by the capacity.
        #expect(held.committed == 1 && held.claimed == 2)
    }

    @Test("the limit is exact under concurrent reservers")
    func pendingLimitConcurrent() async {
        let held = HeldEventIDs(capacity: 10, pendingLimit: 1_000, shardCount: 8)
        let reserved = await withTaskGroup(of: Int.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    (0..<2_000).reduce(0) { $0 + (held.reserve("\(thread)-\($1)", now: 1) == .reserved ? 1 : 0) }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(reserved == 1_000)
        #expect(held.claimed == 1_000)
    }

    @Test("release frees a claimed id only; a committed id stays")
    func release() {
        let held = HeldEventIDs(capacity: 10)
        _ = held.reserve("a", now: 1)
        _ = held.reserve("b", now: 1)
        held.markCommitted(["b"], now: 2)
        held.release("a")
        held.release("b")
        #expect(held.reserve("a", now: 3) == .reserved)
        #expect(held.reserve("b", now: 3) == .held)
    }

    @Test("committed ids expire after the TTL and beyond the capacity, oldest first; claimed ids never")
    func expiry() {
        let held = HeldEventIDs(capacity: 3, shardCount: 1)
        for n in 0..<6 { _ = held.reserve("c\(n)", now: UInt64(n)) }
        held.markCommitted((0..<5).map { "c\($0)" }, now: 100)
        _ = held.reserve("late", now: 200)
        held.markCommitted(["late"], now: 300)
        #expect(held.expire(committedBefore: 150) == 0)
        #expect(held.committed == 1 && held.claimed == 1, "the five committed at 100 expired; c5 is still claimed")
        for n in 0..<5 { _ = held.reserve("d\(n)", now: 400) }
        held.markCommitted((0..<5).map { "d\($0)" }, now: UInt64(400))
        let dropped = held.expire(committedBefore: 0)
        #expect(dropped >= 3 && held.committed <= 3)
        #expect(held.reserve("c5", now: 500) != .reserved, "claimed ids are never dropped")
        #expect(held.reserve("late", now: 500) == .reserved, "the oldest committed id went first")
    }

    @Test("an id that expired and came back is kept until its new commit expires, not dropped by its old one")
    func recommitted() {
        let held = HeldEventIDs(capacity: 100, shardCount: 2)
        _ = held.reserve("a", now: 1)
        held.markCommitted(["a"], now: 10)
        held.expire(committedBefore: 11)
        #expect(held.committed == 0)
        #expect(held.reserve("a", now: 20) == .reserved, "expired: free again")
        held.markCommitted(["a"], now: 30)
        // Both commits are queued; the first no longer matches and goes without touching the id.
        held.expire(committedBefore: 25)
        #expect(held.committed == 1 && held.reserve("a", now: 31) == .held)
        held.markRecorded(["a"])
        held.expire(committedBefore: 31)
        #expect(held.committed == 0 && held.recorded == 0 && held.reserve("a", now: 40) == .reserved)
    }

    @Test("ids that differ only in their bytes, not their length, are told apart (hash first, then bytes)")
    func distinctKeys() {
        let held = HeldEventIDs(capacity: 100_000, shardCount: 4)
        let ids = (0..<20_000).map { String(format: "%08d-0000-0000-0000-000000000000", $0) }
        for id in ids { #expect(held.reserve(id, now: 1) == .reserved) }
        for id in ids { #expect(held.reserve(id, now: 2) == .admitting) }
        held.markCommitted(ids, now: 3)
        #expect(held.committed == ids.count && held.claimed == 0)
    }
}
