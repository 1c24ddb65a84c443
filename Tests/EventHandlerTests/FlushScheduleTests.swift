import Testing

@testable import EventHandler

@Suite("Flush schedule: staggered worker ticks")
struct FlushScheduleTests {
    let origin = ContinuousClock.now
    let interval = Duration.milliseconds(1_000)

    @Test("before its first tick a worker waits for the origin; after it, for the next multiple of the interval")
    func ticksFollowTheOrigin() {
        #expect(FlushWorker.nextTick(after: origin - .milliseconds(300), origin: origin, interval: interval) == origin)
        #expect(FlushWorker.nextTick(after: origin, origin: origin, interval: interval) == origin + interval)
        #expect(FlushWorker.nextTick(after: origin + .milliseconds(10), origin: origin, interval: interval) == origin + interval)
        #expect(FlushWorker.nextTick(after: origin + .milliseconds(999), origin: origin, interval: interval) == origin + interval)
        #expect(FlushWorker.nextTick(after: origin + .milliseconds(1_000), origin: origin, interval: interval) == origin + interval * 2)
    }

    @Test("a cycle that overran several intervals (a slow flush, a retry) lands back on the worker's own phase")
    func overrunKeepsThePhase() {
        let phased = origin + interval / 2
        let next = FlushWorker.nextTick(after: phased + .milliseconds(3_700), origin: phased, interval: interval)
        #expect(next == phased + interval * 4)
        // Two workers half an interval apart stay half an interval apart, whatever woke them.
        for wake in stride(from: 0, to: 5_000, by: 130) {
            let now = origin + .milliseconds(wake)
            let first = FlushWorker.nextTick(after: now, origin: origin, interval: interval)
            let second = FlushWorker.nextTick(after: now, origin: phased, interval: interval)
            let apart = abs((first - second) / interval)
            #expect(abs(apart - 0.5) < 1e-9)
        }
    }
}
