import BenchSupport
import Foundation
import LoadGenerator

/// Everything one `bench-load` invocation measured, written to
/// `bench/results/<profile or sweep>-<time>.json` and read by scripts/bench-report.py.
struct ProfileResults: Encodable {
    /// `profile` (one profile, the service and the naive peer) or `sweep` (one setting varied).
    var kind: String
    var profile: String
    /// The varied setting of a sweep (`flush-interval`, `pool`, `batch`), else nil.
    var sweep: String?
    var scale: Double
    var tool: String
    var startedAt: String
    var commit: String
    var machine: [String: Double]
    var thresholds: BreakThresholds
    /// The raw PostgreSQL ceiling (limits.md's T2, 5,000-row batches, 2 connections) before and
    /// after the runs, in the same PostgreSQL.
    var ceiling: [CeilingMeasurement] = []
    var runs: [SystemRun] = []
    /// Settings given to PostgreSQL on top of postgresql-tuning.conf (BENCH_PG_OPTS), if any.
    var postgresOptions: String?
    /// PostgreSQL's own statistics after the last run.
    var postgres: PostgresStatistics?

    struct PostgresStatistics: Encodable {
        var cacheHitRatio: Double
        var indexes: [IndexUsage]
        var statements: [StatementStatistics]
    }

    struct IndexUsage: Encodable {
        var name: String
        var scans: Int
        var tuplesRead: Int
        var tuplesFetched: Int
        var sizeBytes: Int
    }

    struct StatementStatistics: Encodable {
        var query: String
        var calls: Int
        var rows: Int
        var meanMs: Double
        var totalMs: Double
    }

    struct CeilingMeasurement: Encodable {
        var when: String
        var rowsPerSecond: Double
        var p99Ms: Double
    }

    func write(directory: String) throws -> String {
        try BenchResults.write(self, name: sweep.map { "sweep-\($0)" } ?? profile, startedAt: startedAt, directory: directory)
    }
}

/// One system (our service, or the naive peer) under one load.
struct SystemRun: Encodable {
    var system: String
    /// What distinguishes this run within its file (`flush 0.5s`, `service`, ...).
    var label: String
    var settings: [String: String]
    var load: LoadSummary
    var verification: Verification
    var summary: RunSummary
    var series: [SecondSample]
    var breakingPoint: BreakingPoint?
    /// The hottest symbols of the system's own process during the load (`perf`), when asked.
    var hotSymbols: [String]?
    /// The system's exit status after SIGTERM (0: it drained and stopped cleanly).
    var exitStatus: Int32
    /// From process start to serving (the service: /readyz 200, its pool warm).
    var readySeconds: Double
}

/// The load tool's own account of the run (client side).
struct LoadSummary: Encodable {
    var tool: String
    var seconds: Double
    var intended: Int
    var ok: Int
    var failed: Int
    var failedByCode: [String: Int]
    /// Events the tool could not start on time (k6's dropped iterations; the generator's waits for
    /// a free slot among its 500 in flight).
    var late: Int
    var achievedEPS: Double
    var latencyMs: Percentiles
    var loginsOK: Int
    var statsOK: Int
    var statValueSumOK: Int
    var toolCPUSeconds: Double
    /// The tool stopped before the end of the profile (a stress break).
    var stoppedEarly: Bool
    /// k6's thresholds that failed (`grpc_req_duration: p(95)<100`, over every call so far: its
    /// abort on a stress ramp); nil for the generator.
    var thresholdsCrossed: [String]? = nil
}

struct Percentiles: Codable, Sendable {
    var p50: Double
    var p90: Double
    var p95: Double
    var p99: Double
    var p999: Double
    var max: Double
}

/// Did the events land? Only decidable when every call was answered OK (a failed call may or
/// may not have been applied).
struct Verification: Encodable {
    var checked: Bool
    var exact: Bool
    var loginProgressExpected: Int
    var loginProgressFound: Int
    var statProgressExpected: Int
    var statProgressFound: Int
    var rows: Int
    var note: String
}

struct RunSummary: Encodable {
    var peakTargetEPS: Double
    var achievedEPS: Double
    var systemCPUSeconds: Double
    var systemCPUPercentMean: Double
    var eventsPerCoreSecond: Double
    var postgresCPUSeconds: Double
    /// Events answered OK per second of CPU of the system and PostgreSQL together: what the
    /// whole write path costs (the naive peer's cost is mostly PostgreSQL's).
    var eventsPerCoreSecondWithPostgres: Double
    var rssStartMB: Double
    var rssPeakMB: Double
    var rssEndMB: Double
    var dbWritesPerSecondMean: Double
    var dbWritesPerSecondPeak: Double
    var bufferPeak: Double
    /// Server-side answer time (grpc_request_duration_seconds), interpolated from its buckets.
    var serverP50Ms: Double?
    var serverP99Ms: Double?
    /// Event arrival to commit (event_commit_latency_seconds): the end-to-end latency of a row.
    var commitP50Ms: Double?
    var commitP99Ms: Double?
    var flushes: Double?
    var batches: Double?
    var meanFlushMs: Double?
    var poolWaits: Double?
}

/// One second of a run, from the samples (rates are per second over the preceding sample).
struct SecondSample: Encodable {
    var t: Double
    var targetEPS: Double
    var eps: Double
    /// Where `eps` comes from: `metrics` (the service's events received), `generator` (answered
    /// OK, client side) or `rows` (PostgreSQL rows written / 10 rows per event, naive peer under k6).
    var epsSource: String
    var failed: Double?
    var dbWrites: Double
    var cpuPercent: Double
    var postgresCPUPercent: Double
    var loadCPUPercent: Double
    var rssMB: Double
    var buffer: Double?
    var p95Ms: Double?
    var p99Ms: Double?
}

struct BreakingPoint: Encodable {
    var second: Double
    var targetEPS: Double
    var achievedEPS: Double
    /// `error rate`, `p95 latency`, `achieved rate`, or `none` (the profile ended unbroken).
    var limit: String
    var measured: Double
    var threshold: Double
    /// The highest rate achieved with every threshold holding, before the break.
    var lastGoodEPS: Double
}
