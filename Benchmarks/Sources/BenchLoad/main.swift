import BenchSupport
import Foundation
import LoadGenerator
import Logging
import Storage

// bench-load: the tuning guide's load profiles (bench/profiles.json) against the release
// event-handler and, with the same load in the same run, the naive peer and the raw PostgreSQL
// ceiling (../shared/limits.md), so every ratio compares numbers from one machine state.
//
//   1. A private PostgreSQL (postgresql-tuning.conf, synchronous_commit on).
//   2. The ceiling: limits.md's T2 UPSERT, 5,000-row batches, 2 connections, on a 1,000,000-row
//      table; then the table is emptied for the runs.
//   3. Per system (or per value of a swept setting): an empty table, the system started on
//      loopback, the load (k6 or LoadGenerator) with a sampler reading CPU, memory, PostgreSQL's
//      rows written and the service's /metrics every second; then the table is checked against
//      the calls answered OK (every event written, once), and the system stopped with SIGTERM.
//   4. The ceiling again, so drift during the run shows.
//
// Results: stdout and bench/results/<profile>-<time>.json; scripts/bench-report.py turns the
// results files into PERFORMANCE.md.

let options = RunnerOptions.parse(CommandLine.arguments.dropFirst())

func gitCommit() -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "describe", "--always", "--dirty"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return "unknown" }
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

func run() throws {
    let book = try ProfileFile.load(path: "bench/profiles.json")
    guard let base = book.profiles[options.profile] else {
        throw BenchError("no profile \"\(options.profile)\" in bench/profiles.json (there are: \(book.profiles.keys.sorted().joined(separator: ", ")))")
    }
    let profile = base.scaled(by: options.scale)
    let thresholds = book.breakThresholds
    var results = ProfileResults(
        kind: options.sweep == nil ? "profile" : "sweep", profile: options.profile, sweep: options.sweep?.rawValue,
        scale: options.scale, tool: options.tool.rawValue, startedAt: ISO8601DateFormatter().string(from: Date()),
        commit: gitCommit(),
        machine: ["cores": Double(ProcessInfo.processInfo.activeProcessorCount),
                  "memory_gib": (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824).rounded()],
        thresholds: thresholds)
    results.postgresOptions = ProcessInfo.processInfo.environment["BENCH_PG_OPTS"]
    print("bench-load: profile \(options.profile) x\(options.scale) (\(Int(profile.duration)) s of load per system), tool \(options.tool.rawValue)")

    let logger = Logger(label: "bench-load")
    let database = try BenchPostgres.start(name: "bench-load")
    defer { database.stop() }
    // The ceiling's table: limits.md's 1,000,000 rows (a sweep without ceiling only migrates).
    try database.prepareTable(catalog: BenchCatalog.make(), users: options.ceilingSeconds > 0 ? 20_000 : 0, logger: logger)
    do {
        // postgresql-tuning.conf preloads pg_stat_statements; its view needs the extension.
        let connection = try PostgresConnection(settings: database.settings)
        _ = try connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        connection.close()
    }
    let ceilingBench = CeilingBench(settings: database.settings, users: 20_000, catalog: BenchCatalog.make())
    func measureCeiling(_ when: String) throws {
        guard options.ceilingSeconds > 0 else { return }
        let measured = try ceilingBench.rowsPerSecond(batch: 5_000, connections: 2, seconds: options.ceilingSeconds)
        results.ceiling.append(.init(when: when, rowsPerSecond: measured.rowsPerSecond, p99Ms: measured.p99Milliseconds))
        print(String(format: "ceiling (%@): %.0f rows/s, p99 %.1f ms [T2, batch 5,000, 2 connections]", when, measured.rowsPerSecond, measured.p99Milliseconds))
    }
    try measureCeiling("before")

    let catalogPath = database.directory + "-challenges.json"
    try BenchCatalog.profileJSON.write(toFile: catalogPath, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: catalogPath) }

    let variants: [(kind: SystemUnderTest.Kind, label: String, settings: [String: String])]
    if let sweep = options.sweep {
        variants = sweep.variants.map { (.service, $0.label, options.serviceSettings.merging($0.settings) { _, swept in swept }) }
    } else {
        variants = options.systems.map { ($0, $0.rawValue, $0 == .service ? options.serviceSettings : [:]) }
    }
    for (index, variant) in variants.enumerated() {
        let connection = try PostgresConnection(settings: database.settings)
        _ = try connection.execute("TRUNCATE user_goal_progress")
        _ = try connection.execute("VACUUM ANALYZE user_goal_progress")
        connection.close()

        let runID = "\(options.profile)-\(Int(Date().timeIntervalSince1970))-\(index)"
        let launched = ContinuousClock.now
        let system = try SystemUnderTest.start(
            variant.kind, binaryDirectory: options.binaries, database: database, catalogPath: catalogPath,
            settings: variant.settings, logPath: database.directory + "-\(index)-\(variant.kind.rawValue).log")
        let readySeconds = BenchSupport.seconds(ContinuousClock.now - launched)
        print("\(variant.label): started (pid \(system.process.pid)), \(options.tool.rawValue) load for \(Int(profile.duration)) s")
        let origin = ContinuousClock.now
        let loadTool = LoadToolProcess()
        let sampler = Sampler(
            origin: origin, systemPID: system.process.pid, postmasterPID: database.postmasterPID,
            loadPID: { loadTool.pid }, metricsPort: system.metricsPort, database: database.settings)
        let recorder = options.perf && variant.kind == .service ? try PerfRecorder(pid: system.process.pid, directory: database.directory) : nil
        sampler.waitForSample()  // the state before the load

        let loadStart = BenchSupport.seconds(ContinuousClock.now - origin)
        let outcome: LoadOutcome
        switch options.tool {
        case .k6:
            outcome = try K6Load.run(
                k6: options.k6, profile: options.profile, scale: options.scale, port: system.grpcPort, runID: runID,
                directory: database.directory, tracking: loadTool)
        case .generator:
            outcome = try GeneratorLoad.runBlocking(
                profile: profile, port: system.grpcPort, runID: runID,
                thresholds: options.profile == "stress" ? thresholds : nil)
        }
        let loadEnd = BenchSupport.seconds(ContinuousClock.now - origin)
        let hotSymbols = recorder?.stop()
        try system.waitUntilFlushed()
        sampler.waitForSample()  // the last rows written
        let samples = sampler.stop()
        let verification = try RunAnalysis.verify(outcome.summary, database: database)
        let status = system.stop()

        // k6 starts its schedule only once its VUs are up (seconds, for stress's 500): the
        // series' clock is set from the traffic itself, so the target rates line up.
        let scheduleStart = options.tool == .k6
            ? RunAnalysis.scheduleStart(samples, loadStart: loadStart, schedule: ArrivalSchedule(profile)) : loadStart
        let series = RunAnalysis.series(samples, loadStart: scheduleStart, profile: profile, generatorSeconds: outcome.seconds)
        var run = SystemRun(
            system: variant.kind.rawValue, label: variant.label, settings: variant.settings, load: outcome.summary,
            verification: verification,
            summary: RunAnalysis.summary(samples, series: series, load: outcome.summary, loadStart: loadStart, loadEnd: loadEnd),
            series: series, breakingPoint: nil, hotSymbols: hotSymbols, exitStatus: status, readySeconds: readySeconds)
        if options.profile == "stress" {
            let point = RunAnalysis.breakingPoint(outcome.seconds ?? RunAnalysis.judgedSeconds(series), thresholds: thresholds)
            run.breakingPoint = point.limit == "none"
                ? RunAnalysis.k6Abort(outcome.summary, series: series, thresholds: thresholds, lastGood: point.lastGoodEPS) ?? point
                : point
        }
        results.runs.append(run)
        print(describe(run))
        guard !verification.checked || verification.exact else {
            throw BenchError("\(variant.label): \(verification.note): logins \(verification.loginProgressFound) of \(verification.loginProgressExpected), stats \(verification.statProgressFound) of \(verification.statProgressExpected)")
        }
    }

    results.postgres = try PostgresStatisticsReader.read(database)
    try measureCeiling("after")
    let path = try results.write(directory: options.outputDirectory)
    print("results written to \(path)")
}

func describe(_ run: SystemRun) -> String {
    let s = run.summary, l = run.load
    var text = String(
        format: "%@: %d OK, %d failed, %.0f events/s; client p50 %.2f ms p95 %.2f ms p99 %.2f ms; CPU %.1f s (%.0f%%), %.0f events per core-second (%.0f with PostgreSQL's CPU); RSS peak %.0f MB; DB %.0f writes/s; buffer peak %.0f; table: %@",
        run.label, l.ok, l.failed, l.achievedEPS, l.latencyMs.p50, l.latencyMs.p95, l.latencyMs.p99, s.systemCPUSeconds,
        s.systemCPUPercentMean, s.eventsPerCoreSecond, s.eventsPerCoreSecondWithPostgres, s.rssPeakMB, s.dbWritesPerSecondMean, s.bufferPeak, run.verification.note)
    if let point = run.breakingPoint {
        text += String(format: "\n  breaking point: %@ at %.0f events/s target (%.0f achieved); last good %.0f events/s",
                       point.limit, point.targetEPS, point.achievedEPS, point.lastGoodEPS)
    }
    if run.exitStatus != 0 { text += "\n  exit status after SIGTERM: \(run.exitStatus)" }
    return text
}

do {
    try run()
} catch {
    print("bench-load: \(error)")
    exit(1)
}
