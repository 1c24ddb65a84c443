import LoadGenerator
import Testing

@Suite("BreakDetector on synthetic series")
struct BreakDetectorTests {
    static let thresholds = BreakThresholds(errorRate: 0.01, p95Ms: 100, achievedRatio: 0.95)

    static func healthy(_ s: Int, target: Int = 1000) -> SecondStats {
        SecondStats(second: s, targetEps: target, sent: target, ok: target, failed: 0, p50Ms: 2, p95Ms: 8, p99Ms: 20, maxMs: 40)
    }

    /// Feeds the series; returns the report and the index of the second that produced it.
    static func run(_ series: [SecondStats]) -> (BreakReport, Int)? {
        var detector = BreakDetector(thresholds: thresholds)
        for (i, second) in series.enumerated() {
            if let report = detector.observe(second) { return (report, i) }
        }
        return nil
    }

    @Test("a healthy run never breaks; four bad seconds in a row do not break it either")
    func noBreak() {
        var series = (0..<20).map { Self.healthy($0) }
        for s in 5..<9 { series[s].p95Ms = 500 }
        for s in 12..<16 { series[s].failed = 50; series[s].ok = 950 }
        #expect(Self.run(series) == nil)
    }

    @Test("five consecutive seconds each breaking some threshold break the run at the streak's start")
    func breaks() throws {
        var series = (0..<30).map { Self.healthy($0, target: 1000 + 100 * $0) }
        // 10-13 bad, 14 fine (the streak restarts), 15-19 bad: p95 in all, errors in two, rate in one.
        for s in 10..<14 { series[s].p95Ms = 300 }
        for s in 15..<20 { series[s].p95Ms = Double(150 + s) }
        series[16].failed = 30
        series[16].ok = series[16].targetEps - 30
        series[18].failed = 100
        series[18].ok = series[18].targetEps - 100
        series[19].ok = Int(Double(series[19].targetEps) * 0.5)
        let (report, index) = try #require(Self.run(series))
        #expect(index == 19)
        #expect(report.second == 15)
        #expect(report.targetEps == 2500)
        let okOverStreak = (15..<20).map { series[$0].ok }.reduce(0, +)
        #expect(report.achievedEps == Double(okOverStreak) / 5)
        #expect(report.thresholds.map(\.threshold) == [.errorRate, .p95Latency, .achievedRate])
        let errors = report.thresholds[0]
        #expect(errors.seconds == 2 && errors.limit == 0.01 && abs(errors.worst - 100.0 / 2800) < 1e-12)
        let latency = report.thresholds[1]
        #expect(latency.seconds == 5 && latency.limit == 100 && latency.worst == 169)
        let rate = report.thresholds[2]
        #expect(rate.seconds == 1 && abs(rate.worst - 0.5) < 1e-12)
    }

    @Test("an unanswered second breaks on the achieved rate; seconds with nothing due are not judged")
    func stallAndDrain() throws {
        var series = (0..<5).map { Self.healthy($0) }
        // The service stalls: nothing answered for 3 s, the schedule ends, 2 drain seconds of nothing due.
        for s in 5..<8 { series.append(SecondStats(second: s, targetEps: 1000, sent: 0)) }
        for s in 8..<10 { series.append(SecondStats(second: s, targetEps: 0, ok: 0, failed: 500)) }
        #expect(Self.run(series) == nil)
        for s in 10..<12 { series.append(SecondStats(second: s, targetEps: 1000, sent: 0)) }
        let (report, index) = try #require(Self.run(series))
        #expect(index == 11 && report.second == 5 && report.achievedEps == 0)
        #expect(report.thresholds == [BrokenThreshold(threshold: .achievedRate, limit: 0.95, worst: 0, seconds: 5)])
    }
}
