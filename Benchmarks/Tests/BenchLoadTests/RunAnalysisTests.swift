import LoadGenerator
import Testing

@testable import BenchLoad

@Suite("bench-load: reading /metrics and finding the breaking point")
struct RunAnalysisTests {
    static let page = """
        # HELP events_received_total Events received
        # TYPE events_received_total counter
        events_received_total{source="grpc",type="login"} 20
        events_received_total{source="grpc",type="stat"} 80
        events_received_total{source="kafka",type="stat"} 1000
        event_buffer_size 42
        grpc_request_duration_seconds_bucket{method="a",le="0.001"} 5
        grpc_request_duration_seconds_bucket{method="a",le="0.01"} 9
        grpc_request_duration_seconds_bucket{method="a",le="+Inf"} 10
        grpc_request_duration_seconds_bucket{method="b",le="0.001"} 5
        grpc_request_duration_seconds_bucket{method="b",le="0.01"} 9
        grpc_request_duration_seconds_bucket{method="b",le="+Inf"} 10
        """

    @Test("series are summed over label sets, filtered by label, and histograms by bound")
    func parsesThePage() {
        let page = MetricsPage(text: Self.page)
        #expect(page.sum("events_received_total", matching: [#"source="grpc""#]) == 100)
        #expect(page.sum("events_received_total") == 1_100)
        #expect(page.sum("event_buffer_size") == 42)
        #expect(page.sum("no_such_metric") == 0)
        let buckets = page.buckets("grpc_request_duration_seconds")
        #expect(buckets[0.001] == 10)
        #expect(buckets[0.01] == 18)
        #expect(buckets[.infinity] == 20)
    }

    @Test("quantiles interpolate inside the bucket of their rank, over the difference of two snapshots")
    func quantiles() {
        let before: [Double: Double] = [0.001: 10, 0.01: 10, .infinity: 10]
        let after: [Double: Double] = [0.001: 20, 0.01: 110, .infinity: 110]
        // 100 new observations: 10 under 1 ms, 90 between 1 and 10 ms.
        let median = BucketQuantile.quantile(0.5, from: before, to: after)!
        #expect(abs(median - (0.001 + 0.009 * 40 / 90)) < 1e-9)
        #expect(BucketQuantile.quantile(0.05, from: before, to: after)! <= 0.001)
        #expect(BucketQuantile.quantile(0.5, from: after, to: after) == nil)
    }

    static func second(_ t: Double, target: Double, eps: Double, failed: Double = 0, p95: Double = 1) -> SecondSample {
        SecondSample(
            t: t, targetEPS: target, eps: eps, epsSource: "metrics", failed: failed, dbWrites: 0, cpuPercent: 0,
            postgresCPUPercent: 0, loadCPUPercent: 0, rssMB: 0, buffer: 0, p95Ms: p95, p99Ms: p95)
    }

    static let thresholds = BreakThresholds(errorRate: 0.01, p95Ms: 100, achievedRatio: 0.95)

    static func breakingPoint(_ series: [SecondSample]) -> BreakingPoint {
        RunAnalysis.breakingPoint(RunAnalysis.judgedSeconds(series), thresholds: thresholds)
    }

    @Test("a stress run breaks where a threshold fails for five seconds running, not on one bad second")
    func breakingPoint() {
        var series = (1...20).map { Self.second(Double($0), target: Double($0) * 100, eps: Double($0) * 100) }
        series[5].p95Ms = 500  // one bad second: noise
        for i in 12..<20 { series[i].p95Ms = 250 }
        let point = Self.breakingPoint(series)
        #expect(point.limit == "p95 latency")
        #expect(point.second == 13)
        #expect(point.targetEPS == 1_300)
        #expect(point.lastGoodEPS == 1_200)
    }

    @Test("a run that holds every threshold reports no break, and the rate it reached")
    func unbroken() {
        let series = (1...10).map { Self.second(Double($0), target: 1_000, eps: 990) }
        let point = Self.breakingPoint(series)
        #expect(point.limit == "none")
        #expect(point.lastGoodEPS == 990)
    }

    @Test("falling behind the target and failing calls are breaks too")
    func otherLimits() {
        let behind = (1...10).map { Self.second(Double($0), target: 1_000, eps: 800) }
        #expect(Self.breakingPoint(behind).limit == "achieved rate")
        let failing = (1...10).map { Self.second(Double($0), target: 1_000, eps: 1_000, failed: 50) }
        #expect(Self.breakingPoint(failing).limit == "error rate")
    }

    @Test("a ramp's first few events per second are not judged by rate (one event is 5% there)")
    func slowStart() {
        // k6 at 1 to 40 events/s, its samples a second behind: every second short of the target.
        let series = (1...40).map { Self.second(Double($0), target: Double($0), eps: Double($0 - 1)) }
        #expect(Self.breakingPoint(series).limit == "none")
        let behind = (1...10).map { Self.second(Double($0), target: 60, eps: 50) }
        #expect(Self.breakingPoint(behind).limit == "achieved rate")
    }

    @Test("a sampled second's target is what the schedule made due over it, not the rate at its end")
    func targetOverTheInterval() {
        // A ramp from 0 to 1,000 events/s over 10 s: 100 events/s more each second.
        let schedule = ArrivalSchedule(Profile(startEPS: 0, stages: [.init(seconds: 10, eps: 1_000)]))
        #expect(abs(RunAnalysis.targetRate(schedule, from: 1, to: 2) - 150) < 1e-9)
        #expect(abs(RunAnalysis.targetRate(schedule, from: 9.5, to: 10.5) - (schedule.cumulative(at: 10) - schedule.cumulative(at: 9.5))) < 1e-9)
        #expect(RunAnalysis.targetRate(schedule, from: -2, to: -1) == 0)
        #expect(RunAnalysis.targetRate(schedule, from: 11, to: 12) == 0)
    }

    @Test("k6's schedule start is read from the traffic: the schedule's time to the first hundred events")
    func scheduleStartFromTraffic() {
        let schedule = ArrivalSchedule(Profile(startEPS: 0, stages: [.init(seconds: 10, eps: 1_000)]))
        // Load started at 5 s, k6's VUs were ready at 7.3 s; samples every second from 0.
        func sample(_ seconds: Double) -> RawSample {
            let events = seconds > 7.3 ? schedule.cumulative(at: seconds - 7.3) : 0
            return RawSample(
                seconds: seconds, systemCPU: 0, postgresCPU: 0, loadCPU: 0, residentBytes: 0,
                rowsWritten: Int((10 * events).rounded(.down)), metrics: nil)
        }
        let samples = stride(from: 0.0, through: 20, by: 1).map(sample)
        let start = RunAnalysis.scheduleStart(samples, loadStart: 5, schedule: schedule)
        #expect(abs(start - 7.3) < 0.02)
        // No traffic at all: the load's own start.
        #expect(RunAnalysis.scheduleStart(samples.map { var s = $0; s.rowsWritten = 0; return s }, loadStart: 5, schedule: schedule) == 5)
    }

    @Test("k6 aborting on its own p95 threshold is the break, at the last full seconds before its traffic stopped")
    func k6Abort() throws {
        var series = (1...12).map { Self.second(Double($0), target: Double($0) * 100, eps: Double($0) * 100) }
        series[8].eps = 415  // the second k6 stopped in: cut short, it reads low
        for i in 9..<12 { series[i].eps = 0 }
        let load = LoadSummary(
            tool: "k6", seconds: 9, intended: 4_500, ok: 4_500, failed: 0, failedByCode: [:], late: 0, achievedEPS: 500,
            latencyMs: Percentiles(p50: 2, p90: 90, p95: 130, p99: 200, p999: 250, max: 300), loginsOK: 900, statsOK: 3_600,
            statValueSumOK: 0, toolCPUSeconds: 5, stoppedEarly: true, thresholdsCrossed: ["grpc_req_duration: p(95)<100"])
        let point = try #require(RunAnalysis.k6Abort(load, series: series, thresholds: Self.thresholds, lastGood: 800))
        // Seconds 6, 7 and 8: 600, 700 and 800 events/s due and achieved.
        #expect(point.second == 8 && point.targetEPS == 700 && point.achievedEPS == 700)
        #expect(point.limit.hasPrefix("p95 latency") && point.measured == 130 && point.lastGoodEPS == 800)
        var finished = load
        finished.stoppedEarly = false
        #expect(RunAnalysis.k6Abort(finished, series: series, thresholds: Self.thresholds, lastGood: 800) == nil)
    }
}
