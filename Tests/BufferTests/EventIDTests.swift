import Buffer
import Testing

@Suite("EventBuffer event ids")
struct EventBufferEventIDTests {
    @Test("a drain hands over the ids of the events merged into its entries, once")
    func drainHandsOverIDs() {
        let buffer = EventBuffer(shardCount: 1, limit: 100)
        _ = buffer.add(userID: "u1", updates: [.increment(goal: 1)], eventID: "e1")
        _ = buffer.add(userID: "u1", updates: [.increment(goal: 1)], eventID: "e2")  // merges
        _ = buffer.add(userID: "u2", updates: [.increment(goal: 1)])  // no id
        var ids: [BufferedEventID] = []
        let entries = buffer.drain(shard: 0, eventIDs: &ids)
        #expect(entries.count == 2)
        #expect(ids == [BufferedEventID(id: "e1", userID: "u1"), BufferedEventID(id: "e2", userID: "u1")])
        var again: [BufferedEventID] = []
        #expect(buffer.drain(shard: 0, eventIDs: &again).isEmpty && again.isEmpty)
    }

    @Test("an event refused for want of room leaves no id behind")
    func refusedEventLeavesNoID() {
        let buffer = EventBuffer(shardCount: 1, limit: 1)
        #expect(buffer.add(userID: "u1", updates: [.increment(goal: 1)], eventID: "kept") == .accepted(newEntries: 1, flushDue: true))
        #expect(buffer.add(userID: "u2", updates: [.increment(goal: 1)], eventID: "refused") == .full)
        var ids: [BufferedEventID] = []
        _ = buffer.drain(shard: 0, eventIDs: &ids)
        #expect(ids.map(\.id) == ["kept"])
    }

    @Test("a failed flush gives the ids back with its entries; the next drain hands them over again")
    func restoreGivesIDsBack() {
        let buffer = EventBuffer(shardCount: 4, limit: 100)
        for n in 0..<8 { _ = buffer.add(userID: "user-\(n)", updates: [.increment(goal: 1)], eventID: "e\(n)") }
        var ids: [BufferedEventID] = []
        let entries = (0..<4).flatMap { buffer.drain(shard: $0, eventIDs: &ids) }
        #expect(Set(ids.map(\.id)) == Set((0..<8).map { "e\($0)" }))
        #expect(ids.allSatisfy { "e" + $0.userID.dropFirst("user-".count) == $0.id })
        buffer.restore(entries, eventIDs: ids, idShard: 2)
        _ = buffer.add(userID: "user-0", updates: [.increment(goal: 1)], eventID: "late")
        var again: [BufferedEventID] = []
        let redrained = (0..<4).flatMap { buffer.drain(shard: $0, eventIDs: &again) }
        #expect(redrained.count == 8)
        #expect(Set(again.map(\.id)) == Set(ids.map(\.id) + ["late"]))
    }
}
