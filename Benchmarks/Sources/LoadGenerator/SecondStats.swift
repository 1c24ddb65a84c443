/// One second of a run: what was due, what went out, what came back, and how long the answers
/// took (from a histogram of that second's answers alone, reset each second).
///
/// Answers count in the second they arrive; `targetEps` is the number of events the schedule
/// made due in that second (the target rate over it, in whole events, so a run that keeps up
/// answers `targetEps` ± the few events straddling the boundary).
public struct SecondStats: Codable, Sendable, Equatable {
    public var second: Int
    public var targetEps: Int
    public var sent: Int
    public var ok: Int
    public var failed: Int
    /// Events that found `maxInFlight` calls out when due and waited for a slot.
    public var slotWaits: Int
    public var p50Ms: Double
    public var p95Ms: Double
    public var p99Ms: Double
    public var maxMs: Double

    public init(
        second: Int, targetEps: Int, sent: Int = 0, ok: Int = 0, failed: Int = 0, slotWaits: Int = 0,
        p50Ms: Double = 0, p95Ms: Double = 0, p99Ms: Double = 0, maxMs: Double = 0
    ) {
        self.second = second
        self.targetEps = targetEps
        self.sent = sent
        self.ok = ok
        self.failed = failed
        self.slotWaits = slotWaits
        self.p50Ms = p50Ms
        self.p95Ms = p95Ms
        self.p99Ms = p99Ms
        self.maxMs = maxMs
    }

    /// Failed answers over all answers (0 with no answers).
    public var errorRate: Double { ok + failed == 0 ? 0 : Double(failed) / Double(ok + failed) }

    /// OK answers over the target (1 when nothing was due).
    public var achievedRatio: Double { targetEps == 0 ? 1 : Double(ok) / Double(targetEps) }
}

/// The second being filled: counters and its own latency histogram, turned into a
/// `SecondStats` when the clock moves on.
struct SecondAccumulator: Sendable {
    var second = 0
    var sent = 0
    var ok = 0
    var failed = 0
    var slotWaits = 0
    var latency = LatencyRecorder()

    /// The finished second, and the accumulator reset for `next`.
    mutating func close(target: Int, next: Int) -> SecondStats {
        let stats = SecondStats(
            second: second, targetEps: target, sent: sent, ok: ok, failed: failed, slotWaits: slotWaits,
            p50Ms: latency.milliseconds(atPercentile: 50), p95Ms: latency.milliseconds(atPercentile: 95),
            p99Ms: latency.milliseconds(atPercentile: 99), maxMs: latency.maxMilliseconds)
        second = next
        sent = 0
        ok = 0
        failed = 0
        slotWaits = 0
        if latency.count > 0 { latency.reset() }
        return stats
    }
}
