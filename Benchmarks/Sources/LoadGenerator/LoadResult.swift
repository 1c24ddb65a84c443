/// What a run measured. Property names encode as the results files' snake_case keys
/// (`JSONEncoder.KeyEncodingStrategy.convertToSnakeCase`: `achievedEps` → `achieved_eps`,
/// `p999Ms` → `p999_ms`, `statValueSumOk` → `stat_value_sum_ok`), and decode back with
/// `convertFromSnakeCase` (hence `runId`, not `runID`).
public struct LoadResult: Codable, Sendable, Equatable {
    public var runId: String
    /// Events the schedule made due in the time it ran (all of it, unless the run broke).
    public var intended: Int
    /// Calls started.
    public var sent: Int
    /// Events due that were never sent: still waiting for a slot when the schedule ended
    /// (`intended - sent`; k6 calls them dropped iterations).
    public var unsent: Int
    public var ok: Int
    public var failed: Int
    /// Failed calls per gRPC status (canonical names: `DEADLINE_EXCEEDED`, `UNAVAILABLE`, ...).
    public var failedByCode: [String: Int]
    /// Events that found `maxInFlight` calls out when due and waited, their clocks running.
    public var slotWaits: Int
    /// The most calls that were out at once.
    public var peakInFlight: Int
    /// Seconds of schedule run (the profile's length, or up to the break).
    public var durationSeconds: Double
    /// Seconds from the start until the last call was answered or timed out.
    public var wallSeconds: Double
    /// `intended / durationSeconds`.
    public var intendedEps: Double
    /// OK answers per second of schedule.
    public var achievedEps: Double
    /// From each call's intended start to its answer, every answer (OK or not).
    public var latency: LatencySummary
    public var seconds: [SecondStats]
    /// The proof of writes (`WriteLedger`).
    public var loginsOk: Int
    public var statsOk: Int
    public var statValueSumOk: Int
    /// Set when break detection stopped the run.
    public var brokeAt: BreakReport?

    public init(
        runId: String, intended: Int, sent: Int, unsent: Int, ok: Int, failed: Int, failedByCode: [String: Int], slotWaits: Int,
        peakInFlight: Int, durationSeconds: Double, wallSeconds: Double, intendedEps: Double, achievedEps: Double,
        latency: LatencySummary, seconds: [SecondStats], loginsOk: Int, statsOk: Int, statValueSumOk: Int,
        brokeAt: BreakReport?
    ) {
        self.runId = runId
        self.intended = intended
        self.sent = sent
        self.unsent = unsent
        self.ok = ok
        self.failed = failed
        self.failedByCode = failedByCode
        self.slotWaits = slotWaits
        self.peakInFlight = peakInFlight
        self.durationSeconds = durationSeconds
        self.wallSeconds = wallSeconds
        self.intendedEps = intendedEps
        self.achievedEps = achievedEps
        self.latency = latency
        self.seconds = seconds
        self.loginsOk = loginsOk
        self.statsOk = statsOk
        self.statValueSumOk = statValueSumOk
        self.brokeAt = brokeAt
    }
}
