import Foundation
import LoadGenerator
import Testing

@Suite("LoadResult and LatencyRecorder")
struct LoadResultTests {
    @Test("results encode to the results files' snake_case keys and decode back")
    func snakeCaseKeys() throws {
        var recorder = LatencyRecorder()
        for ms in 1...1000 { recorder.record(microseconds: Int64(ms) * 1000) }
        let result = LoadResult(
            runId: "r1", intended: 10, sent: 10, unsent: 0, ok: 9, failed: 1, failedByCode: ["DEADLINE_EXCEEDED": 1], slotWaits: 2,
            peakInFlight: 4, durationSeconds: 1, wallSeconds: 1.5, intendedEps: 10, achievedEps: 9, latency: recorder.summary,
            seconds: [SecondStats(second: 0, targetEps: 10, sent: 10, ok: 9, failed: 1, slotWaits: 2)],
            loginsOk: 2, statsOk: 7, statValueSumOk: 12,
            brokeAt: BreakReport(second: 0, targetEps: 10, achievedEps: 9, thresholds: [BrokenThreshold(threshold: .errorRate, limit: 0.01, worst: 0.1, seconds: 5)]))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(result)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in [
            "run_id", "intended", "sent", "unsent", "ok", "failed", "failed_by_code", "slot_waits", "peak_in_flight", "duration_seconds",
            "wall_seconds", "intended_eps", "achieved_eps", "latency", "seconds", "logins_ok", "stats_ok", "stat_value_sum_ok",
            "broke_at",
        ] {
            #expect(object[key] != nil, "missing \(key)")
        }
        let latency = try #require(object["latency"] as? [String: Any])
        #expect(Set(latency.keys) == ["count", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"])
        let second = try #require((object["seconds"] as? [[String: Any]])?.first)
        #expect(Set(second.keys) == ["second", "target_eps", "sent", "ok", "failed", "slot_waits", "p50_ms", "p95_ms", "p99_ms", "max_ms"])
        let broke = try #require(object["broke_at"] as? [String: Any])
        #expect((broke["thresholds"] as? [[String: Any]])?.first?["threshold"] as? String == "error_rate")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(LoadResult.self, from: data) == result)
    }

    @Test("percentiles within 0.1%, in milliseconds; values past 60 s count as 60 s")
    func percentiles() {
        var recorder = LatencyRecorder()
        #expect(recorder.summary == LatencySummary(count: 0, p50Ms: 0, p90Ms: 0, p95Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0))
        for ms in 1...1000 { recorder.record(microseconds: Int64(ms) * 1000) }
        let summary = recorder.summary
        #expect(summary.count == 1000)
        for (measured, expected) in [(summary.p50Ms, 500.0), (summary.p90Ms, 900), (summary.p99Ms, 990), (summary.p999Ms, 999), (summary.maxMs, 1000)] {
            #expect(abs(measured - expected) <= expected * 0.001, "\(measured) vs \(expected)")
        }
        recorder.record(microseconds: 3_600_000_000)
        #expect(abs(recorder.maxMilliseconds - 60_000) <= 60)
        recorder.reset()
        #expect(recorder.count == 0)
    }
}
