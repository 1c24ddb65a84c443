import TestSupport
import LoadGenerator
import Testing

@Suite("EventMix: the benchmark event mix")
struct EventMixTests {
    @Test("20% logins and 80% stats over five codes, within 1% over 100,000 draws")
    func shares() {
        var mix = EventMix(users: 10_000, random: SeededGenerator(seed: 42))
        var logins = 0
        var perCode = [Int: Int]()
        for n in 0..<100_000 {
            let event = mix.next()!
            #expect(event.sequence == n)
            switch event.kind {
            case .login: logins += 1
            case .stat(let code, _): perCode[code, default: 0] += 1
            }
            mix.finish(event)
        }
        #expect(abs(Double(logins) / 100_000 - 0.2) < 0.01, "logins \(logins)")
        #expect(Set(perCode.keys) == [0, 1, 2, 3, 4])
        for (code, count) in perCode {
            #expect(abs(Double(count) / 100_000 - 0.16) < 0.01, "stat-\(code): \(count)")
        }
    }

    @Test("latest_value counts the stat events sent per (user, code): 1, 2, 3, ...")
    func latestValueCounting() {
        var mix = EventMix(users: 50, random: SeededGenerator(seed: 7))
        var seen: [Int: Int] = [:]  // user * 5 + code -> last value
        for _ in 0..<20_000 {
            let event = mix.next()!
            if case .stat(let code, let value) = event.kind {
                let key = event.user * 5 + code
                #expect(value == seen[key, default: 0] + 1)
                seen[key] = value
            }
            mix.finish(event)
        }
        #expect(seen.count == 250)
        #expect(seen.allSatisfy { key, value in mix.statEventsSent(user: key / 5, code: key % 5) == value })
    }

    @Test("no user has two calls in flight; a busy draw takes the next free user")
    func perUserOrder() {
        var mix = EventMix(users: 600, random: SeededGenerator(seed: 3))
        var random = SeededGenerator(seed: 4)
        var outstanding: [PlannedEvent] = []
        var busy = Set<Int>()
        for _ in 0..<50_000 {
            // Keep 450..500 out of 600 users in flight, answering in random order.
            while outstanding.count >= 450 + Int.random(in: 0...50, using: &random) {
                let answered = outstanding.remove(at: Int.random(in: 0..<outstanding.count, using: &random))
                mix.finish(answered)
                busy.remove(answered.user)
            }
            let event = mix.next()!
            #expect(!busy.contains(event.user), "user \(event.user) drawn twice in flight")
            busy.insert(event.user)
            outstanding.append(event)
            #expect(mix.inFlight == outstanding.count)
        }
        #expect(busy.allSatisfy { mix.isInFlight($0) })
    }

    @Test("with every user in flight there is nothing to draw")
    func allBusy() {
        var mix = EventMix(users: 3, random: SeededGenerator(seed: 1))
        let drawn = (0..<3).map { _ in mix.next()! }
        #expect(Set(drawn.map(\.user)) == [0, 1, 2])
        #expect(mix.next() == nil)
        mix.finish(drawn[1])
        #expect(mix.next()?.user == drawn[1].user)
    }
}
