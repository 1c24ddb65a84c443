import BenchSupport
import Foundation
import Kafka
import Logging
import Storage

// bench-drain: how fast the service drains a Kafka backlog into PostgreSQL, next to the raw
// PostgreSQL ceiling measured in the same run (../shared/limits.md's way).
//
//   1. A private PostgreSQL (postgresql-tuning.conf, synchronous_commit on) with the benchmark
//      table pre-filled: 1,000,000 rows, 20,000 users x 50 goals.
//   2. The ceiling: pre-encoded 5,000-row batches of the T2 UPSERT on 2 connections.
//   3. For each scenario, N events are produced to a fresh topic of an in-process mock Kafka
//      cluster before the service starts; then the release event-handler (its own process, 2 flush
//      workers, defaults otherwise) drains it. Timed from its partition assignment to the moment
//      its checkpoints account for every record in every shard: consume to commit.
//        merging   10,000 users x 5 goals: 50,000 keys, ~20 events per key per run
//        distinct  20,000 users x 50 goals: every event a key of its own (no merging)
//      Each scenario ends by checking the table: every event applied once, or no number.
//   4. The ceiling again, so drift during the run shows.
//
// Results go to stdout and bench/results/drain-<time>.json.

struct Options {
    var events = 1_000_000
    var partitions = 64
    var json = false
    var seconds = 3.0
    var binary = ".build/release/event-handler"
    var outputDirectory = "bench/results"
    var scenarios: [DrainWorkload.Shape] = [.merging, .distinct]
    /// Deduplicate through a Redis of the benchmark's own (REDIS_URL), not in-process only.
    var redis = false

    static func parse(_ arguments: ArraySlice<String>) -> Options {
        var options = Options()
        var rest = arguments
        while let argument = rest.popFirst() {
            switch argument {
            case "--events": options.events = number(rest.popFirst(), in: 1...1_000_000)
            case "--partitions": options.partitions = number(rest.popFirst(), in: 1...256)
            case "--json": options.json = true
            case "--redis": options.redis = true
            case "--seconds":
                guard let value = rest.popFirst().flatMap(Double.init), value > 0 else { usage() }
                options.seconds = value
            case "--binary":
                guard let value = rest.popFirst() else { usage() }
                options.binary = value
            case "--out":
                guard let value = rest.popFirst() else { usage() }
                options.outputDirectory = value
            case "--only":
                guard let value = rest.popFirst().flatMap(DrainWorkload.Shape.init) else { usage() }
                options.scenarios = [value]
            default: usage()
            }
        }
        return options
    }

    static func number(_ text: String?, in range: ClosedRange<Int>) -> Int {
        guard let value = text.flatMap({ Int($0) }), range.contains(value) else { usage() }
        return value
    }

    static func usage() -> Never {
        print(
            """
            usage: bench-drain [--events N] [--partitions P] [--json] [--seconds S] [--binary PATH] [--out DIR] [--only merging|distinct] [--redis]
              --events N      events per scenario (default 1,000,000, at most 1,000,000)
              --partitions P  partitions of each scenario's topic (default 64: the mock broker keeps
                              about 5 MB per partition, so the whole backlog must fit)
              --json          proto3 JSON values instead of binary protobuf
              --redis         deduplicate through a redis-server of its own (REDIS_URL), as replicas do
              --seconds S     length of each ceiling measurement (default 3)
            """)
        exit(2)
    }
}

struct DrainReport: Encodable {
    struct Ceiling: Encodable {
        var when: String
        var rowsPerSecond: Double
        var p99Milliseconds: Double
    }

    struct Scenario: Encodable {
        var name: String
        var events: Int
        var keys: Int
        var partitions: Int
        var encoding: String
        /// Where event ids were deduplicated: `memory` (no REDIS_URL) or `redis`.
        var dedup: String
        var produceSeconds: Double
        var drainSeconds: Double
        var eventsPerSecond: Double
        var rowsWritten: Int
        var rowsPerSecond: Double
        var serviceCPUSeconds: Double
        var postgresCPUSeconds: Double
        /// This process: the mock broker serving the fetches (and the completion watcher).
        var brokerCPUSeconds: Double
        /// redis-server, with `--redis` (its forks for append-only-file rewrites not included).
        var redisCPUSeconds: Double?
        var eventsPerServiceCoreSecond: Double
        /// Events per second over the mean of the two ceiling measurements (rows per second).
        var ratioToCeiling: Double
    }

    var startedAt = ""
    var machine = ["cores": ProcessInfo.processInfo.activeProcessorCount]
    var ceiling: [Ceiling] = []
    var scenarios: [Scenario] = []

    func write(directory: String) throws -> String {
        try BenchResults.write(self, name: "drain", startedAt: startedAt, directory: directory)
    }
}

let options = Options.parse(CommandLine.arguments.dropFirst())
guard FileManager.default.isExecutableFile(atPath: options.binary) else {
    print("bench-drain: \(options.binary) is missing; build it first (make bench-drain does)")
    exit(2)
}
/// The whole run; any failure ends it with a message and status 1 (no number is printed for a
/// run that did not complete or whose table is wrong).
func run(_ options: Options) throws {
    var report = DrainReport()
    report.startedAt = ISO8601DateFormatter().string(from: Date())
    let logger = Logger(label: "bench-drain")

    let server = try BenchPostgres.start(name: "bench-drain")
    defer { server.stop() }
    try server.prepareTable(catalog: BenchCatalog.make(), users: 20_000, logger: logger)
    var table = [Int32](repeating: 0, count: 1_000_000)
    let ceilingBench = CeilingBench(settings: server.settings, users: 20_000, catalog: BenchCatalog.make())

    func measureCeiling(_ when: String) throws {
        let measured = try ceilingBench.rowsPerSecond(batch: 5_000, connections: 2, seconds: options.seconds)
        report.ceiling.append(.init(when: when, rowsPerSecond: measured.rowsPerSecond, p99Milliseconds: measured.p99Milliseconds))
        print(String(format: "ceiling (%@)  %7.0f rows/s  p99 %.1f ms  [T2, batch 5,000, 2 connections]", when, measured.rowsPerSecond, measured.p99Milliseconds))
    }

    // A Redis of the benchmark's own, as `make run` starts one.
    let redisDirectory = server.directory + "-redis"
    let redisPort = try freeLoopbackPort()
    if options.redis {
        try runScript("scripts/redis.sh", ["start", redisDirectory, String(redisPort)])
    }
    defer {
        if options.redis { try? runScript("scripts/redis.sh", ["stop", redisDirectory, String(redisPort)]) }
    }

    try measureCeiling("before")
    // The ceiling's increments moved progress; the scenarios check the table from a known state.
    do {
        let connection = try PostgresConnection(settings: server.settings)
        _ = try connection.execute("UPDATE user_goal_progress SET progress = 0, status = 'in_progress', completed_at = NULL")
        _ = try connection.execute("VACUUM ANALYZE user_goal_progress")
        connection.close()
    }

    let catalogPath = server.directory + "-challenges.json"
    try DrainWorkload.catalogJSON.write(toFile: catalogPath, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: catalogPath) }

    for (index, shape) in options.scenarios.enumerated() {
        let workload = DrainWorkload(shape: shape, count: options.events, seed: 2_026 + UInt64(index))
        let topic = "bench.social.statistic.v1.statItemUpdated"
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic(topic, partitions: options.partitions)

        // The backlog, produced before the service starts.
        let produceStarted = ContinuousClock.now
        let records = try workload.records(topic: topic, json: options.json)
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        // Large batches: the mock broker answers a fetch with one stored batch per partition (a
        // real broker fills max.partition.fetch.bytes), so small batches would make the broker,
        // not the service, the limit.
        producerConfiguration.properties = [
            "linger.ms": "1000", "batch.num.messages": "10000", "batch.size": "1000000",
            "queue.buffering.max.messages": "2000000", "queue.buffering.max.kbytes": "2000000",
        ]
        let producer = try KafkaProducer(configuration: producerConfiguration)
        for record in records { try producer.send(record) }
        guard producer.flush(timeout: .seconds(120)), producer.failed == 0 else {
            throw BenchError("the backlog did not reach the mock broker: \(producer.failed) failed, \(producer.outstanding) outstanding")
        }
        producer.close(timeout: .seconds(1))
        let produceSeconds = seconds(ContinuousClock.now - produceStarted)
        let bytes = records.reduce(0) { $0 + $1.value.count }
        let keys = workload.keyCount
        print(String(format: "%@: %d events (%d keys, %.0f bytes/value) produced to %d partitions in %.1f s",
                     shape.rawValue, records.count, keys,
                     Double(bytes) / Double(records.count), options.partitions, produceSeconds))

        let group = "bench-drain-\(shape.rawValue)"
        let flushWorkers = 2
        var environment = [
            "ENV_FILE": server.directory + "-no.env", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "AB_NAMESPACE": "bench", "CONFIG_PATH": catalogPath,
            "DB_HOST": "127.0.0.1", "DB_PORT": String(server.port), "DB_NAME": "bench", "DB_USER": "postgres",
            "DB_SSLMODE": "disable", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": String(try freeLoopbackPort()), "METRICS_HOST": "127.0.0.1", "METRICS_PORT": String(try freeLoopbackPort()),
            "KAFKA_BROKERS": cluster.bootstrapServers, "KAFKA_GROUP_ID": group, "KAFKA_TOPICS": topic,
            "FLUSH_WORKERS": String(flushWorkers), "LOG_LEVEL": "info",
        ]
        environment["MIGRATE_ON_START"] = "true"
        if options.redis { environment["REDIS_URL"] = "redis://127.0.0.1:\(redisPort)/0" }
        let rowsBefore = try server.rowsWritten()
        let service = try BenchProcess(
            binary: options.binary, arguments: ["serve"], environment: environment, logPath: server.directory + "-\(shape.rawValue).log")
        try service.waitForLog("kafka partitions assigned", timeout: .seconds(120))
        let started = ContinuousClock.now
        let serviceCPU0 = ProcessCPU.seconds(of: service.pid)
        let postgresCPU0 = ProcessCPU.seconds(ofTree: server.postmasterPID)
        let brokerCPU0 = ProcessCPU.seconds(of: getpid())
        let redisPID = options.redis ? Int32(((try? String(contentsOfFile: redisDirectory + "/redis.pid", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        let redisCPU0 = redisPID.map { ProcessCPU.seconds(of: $0) }

        // Done when each flush worker's positions (one row per partition and worker, migration
        // 007), summed over the partitions, account for every record. Polled every 20 ms, so it
        // reads the compact rows: expanded to 256 shards through the view, the poll itself was a
        // visible share of PostgreSQL's CPU during the drain.
        let watcher = try PostgresConnection(settings: server.settings)
        while true {
            let result = try watcher.execute(
                """
                SELECT coalesce(min(total), 0), count(*) FROM (
                    SELECT shard, sum(next_offset) AS total FROM kafka_checkpoints
                    WHERE consumer_group = $1 AND shard_modulus = $2 GROUP BY shard) AS s
                """, [.text(group), .text(String(flushWorkers))])
            if Int(result[0, 0] ?? "") == records.count && result[0, 1] == String(flushWorkers) { break }
            guard service.process.isRunning, ContinuousClock.now - started < .seconds(900) else {
                throw BenchError("the drain did not finish: \(result[0, 0] ?? "?") of \(records.count)\n\(service.log.suffix(3_000))")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let drainSeconds = seconds(ContinuousClock.now - started)
        let serviceCPU = ProcessCPU.seconds(of: service.pid) - serviceCPU0
        let postgresCPU = ProcessCPU.seconds(ofTree: server.postmasterPID) - postgresCPU0
        let brokerCPU = ProcessCPU.seconds(of: getpid()) - brokerCPU0
        let redisCPU = redisPID.flatMap { pid in redisCPU0.map { ProcessCPU.seconds(of: pid) - $0 } }
        watcher.close()
        let status = service.stop()
        guard status == 0 else { throw BenchError("event-handler exited \(status):\n\(service.log.suffix(3_000))") }
        let rows = try server.rowsWritten() - rowsBefore

        // Every event applied once, or the number means nothing.
        workload.apply(to: &table)
        let expected = table.reduce(0) { $0 + Int($1) }
        let actual = try server.progressSum()
        guard actual == expected else {
            throw BenchError("\(shape.rawValue): the table's progress sums to \(actual), the events to \(expected)")
        }
        print(String(format: "%@ (dedup: %@): drained in %.2f s: %.0f events/s, %d rows (%.0f rows/s); service CPU %.1f s, PostgreSQL CPU %.1f s, broker CPU %.1f s%@; table exact",
                     shape.rawValue, options.redis ? "redis" : "memory", drainSeconds, Double(records.count) / drainSeconds, rows, Double(rows) / drainSeconds, serviceCPU, postgresCPU, brokerCPU, redisCPU.map { String(format: ", Redis CPU %.1f s", $0) } ?? ""))
        let events = Double(records.count)
        report.scenarios.append(
            .init(
                name: shape.rawValue, events: records.count, keys: keys, partitions: options.partitions,
                encoding: options.json ? "json" : "protobuf", dedup: options.redis ? "redis" : "memory", produceSeconds: produceSeconds, drainSeconds: drainSeconds,
                eventsPerSecond: events / drainSeconds, rowsWritten: rows, rowsPerSecond: Double(rows) / drainSeconds,
                serviceCPUSeconds: serviceCPU, postgresCPUSeconds: postgresCPU, brokerCPUSeconds: brokerCPU, redisCPUSeconds: redisCPU,
                eventsPerServiceCoreSecond: events / max(serviceCPU, 0.001), ratioToCeiling: 0))
    }

    try measureCeiling("after")
    let ceilingMean = report.ceiling.reduce(0) { $0 + $1.rowsPerSecond } / Double(report.ceiling.count)
    for i in report.scenarios.indices {
        report.scenarios[i].ratioToCeiling = report.scenarios[i].eventsPerSecond / ceilingMean
        let scenario = report.scenarios[i]
        print(String(format: "%-9@ %8.0f events/s = %.2f x the ceiling (%.0f rows/s); %.0f events per service core-second",
                     scenario.name, scenario.eventsPerSecond, scenario.ratioToCeiling, ceilingMean, scenario.eventsPerServiceCoreSecond))
    }
    let path = try report.write(directory: options.outputDirectory)
    print("results written to \(path)")
}

do {
    try run(options)
} catch {
    print("bench-drain: \(error)")
    exit(1)
}
