import Buffer
import Prometheus

/// The service's Prometheus registry and the instruments recorded as things happen (durations
/// and latencies, which only exist at that moment). Everything that is a count or a level the
/// service already keeps (buffer size, pool, event and flush counters) is copied in at scrape
/// time by `MetricsCollector`, so the event path pays nothing extra for it.
///
/// Label sets are closed: event source and kind, fixed reasons. No user id, goal id or event id
/// ever becomes a label. The gRPC server keeps its own series (`GRPCServerMetrics`, lock-free,
/// `grpc_server_*` and `grpc_request_duration_seconds`), appended to the same exposition.
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    /// `event_commit_latency_seconds`: for each row a flush commits, the age of the oldest event
    /// merged into it (the worst latency among that row's events).
    let commitLatency: DurationHistogram
    /// `flush_duration_seconds`: one flush cycle of one worker, drain to last commit.
    let flushDuration: DurationHistogram
    /// `flush_rows`: rows one flush cycle wrote.
    let flushRows: ValueHistogram

    static let commitBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]
    static let flushBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10),
    ]
    static let rowBuckets: [Double] = [1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000]

    init() {
        commitLatency = registry.makeDurationHistogram(
            descriptor: .named(
                "event_commit_latency_seconds",
                help: "For each row committed, the time since the oldest event merged into it arrived"),
            buckets: Self.commitBuckets)
        flushDuration = registry.makeDurationHistogram(
            descriptor: .named(
                "flush_duration_seconds", help: "One flush cycle of one worker: drain its shards, write and commit every batch"),
            buckets: Self.flushBuckets)
        flushRows = registry.makeValueHistogram(
            descriptor: .named("flush_rows", help: "Rows written by one flush cycle"), buckets: Self.rowBuckets)
    }

    /// Records the commit of `entries` at `now` (MonotonicTime): one latency observation per
    /// row. About 0.1 µs a row against the tens of µs PostgreSQL spends on it.
    func recordCommit(of entries: ArraySlice<PendingEntry>, at now: UInt64) {
        for entry in entries {
            let since = entry.progress.oldestEventAt
            if since != 0 && since <= now {
                commitLatency.recordNanoseconds(Int64(now - since))
            }
        }
    }
}

extension MetricNameDescriptor {
    /// A metric by its full name, unit suffix included (`flush_duration_seconds`), with help text.
    static func named(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
