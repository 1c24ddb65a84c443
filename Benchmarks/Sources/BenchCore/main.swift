import BenchSupport
import Buffer
import Catalog
import Foundation
import Logging
import ProgressStore
import Storage

// bench-core: the core's throughput, with the yardstick measured in the same run.
//
//   1. Buffer merges per second on 1 and 2 threads (pure CPU, no I/O), and the shard hash per id
//      against its former self.
//   2. The raw PostgreSQL ceiling the way ../shared/limits.md measures it: pre-encoded binary
//      batches of the T2 increment UPSERT, prepared, on 1 and 2 connections.
//   3. Our flush path (ProgressWriter through the ConnectionPool, entries encoded inside the timed
//      window) at batch sizes 1,000 / 5,000 / 20,000 with 1 and 2 workers, as rows per second and
//      as a ratio of the ceiling with the same connection count.
//
// It starts its own PostgreSQL (scripts/postgres.sh, postgresql-tuning.conf, synchronous_commit
// on) in a temporary directory, fills 1,000,000 rows (20,000 users x 50 goals) and measures the
// "update" scenario of limits.md. Results go to stdout and to bench/results/core-<time>.json.

let options = BenchOptions.parse(CommandLine.arguments.dropFirst())
var report = BenchReport()
report.startedAt = ISO8601DateFormatter().string(from: Date())
report.secondsPerMeasurement = options.seconds

print("bench-core: \(options.seconds)s per measurement")

// 1. Buffer.
let bufferBench = BufferBench(users: 10_000, goalsPerEvent: 20, goalCount: 500)
for threads in [1, 2] {
    let rate = bufferBench.mergesPerSecond(threads: threads, seconds: options.seconds)
    report.buffer.append(.init(threads: threads, mergesPerSecond: rate))
    print(String(format: "buffer  threads=%d  %.2f M merges/s", threads, rate / 1e6))
}

for result in ShardHashBench.run() {
    report.shardHash.append(result)
    print(String(format: "shard hash  %@ ids: %.1f ns/id, %.1f ns/id stepping through utf8 (%.2fx)",
                 result.ids, result.contiguousNanosecondsPerID, result.utf8ViewNanosecondsPerID, result.ratio))
}

if options.bufferOnly {
    let path = try report.write(directory: options.outputDirectory)
    print("results written to \(path)")
    exit(0)
}

// 2 + 3. PostgreSQL.
let server = try BenchPostgres.start(name: "bench-core")
defer { server.stop() }
let logger = Logger(label: "bench-core")
let catalog = BenchCatalog.make()
try server.prepareTable(catalog: catalog, users: 20_000, logger: logger)
report.table = ["rows": 1_000_000, "users": 20_000, "goals_per_user": 50]

let ceiling = CeilingBench(settings: server.settings, users: 20_000, catalog: catalog)
let ours = FlushBench(settings: server.settings, users: 20_000, catalog: catalog, logger: logger)
for batch in [1_000, 5_000, 20_000] {
    for connections in [1, 2] {
        let raw = try ceiling.rowsPerSecond(batch: batch, connections: connections, seconds: options.seconds)
        let flushed = try ours.rowsPerSecond(batch: batch, workers: connections, seconds: options.seconds)
        let ratio = flushed.rowsPerSecond / raw.rowsPerSecond
        report.flush.append(
            .init(
                batch: batch, connections: connections, ceilingRowsPerSecond: raw.rowsPerSecond,
                ceilingP99Milliseconds: raw.p99Milliseconds, flushRowsPerSecond: flushed.rowsPerSecond,
                flushP99Milliseconds: flushed.p99Milliseconds, ratio: ratio))
        print(
            String(
                format: "flush   batch=%5d  c=%d  ceiling %7.0f rows/s (p99 %5.1f ms)  ours %7.0f rows/s (p99 %5.1f ms)  ratio %.2f",
                batch, connections, raw.rowsPerSecond, raw.p99Milliseconds, flushed.rowsPerSecond,
                flushed.p99Milliseconds, ratio))
    }
}

let path = try report.write(directory: options.outputDirectory)
print("results written to \(path)")
