import BenchSupport
import Foundation
import LoadGenerator
import Storage

/// Turns what a run left behind (samples, the load tool's account, the table) into the numbers
/// of the results file.
enum RunAnalysis {
    /// Per-second rates from consecutive cumulative samples, aligned with the load's clock
    /// (`loadStart` seconds into the sampling).
    static func series(
        _ samples: [RawSample], loadStart: Double, profile: Profile, generatorSeconds: [SecondStats]?
    ) -> [SecondSample] {
        let schedule = ArrivalSchedule(profile)
        var out: [SecondSample] = []
        for (previous, sample) in zip(samples, samples.dropFirst()) {
            let dt = max(sample.seconds - previous.seconds, 0.001)
            let t = sample.seconds - loadStart
            let dbWrites = Double(sample.rowsWritten - previous.rowsWritten) / dt
            var second = SecondSample(
                t: (t * 10).rounded() / 10, targetEPS: targetRate(schedule, from: t - dt, to: t), eps: dbWrites / 10, epsSource: "rows",
                failed: nil, dbWrites: dbWrites,
                cpuPercent: 100 * (sample.systemCPU - previous.systemCPU) / dt,
                postgresCPUPercent: 100 * (sample.postgresCPU - previous.postgresCPU) / dt,
                loadCPUPercent: 100 * (sample.loadCPU - previous.loadCPU) / dt,
                rssMB: Double(sample.residentBytes) / 1_048_576, buffer: nil, p95Ms: nil, p99Ms: nil)
            if let now = sample.metrics, let before = previous.metrics {
                second.eps = (now.received - before.received) / dt
                second.epsSource = "metrics"
                second.failed = (now.rejected - before.rejected) / dt
                second.buffer = now.bufferSize
                second.p95Ms = BucketQuantile.quantile(0.95, from: before.requestBuckets, to: now.requestBuckets).map { $0 * 1_000 }
                second.p99Ms = BucketQuantile.quantile(0.99, from: before.requestBuckets, to: now.requestBuckets).map { $0 * 1_000 }
            }
            // The generator's own per-second account is client side and exact: prefer it.
            if let generatorSeconds, t >= 0.5, let own = generatorSeconds.first(where: { abs(Double($0.second + 1) - t) < 0.5 }) {
                second.eps = Double(own.ok)
                second.epsSource = "generator"
                second.failed = Double(own.failed)
                second.p95Ms = own.p95Ms
                second.p99Ms = own.p99Ms
            }
            out.append(second)
        }
        return out
    }

    /// When a load tool that does not report its own clock (k6) really started the schedule:
    /// the first sample by which 100 events had arrived, minus the time the schedule takes to
    /// make 100 events due. The first sample with any traffic would be up to a sample interval
    /// early, and on a ramp that reads as falling short of the target.
    static func scheduleStart(_ samples: [RawSample], loadStart: Double, schedule: ArrivalSchedule, events: Int = 100) -> Double {
        // The service counts events received; the naive peer has no /metrics: its rows / 10.
        func arrived(_ sample: RawSample) -> Double { sample.metrics?.received ?? Double(sample.rowsWritten) / 10 }
        let base = samples.last(where: { $0.seconds <= loadStart }).map(arrived) ?? 0
        guard let sample = samples.first(where: { $0.seconds > loadStart && arrived($0) - base >= Double(events) }) else {
            return loadStart
        }
        let count = Int(arrived(sample) - base)
        return max(loadStart, sample.seconds - schedule.intendedTime(ofEvent: count))
    }

    /// The events due between two sample times, per second: what the load should have done
    /// over that interval. (The rate at the interval's end would run ahead of any ramp by half
    /// a second's climb, and a stress ramp would "break" at its first samples.)
    static func targetRate(_ schedule: ArrivalSchedule, from start: Double, to end: Double) -> Double {
        guard end > start else { return 0 }
        let from = min(max(start, 0), schedule.duration), to = min(max(end, 0), schedule.duration)
        return (schedule.cumulative(at: to) - schedule.cumulative(at: from)) / (end - start)
    }

    /// The sampled series as the seconds a break is judged on (k6 has no per-second account
    /// of its own): from the first traffic, while the schedule has events due.
    static func judgedSeconds(_ series: [SecondSample]) -> [SecondStats] {
        series.filter { $0.t > 0 && $0.targetEPS > 0 }.map { second in
            SecondStats(
                second: Int(second.t.rounded()), targetEps: Int(second.targetEPS.rounded()),
                ok: Int(second.eps.rounded()), failed: Int((second.failed ?? 0).rounded()), p95Ms: second.p95Ms ?? 0)
        }
    }

    /// Where a stress run broke: LoadGenerator's `BreakDetector` (5 seconds running over a
    /// threshold) over the seconds, and the highest rate achieved before it with every
    /// threshold holding. The generator judges its own seconds the same way while it runs (and
    /// stops there); this finds that point again in its account, and in k6's sampled series.
    static func breakingPoint(_ seconds: [SecondStats], thresholds: BreakThresholds) -> BreakingPoint {
        var detector = BreakDetector(thresholds: thresholds)
        var lastGood = 0.0
        for second in seconds {
            if let report = detector.observe(second), let first = report.thresholds.first {
                return BreakingPoint(
                    second: Double(report.second), targetEPS: Double(report.targetEps), achievedEPS: report.achievedEps,
                    limit: name(first.threshold), measured: first.worst, threshold: first.limit, lastGoodEPS: lastGood)
            }
            if second.targetEps > 0, thresholds.broken(by: second).isEmpty {
                lastGood = max(lastGood, Double(second.ok))
            }
        }
        let last = seconds.last(where: { $0.targetEps > 0 })
        return BreakingPoint(
            second: Double(last?.second ?? 0), targetEPS: Double(last?.targetEps ?? 0), achievedEPS: Double(last?.ok ?? 0),
            limit: "none", measured: 0, threshold: 0, lastGoodEPS: lastGood)
    }

    /// Where k6 aborted a stress run on one of its own thresholds (bench/k6/events.js: p95 and
    /// the error rate over every call so far, client side) before 5 seconds of the sampled series
    /// broke one, and the threshold k6 names. Nil unless k6 stopped early on a threshold.
    /// The rates are those of the last full seconds before the traffic stopped (up to
    /// `fullSeconds` of them): the last sampled second with traffic is cut short by the abort,
    /// and its rate reads low.
    static func k6Abort(
        _ load: LoadSummary, series: [SecondSample], thresholds: BreakThresholds, lastGood: Double, fullSeconds: Int = 3
    ) -> BreakingPoint? {
        let withTraffic = series.filter { $0.t > 0 && $0.targetEPS > 0 && $0.eps > 0 }
        guard load.tool == "k6", load.stoppedEarly, let crossed = load.thresholdsCrossed, let first = crossed.first,
            let last = withTraffic.last
        else { return nil }
        let full = withTraffic.count > 1 ? Array(withTraffic.dropLast().suffix(fullSeconds)) : [last]
        let latency = first.hasPrefix("grpc_req_duration")
        let errorRate = Double(load.failed) / Double(max(load.ok + load.failed, 1))
        return BreakingPoint(
            second: full.last!.t, targetEPS: full.map(\.targetEPS).reduce(0, +) / Double(full.count),
            achievedEPS: full.map(\.eps).reduce(0, +) / Double(full.count),
            limit: latency ? "p95 latency (k6, client side, over the run)" : "error rate (k6, over the run)",
            measured: latency ? load.latencyMs.p95 : errorRate, threshold: latency ? thresholds.p95Ms : thresholds.errorRate,
            lastGoodEPS: lastGood)
    }

    /// The names the results use for a broken threshold.
    static func name(_ threshold: BrokenThreshold.Threshold) -> String {
        switch threshold {
        case .errorRate: "error rate"
        case .p95Latency: "p95 latency"
        case .achievedRate: "achieved rate"
        }
    }

    static func summary(_ samples: [RawSample], series: [SecondSample], load: LoadSummary, loadStart: Double, loadEnd: Double) -> RunSummary {
        let during = samples.filter { $0.seconds >= loadStart - 1 && $0.seconds <= loadEnd + 1 }
        let first = during.first ?? samples.first!, last = during.last ?? samples.last!
        let loaded = series.filter { $0.t > 0 && $0.t <= loadEnd - loadStart + 0.5 }
        let cpu = last.systemCPU - first.systemCPU
        let span = max(last.seconds - first.seconds, 0.001)
        var summary = RunSummary(
            peakTargetEPS: series.map(\.targetEPS).max() ?? 0, achievedEPS: load.achievedEPS,
            systemCPUSeconds: cpu, systemCPUPercentMean: 100 * cpu / span,
            eventsPerCoreSecond: cpu > 0 ? Double(load.ok) / cpu : 0,
            postgresCPUSeconds: last.postgresCPU - first.postgresCPU,
            eventsPerCoreSecondWithPostgres: cpu + last.postgresCPU - first.postgresCPU > 0
                ? Double(load.ok) / (cpu + last.postgresCPU - first.postgresCPU) : 0,
            rssStartMB: Double(first.residentBytes) / 1_048_576,
            rssPeakMB: Double(samples.map(\.residentBytes).max() ?? 0) / 1_048_576,
            rssEndMB: Double(last.residentBytes) / 1_048_576,
            dbWritesPerSecondMean: Double((samples.last?.rowsWritten ?? 0) - (samples.first?.rowsWritten ?? 0)) / max(loadEnd - loadStart, 0.001),
            dbWritesPerSecondPeak: loaded.map(\.dbWrites).max() ?? 0,
            bufferPeak: samples.compactMap { $0.metrics?.bufferSize }.max() ?? 0)
        if let start = first.metrics, let end = samples.last?.metrics {
            summary.serverP50Ms = BucketQuantile.quantile(0.5, from: start.requestBuckets, to: end.requestBuckets).map { $0 * 1_000 }
            summary.serverP99Ms = BucketQuantile.quantile(0.99, from: start.requestBuckets, to: end.requestBuckets).map { $0 * 1_000 }
            summary.commitP50Ms = BucketQuantile.quantile(0.5, from: start.commitBuckets, to: end.commitBuckets).map { $0 * 1_000 }
            summary.commitP99Ms = BucketQuantile.quantile(0.99, from: start.commitBuckets, to: end.commitBuckets).map { $0 * 1_000 }
            summary.flushes = end.flushes - start.flushes
            summary.batches = end.batches - start.batches
            let flushCount = end.flushCount - start.flushCount
            summary.meanFlushMs = flushCount > 0 ? 1_000 * (end.flushSecondsSum - start.flushSecondsSum) / flushCount : nil
            summary.poolWaits = end.poolWaits - start.poolWaits
        }
        return summary
    }

    /// Compares the table with what the load tool says was answered OK (the mix's sums: every
    /// login moves 10 login goals by one; each (user, code)'s last value lands on its 10 goals).
    static func verify(_ load: LoadSummary, database: BenchPostgres) throws -> Verification {
        let expectedLogins = 10 * load.loginsOK
        let expectedStats = 10 * load.statValueSumOK
        var found = (logins: -1, stats: -1, rows: -1)
        // pg_stat and the last flush may trail the answers by a moment: look a few times.
        for attempt in 0..<20 {
            let connection = try PostgresConnection(settings: database.settings)
            let result = try connection.execute(
                """
                SELECT coalesce(sum(progress) FILTER (WHERE goal_id LIKE '%-login'), 0)::bigint,
                       coalesce(sum(progress) FILTER (WHERE goal_id NOT LIKE '%-login'), 0)::bigint, count(*)
                FROM user_goal_progress
                """)
            connection.close()
            found = (Int(result[0, 0] ?? "") ?? -1, Int(result[0, 1] ?? "") ?? -1, Int(result[0, 2] ?? "") ?? -1)
            if found.logins == expectedLogins && found.stats == expectedStats { break }
            if attempt < 19 { Thread.sleep(forTimeInterval: 0.5) }
        }
        // A call that failed, or was in flight when k6 aborted (the generator waits for its
        // calls' answers before it returns), may or may not have been applied.
        let abandoned = load.stoppedEarly && load.tool == "k6"
        let checked = load.failed == 0 && !abandoned
        let exact = found.logins == expectedLogins && found.stats == expectedStats
        let note: String
        if checked {
            note = exact ? "every event answered OK is in the table, once" : "THE TABLE DIFFERS from the events answered OK"
        } else {
            note = abandoned
                ? "the load stopped early with calls in flight (a stress break): the table is reported, not checked"
                : "\(load.failed) calls failed (a failed call may or may not have been applied): the table is reported, not checked"
        }
        return Verification(
            checked: checked, exact: exact, loginProgressExpected: expectedLogins, loginProgressFound: found.logins,
            statProgressExpected: expectedStats, statProgressFound: found.stats, rows: found.rows, note: note)
    }
}
