import BenchSupport
import Foundation
import Storage
import Synchronization

/// What the runner reads once a second while a load runs: the system's CPU and memory, the
/// PostgreSQL server's CPU and the rows it wrote, and (for our service) its `/metrics` page.
struct RawSample: Sendable {
    var seconds: Double
    var systemCPU: Double
    var postgresCPU: Double
    var loadCPU: Double
    var residentBytes: Int
    var rowsWritten: Int
    /// Cumulative counters and gauges from `/metrics` (nil for the naive peer, which has none).
    var metrics: MetricsReading?
}

/// The parts of `/metrics` the reports use.
struct MetricsReading: Sendable {
    var received: Double
    var processed: Double
    var rejected: Double
    var bufferSize: Double
    var flushes: Double
    var batches: Double
    var rowsWritten: Double
    var poolActive: Double
    var poolWaits: Double
    var requestBuckets: [Double: Double]
    var commitBuckets: [Double: Double]
    var flushSecondsSum: Double
    var flushCount: Double

    init(_ page: MetricsPage) {
        received = page.sum("events_received_total", matching: [#"source="grpc""#])
        processed = page.sum("events_processed_total", matching: [#"source="grpc""#])
        rejected = page.sum("events_rejected_total", matching: [#"source="grpc""#])
        bufferSize = page.sum("event_buffer_size")
        flushes = page.sum("flushes_total")
        batches = page.sum("flush_batches_total")
        rowsWritten = page.sum("rows_written_total")
        poolActive = page.sum("db_connections_active")
        poolWaits = page.sum("db_pool_waits_total")
        requestBuckets = page.buckets("grpc_request_duration_seconds")
        commitBuckets = page.buckets("event_commit_latency_seconds")
        flushSecondsSum = page.sum("flush_duration_seconds_sum")
        flushCount = page.sum("flush_duration_seconds_count")
    }

    static func read(port: Int) -> MetricsReading? {
        guard let page = LoopbackHTTP.get(port: port, path: "/metrics"), page.status == 200 else { return nil }
        return MetricsReading(MetricsPage(text: page.body))
    }
}

/// Samples on a thread of its own (libpq and /proc reads block) every second until stopped.
final class Sampler: Sendable {
    /// What the sampling thread shares with `stop()`.
    private final class Shared: Sendable {
        let samples = Mutex<[RawSample]>([])
        let running = Atomic<Bool>(true)
        let done = DispatchSemaphore(value: 0)
        /// Signalled once per sample taken (or when the thread ends), for `waitForSample`.
        let taken = DispatchSemaphore(value: 0)
    }

    private let shared = Shared()
    private let origin: ContinuousClock.Instant

    /// Sample times are seconds since `origin`; `loadPID` names the load tool's process once
    /// there is one (nil: the load runs in this process).
    init(
        origin: ContinuousClock.Instant, systemPID: Int32, postmasterPID: Int32, loadPID: @escaping @Sendable () -> Int32?,
        metricsPort: Int?, database: ConnectionSettings
    ) {
        self.origin = origin
        let thread = Thread { [shared] in
            defer {
                shared.running.store(false, ordering: .relaxed)
                shared.done.signal()
                shared.taken.signal()
            }
            let started = origin
            guard let connection = try? PostgresConnection(settings: database) else { return }
            defer { connection.close() }
            var next = ContinuousClock.now
            while shared.running.load(ordering: .relaxed) {
                // The sample's time is when its reads began: whatever happened before it is in them.
                let at = BenchSupport.seconds(ContinuousClock.now - started)
                _ = try? connection.execute("SELECT pg_stat_clear_snapshot()")
                let rows = (try? connection.execute(
                    "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'user_goal_progress'"))
                    .flatMap { Int($0[0, 0] ?? "") } ?? 0
                let sample = RawSample(
                    seconds: at,
                    systemCPU: ProcessCPU.seconds(of: systemPID),
                    postgresCPU: ProcessCPU.seconds(ofTree: postmasterPID),
                    loadCPU: loadPID().map { ProcessCPU.seconds(of: $0) } ?? ProcessCPU.seconds(of: getpid()),
                    residentBytes: ProcessMemory.residentBytes(of: systemPID),
                    rowsWritten: rows,
                    metrics: metricsPort.flatMap { MetricsReading.read(port: $0) })
                shared.samples.withLock { $0.append(sample) }
                shared.taken.signal()
                next = next + .seconds(1)
                let pause = next - ContinuousClock.now
                if pause > .zero { Thread.sleep(forTimeInterval: BenchSupport.seconds(pause)) }
            }
        }
        thread.name = "bench-sampler"
        thread.start()
    }

    /// Returns once a sample taken after this call has been recorded (about a second at most),
    /// so what happened before the call is in the samples: the state before a load starts,
    /// the last rows written after it. Returns at once if sampling has ended.
    func waitForSample() {
        let since = BenchSupport.seconds(ContinuousClock.now - origin)
        while shared.running.load(ordering: .relaxed) {
            if shared.samples.withLock({ ($0.last?.seconds ?? -1) > since }) { return }
            _ = shared.taken.wait(timeout: .now() + .seconds(2))
        }
    }

    /// Stops sampling (after one last sample) and returns every sample taken.
    func stop() -> [RawSample] {
        shared.running.store(false, ordering: .relaxed)
        shared.done.wait()
        return shared.samples.withLock { $0 }
    }
}
