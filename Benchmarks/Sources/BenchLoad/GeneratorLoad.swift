import BenchSupport
import Foundation
import LoadGenerator
import Synchronization

/// LoadGenerator run in this process: one HTTP/2 connection, up to 500 calls in flight, a
/// fixed arrival rate, latency from each call's intended start.
enum GeneratorLoad {
    /// Runs the generator on the concurrency pool and waits for it on the calling thread (the
    /// runner's main thread, which blocks on libpq and processes and so is not a pool thread).
    static func runBlocking(profile: Profile, port: Int, runID: String, thresholds: BreakThresholds?) throws -> LoadOutcome {
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

    static func run(profile: Profile, port: Int, runID: String, thresholds: BreakThresholds?) async throws -> LoadOutcome {
        var options = LoadGenerator.Options(runID: runID, userID: { BenchCatalog.userID($0) })
        options.breakThresholds = thresholds
        // The generator's own cost: this process's CPU over the run (the runner's sampler thread
        // is idle between its once-a-second samples).
        let cpuBefore = ProcessCPU.seconds(of: getpid())
        let result = try await LoadGenerator(host: "127.0.0.1", port: port, profile: profile, options: options).run()
        let latency = result.latency
        return LoadOutcome(
            summary: LoadSummary(
                tool: "generator", seconds: result.durationSeconds, intended: result.intended, ok: result.ok,
                failed: result.failed, failedByCode: result.failedByCode, late: result.slotWaits,
                achievedEPS: result.achievedEps,
                latencyMs: Percentiles(
                    p50: latency.p50Ms, p90: latency.p90Ms, p95: latency.p95Ms, p99: latency.p99Ms, p999: latency.p999Ms,
                    max: latency.maxMs),
                loginsOK: result.loginsOk, statsOK: result.statsOk, statValueSumOK: result.statValueSumOk,
                toolCPUSeconds: ProcessCPU.seconds(of: getpid()) - cpuBefore, stoppedEarly: result.brokeAt != nil),
            seconds: result.seconds)
    }
}
