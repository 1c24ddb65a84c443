import BenchSupport
import Foundation
import LoadGenerator
import Synchronization

/// LoadGenerator run in this process: one HTTP/2 connection, up to 500 calls in flight, a
/// fixed arrival rate, latency from each call's intended start.
enum GeneratorLoad {
    /// Runs the generator on the concurrency pool and waits for it on the calling thread (the
    /// runner's main thread, which blocks on libpq and processes and so is not a pool thread).
    static func runBlocking(profile: Profile, port: Int, runID: String, thresholds: ProfileResults.Thresholds?) throws -> LoadOutcome {
        let outcome = Mutex<Result<LoadOutcome, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let result = try await run(profile: profile, port: port, runID: runID, thresholds: thresholds)
                outcome.withLock { $0 = .success(result) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try outcome.withLock { $0! }.get()
    }

    static func run(profile: Profile, port: Int, runID: String, thresholds: ProfileResults.Thresholds?) async throws -> LoadOutcome {
        var options = LoadGenerator.Options(runID: runID, userID: { BenchCatalog.userID($0) })
        options.breakThresholds = thresholds.map {
            BreakThresholds(errorRate: $0.errorRate, p95Ms: $0.p95Ms, achievedRatio: $0.achievedRatio)
        }
        let result = try await LoadGenerator(host: "127.0.0.1", port: port, profile: profile, options: options).run()
        let latency = result.latency
        var outcome = LoadOutcome(
            summary: LoadSummary(
                tool: "generator", seconds: result.durationSeconds, intended: result.intended, ok: result.ok,
                failed: result.failed, failedByCode: result.failedByCode, late: result.slotWaits,
                achievedEPS: result.achievedEps,
                latencyMs: Percentiles(
                    p50: latency.p50Ms, p90: latency.p90Ms, p95: latency.p95Ms, p99: latency.p99Ms, p999: latency.p999Ms,
                    max: latency.maxMs),
                loginsOK: result.loginsOk, statsOK: result.statsOk, statValueSumOK: result.statValueSumOk,
                toolCPUSeconds: result.cpuSeconds, stoppedEarly: result.brokeAt != nil),
            seconds: result.seconds, breakingPoint: nil)
        if let broke = result.brokeAt, let first = broke.thresholds.first {
            let before = result.seconds.filter { $0.second < broke.second }
            let lastGood = before.filter { second in
                guard let t = thresholds else { return true }
                return second.errorRate <= t.errorRate && second.p95Ms <= t.p95Ms && second.achievedRatio >= t.achievedRatio
            }.map { Double($0.ok) }.max() ?? 0
            outcome.breakingPoint = BreakingPoint(
                second: Double(broke.second), targetEPS: Double(broke.targetEps), achievedEPS: broke.achievedEps,
                limit: name(first.threshold), measured: first.worst, threshold: first.limit, lastGoodEPS: lastGood)
        }
        return outcome
    }

    /// The names the results use for a broken threshold (as RunAnalysis.breakingPoint does).
    static func name(_ threshold: BrokenThreshold.Threshold) -> String {
        switch threshold {
        case .errorRate: return "error rate"
        case .p95Latency: return "p95 latency"
        case .achievedRate: return "achieved rate"
        }
    }
}
