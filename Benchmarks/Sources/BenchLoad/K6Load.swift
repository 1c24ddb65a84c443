import BenchSupport
import Foundation
import LoadGenerator
import Synchronization

/// What a load tool reports back to the runner.
struct LoadOutcome {
    var summary: LoadSummary
    /// The generator's own per-second account (client side); nil for k6.
    var seconds: [SecondStats]?
}

/// The pid of the load tool's process while it runs, for the sampler's CPU reading.
final class LoadToolProcess: Sendable {
    private let current = Atomic<Int32>(0)
    var pid: Int32? {
        let value = current.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }
    func set(_ pid: Int32) { current.store(pid, ordering: .relaxed) }
}

/// bench/k6/events.js run by k6 (scripts/install-k6.sh), its summary read back from
/// SUMMARY_PATH.
enum K6Load {
    /// k6's summary file (bench/k6/events.js, handleSummary).
    private struct Summary: Decodable {
        struct Latency: Decodable {
            var med: Double?
            var p90: Double?
            var p95: Double?
            var p99: Double?
            var p99_9: Double?
            var max: Double?
        }
        var duration_s: Double
        var planned_duration_s: Double
        var iterations: Int
        var dropped_iterations: Int
        var events_ok: Int
        var events_failed: Int
        var events_failed_by_code: [String: Int]
        var logins_ok: Int
        var stats_ok: Int
        var stat_value_sum_ok: Int
        var grpc_req_duration_ms: Latency
        var thresholds_failed: [String]?
    }

    static func run(
        k6: String, profile: String, scale: Double, port: Int, runID: String, directory: String,
        tracking: LoadToolProcess
    ) throws -> LoadOutcome {
        guard FileManager.default.isExecutableFile(atPath: k6) else {
            throw BenchError("\(k6) is missing: scripts/install-k6.sh installs it (make bench does)")
        }
        let summaryPath = directory + "-k6-\(runID).json"
        defer { try? FileManager.default.removeItem(atPath: summaryPath) }
        var environment = ProcessInfo.processInfo.environment
        environment["PROFILE"] = profile
        environment["BENCH_SCALE"] = String(scale)
        environment["TARGET"] = "127.0.0.1:\(port)"
        environment["RUN_ID"] = runID
        environment["SUMMARY_PATH"] = summaryPath
        environment["K6_NO_USAGE_REPORT"] = "true"
        // The script's default for stress (peak rate x 100 ms: 2,000 VUs) costs 1.2 GB and 7 s
        // of start-up here and reaches no further than 500 (k6 saturates first on 2 cores).
        if profile == "stress" { environment["MAX_VUS"] = "500" }
        let process = try BenchProcess(
            binary: k6, arguments: ["run", "--quiet", "--no-color", "bench/k6/events.js"], environment: environment,
            logPath: directory + "-k6-\(runID).log")
        tracking.set(process.pid)
        var cpu = 0.0
        while process.process.isRunning {
            cpu = max(cpu, ProcessCPU.seconds(of: process.pid))
            Thread.sleep(forTimeInterval: 0.2)
        }
        process.process.waitUntilExit()
        // Exit status 99 is k6's "thresholds crossed": a result, not a failure of the run.
        let status = process.process.terminationStatus
        guard status == 0 || status == 99,
            let data = FileManager.default.contents(atPath: summaryPath),
            let summary = try? JSONDecoder().decode(Summary.self, from: data)
        else {
            throw BenchError("k6 failed (exit \(status)):\n\(process.log.suffix(3_000))")
        }
        let latency = summary.grpc_req_duration_ms
        return LoadOutcome(
            summary: LoadSummary(
                tool: "k6", seconds: summary.duration_s, intended: summary.iterations + summary.dropped_iterations,
                ok: summary.events_ok, failed: summary.events_failed, failedByCode: summary.events_failed_by_code,
                late: summary.dropped_iterations, achievedEPS: Double(summary.events_ok) / max(summary.duration_s, 0.001),
                latencyMs: Percentiles(
                    p50: latency.med ?? 0, p90: latency.p90 ?? 0, p95: latency.p95 ?? 0, p99: latency.p99 ?? 0,
                    p999: latency.p99_9 ?? 0, max: latency.max ?? 0),
                loginsOK: summary.logins_ok, statsOK: summary.stats_ok, statValueSumOK: summary.stat_value_sum_ok,
                toolCPUSeconds: cpu,
                // A threshold abort (the stress break) ends the run with calls in flight.
                stoppedEarly: summary.duration_s < summary.planned_duration_s - 1,
                thresholdsCrossed: summary.thresholds_failed),
            seconds: nil)
    }
}
