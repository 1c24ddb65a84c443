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
