import Catalog
import Foundation
import Logging
import Storage

/// A private PostgreSQL for the benchmark: scripts/postgres.sh in a temporary directory, with
/// postgresql-tuning.conf and the settings limits.md used (synchronous_commit on, 2 GB buffers).
public final class BenchPostgres: Sendable {
    public let directory: String
    public let port: Int
    public let settings: ConnectionSettings

    private init(directory: String, port: Int, applicationName: String) {
        self.directory = directory
        self.port = port
        self.settings = ConnectionSettings(
            host: "127.0.0.1", port: port, database: "bench", user: "postgres", password: nil,
            sslMode: "disable", applicationName: applicationName, connectTimeout: .seconds(5),
            statementTimeout: .seconds(120))
    }

    /// Starts a server in a temporary directory; `name` names the directory and the client
    /// connections (`application_name`).
    public static func start(name: String) throws -> BenchPostgres {
        let directory = NSTemporaryDirectory() + "\(name)-\(getpid())"
        let port = Int.random(in: 40_000..<50_000)
        let server = BenchPostgres(directory: directory, port: port, applicationName: name)
        // BENCH_PG_OPTS adds settings for a profiling run, e.g. auto_explain:
        // "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c auto_explain.log_analyze=on"
        let extra = ProcessInfo.processInfo.environment["BENCH_PG_OPTS"].map { " " + $0 } ?? ""
        try server.script("start", extraOptions: "-c synchronous_commit=on -c shared_buffers=2GB -c max_wal_size=4GB" + extra)
        return server
    }

    public func stop() {
        try? script("stop", extraOptions: "")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The postmaster's process id (its backends are its children).
    public var postmasterPID: Int32 {
        let text = (try? String(contentsOfFile: directory + "/postmaster.pid", encoding: .utf8)) ?? ""
        return Int32(text.split(separator: "\n").first ?? "") ?? 0
    }

    /// Rows inserted plus updated in the benchmark table so far (the statistics collector's
    /// counters, as of the last report).
    public func rowsWritten() throws -> Int {
        let connection = try PostgresConnection(settings: settings)
        defer { connection.close() }
        _ = try connection.execute("SELECT pg_stat_clear_snapshot()")
        let result = try connection.execute(
            "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'user_goal_progress'")
        return Int(result[0, 0] ?? "") ?? 0
    }

    /// The sum of progress over the benchmark table.
    public func progressSum() throws -> Int {
        let connection = try PostgresConnection(settings: settings)
        defer { connection.close() }
        return Int(try connection.execute("SELECT coalesce(sum(progress), 0)::bigint FROM user_goal_progress")[0, 0] ?? "") ?? -1
    }

    private func script(_ action: String, extraOptions: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["scripts/postgres.sh", action, directory, String(port)]
        var environment = ProcessInfo.processInfo.environment
        environment["PG_EXTRA_OPTS"] = extraOptions
        environment["PGDATABASE_NAME"] = "bench"
        process.environment = environment
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("scripts/postgres.sh \(action) failed (status \(process.terminationStatus)); run the benchmark from the repository root")
        }
    }

    /// Creates the table through the project's migrations and fills it with `users` x 50 rows:
    /// user `i` holds the 50 goals of challenge `i % 10`, as limits.md's "update" scenario.
    public func prepareTable(catalog: Catalog, users: Int, logger: Logger) throws {
        let connection = try PostgresConnection(settings: settings)
        defer { connection.close() }
        _ = try Migrator(logger: logger).migrate(on: connection)
        _ = try connection.execute("TRUNCATE user_goal_progress")
        var ids = BinaryArray(.text, capacity: users * 40)
        for i in 0..<users { ids.append(BenchCatalog.userID(i)) }
        let started = ContinuousClock.now
        _ = try connection.execute(
            """
            INSERT INTO user_goal_progress (user_id, goal_id, challenge_id, namespace, progress, status)
            SELECT u.id, 'goal-' || lpad((((u.n - 1) % 10) * 50 + g)::text, 3, '0'),
                   'challenge-' || ((u.n - 1) % 10), 'bench', 0, 'in_progress'
            FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n), generate_series(0, 49) AS g
            """, [ids.parameter()])
        _ = try connection.execute("VACUUM ANALYZE user_goal_progress")
        let count = try connection.execute("SELECT count(*) FROM user_goal_progress")[0, 0] ?? "?"
        print("table filled: \(count) rows in \(ContinuousClock.now - started)")
        _ = catalog
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
