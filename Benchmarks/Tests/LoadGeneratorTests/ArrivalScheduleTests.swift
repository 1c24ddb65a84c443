import LoadGenerator
import Testing

@Suite("ArrivalSchedule: events due by time t")
struct ArrivalScheduleTests {
    @Test("a constant rate: exactly rate x seconds events, the first one period in")
    func constantRate() {
        let schedule = ArrivalSchedule(Profile(startEPS: 1000, stages: [.init(seconds: 10, eps: 1000)]))
        #expect(schedule.totalEvents == 10_000)
        #expect(schedule.eventsDue(by: 0) == 0)
        #expect(schedule.eventsDue(by: 0.0005) == 0)
        #expect(schedule.eventsDue(by: 0.001) == 1)
        #expect(schedule.eventsDue(by: 1) == 1000)
        #expect(schedule.eventsDue(by: 2.5) == 2500)
        #expect(schedule.eventsDue(by: 11) == 10_000)
        #expect(abs(schedule.intendedTime(ofEvent: 0) - 0.001) < 1e-12)
        #expect(abs(schedule.intendedTime(ofEvent: 9_999) - 10) < 1e-9)
        #expect((0..<10).allSatisfy { schedule.eventsDue(inSecond: $0) == 1000 })
    }

    @Test("a ramp from 0 to 1,000/s over 10 s: Λ(t) = 50 t²")
    func ramp() {
        let schedule = ArrivalSchedule(Profile(startEPS: 0, stages: [.init(seconds: 10, eps: 1000)]))
        #expect(schedule.totalEvents == 5000)
        for (t, due) in [(1.0, 50), (2.0, 200), (5.0, 1250), (7.3, 2664), (10.0, 5000)] {
            #expect(schedule.eventsDue(by: t) == due, "at \(t) s")
        }
        #expect(abs(schedule.rate(at: 4) - 400) < 1e-9)
        // Event 199 is the 200th: due when Λ = 200, at 2 s.
        #expect(abs(schedule.intendedTime(ofEvent: 199) - 2) < 1e-9)
        #expect(schedule.eventsDue(inSecond: 0) == 50)
        #expect(schedule.eventsDue(inSecond: 9) == 5000 - 4050)
    }

    @Test("stages chain: ramp up, hold, ramp down; due counts and intended times agree")
    func stagesChain() {
        let profile = Profile(
            startEPS: 100, stages: [.init(seconds: 4, eps: 900), .init(seconds: 3, eps: 900), .init(seconds: 2, eps: 0)])
        let schedule = ArrivalSchedule(profile)
        // 4 s averaging 500/s, 3 s at 900/s, 2 s averaging 450/s.
        #expect(schedule.totalEvents == 2000 + 2700 + 900)
        #expect(schedule.eventsDue(by: 4) == 2000)
        #expect(schedule.eventsDue(by: 5.5) == 2000 + 1350)
        #expect(schedule.eventsDue(by: 8) == 2000 + 2700 + 675)  // 1 s down from 900 to 450
        var cursor = ArrivalSchedule.Cursor()
        var previous = 0.0
        for n in 0..<schedule.totalEvents {
            let t = cursor.intendedTime(ofEvent: n, in: schedule)
            #expect(t >= previous && t <= schedule.duration, "event \(n) at \(t)")
            // Event n is due exactly when the count reaches n + 1, and not before (where the
            // rate is near 0, at the very end, Λ is too flat for a 1 µs step to tell).
            #expect(schedule.eventsDue(by: t) == n + 1, "event \(n) at \(t)")
            if schedule.rate(at: t) > 1 {
                #expect(schedule.eventsDue(by: t - 1e-6) == n, "event \(n) at \(t)")
            }
            previous = t
        }
    }

    @Test("the scaled stress profile: a ramp from 1/s, every event inside the plan")
    func stressScaled() {
        let stress = Profile(
            startEPS: 1,
            stages: [.init(seconds: 600, eps: 1000), .init(seconds: 600, eps: 2000), .init(seconds: 600, eps: 5000), .init(seconds: 600, eps: 20000)]
        ).scaled(by: 0.01)
        let schedule = ArrivalSchedule(stress)
        // (1 + 1000)/2·6 + 1500·6 + 3500·6 + 12500·6 = 3003 + 9000 + 21000 + 75000
        #expect(schedule.totalEvents == 108_003)
        #expect(schedule.eventsDue(by: 6) == 3003)
        #expect(schedule.eventsDue(by: 12) == 12_003)
        #expect(abs(schedule.intendedTime(ofEvent: schedule.totalEvents - 1) - 24) < 1e-6)
        #expect((0..<24).map { schedule.eventsDue(inSecond: $0) }.reduce(0, +) == schedule.totalEvents)
    }
}
