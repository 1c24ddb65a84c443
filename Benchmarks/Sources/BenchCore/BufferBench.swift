import BenchSupport
import Buffer
import Foundation
import Synchronization

/// Merges per second into an `EventBuffer`: each event is one user (of `users`) moving
/// `goalsPerEvent` goals, like a stat event of the realistic mix. A "merge" is one goal update.
/// Each thread drains its share of the shards every `drainEvery` events, as the flush workers
/// do, so the buffer holds what it holds in service (up to ~100,000 entries), not millions;
/// the drains are inside the timed window.
struct BufferBench {
    let userIDs: [String]
    let events: [[GoalUpdate]]

    init(users: Int, goalsPerEvent: Int, goalCount: Int) {
        userIDs = (0..<users).map { _ in UUID().uuidString.lowercased() }
        var generator = SystemRandomNumberGenerator()
        events = (0..<1_024).map { _ in
            let first = Int32.random(in: 0..<Int32(goalCount - goalsPerEvent), using: &generator)
            return (0..<Int32(goalsPerEvent)).map { .absolute(goal: first + $0, value: Int64.random(in: 0..<1_000)) }
        }
    }

    func mergesPerSecond(threads: Int, seconds: Double) -> Double {
        let buffer = EventBuffer(shardCount: 256, limit: 100_000_000)
        let merged = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        let start = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            let thread = Thread { [userIDs, events] in
                start.wait()
                let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
                var count = 0
                var i = t * 7_919
                var sinceDrain = 0
                while ContinuousClock.now < end {
                    if sinceDrain >= 5_000 {
                        for shard in stride(from: t, to: buffer.shardCount, by: threads) { _ = buffer.drain(shard: shard) }
                        sinceDrain = 0
                    }
                    sinceDrain += 256
                    for _ in 0..<256 {
                        let updates = events[i & 1_023]
                        _ = buffer.add(userID: userIDs[i % userIDs.count], updates: updates)
                        count += updates.count
                        i &+= 1
                    }
                }
                merged.add(count, ordering: .relaxed)
                done.signal()
            }
            thread.start()
        }
        let began = ContinuousClock.now
        for _ in 0..<threads { start.signal() }
        for _ in 0..<threads { done.wait() }
        let elapsed = ContinuousClock.now - began
        let (s, atto) = elapsed.components
        return Double(merged.load(ordering: .relaxed)) / (Double(s) + Double(atto) / 1e18)
    }
}

/// The shard hash (`fnv1a32`) per id, over the string's own UTF-8 storage as the service hashes,
/// against the same FNV-1a stepping through `String.utf8` (what it did before 2026-11-25): the
/// two alternated `rounds` times over the same ids, so the ratio comes from one run.
struct ShardHashBench {
    struct Result: Encodable {
        /// "uuid" (36 bytes, a heap string) or "short" ("user-123", a small inline string).
        var ids: String
        var contiguousNanosecondsPerID: Double
        var utf8ViewNanosecondsPerID: Double
        /// contiguous / view: under 1 is faster.
        var ratio: Double
    }

    static func run(count: Int = 1_000_000, rounds: Int = 3) -> [Result] {
        let sets: [(String, [String])] = [
            ("uuid", (0..<count).map { _ in UUID().uuidString.lowercased() }),
            ("short", (0..<count).map { "user-\($0)" }),
        ]
        return sets.map { name, ids in
            var contiguous: [Double] = [], view: [Double] = []
            for _ in 0..<rounds {
                var contiguousSum: UInt32 = 0, viewSum: UInt32 = 0
                var began = ContinuousClock.now
                for id in ids { contiguousSum &+= fnv1a32(id) }
                contiguous.append(nanosecondsPerID(since: began, count: ids.count))
                began = ContinuousClock.now
                for id in ids { viewSum &+= fnv1a32(bytes: id.utf8) }
                view.append(nanosecondsPerID(since: began, count: ids.count))
                // The same values both ways (and the sums keep both loops from being optimised away).
                precondition(contiguousSum == viewSum, "fnv1a32 disagrees with itself over String.utf8")
            }
            let c = median(contiguous), v = median(view)
            return Result(ids: name, contiguousNanosecondsPerID: c, utf8ViewNanosecondsPerID: v, ratio: c / v)
        }
    }

    private static func nanosecondsPerID(since began: ContinuousClock.Instant, count: Int) -> Double {
        BenchSupport.seconds(ContinuousClock.now - began) * 1e9 / Double(count)
    }

    private static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
