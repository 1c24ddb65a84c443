import Catalog
import Foundation
import Logging
import Storage

/// A private PostgreSQL for the benchmark: scripts/postgres.sh in a temporary directory, with
/// postgresql-tuning.conf and the settings limits.md used (synchronous_commit on, 2 GB buffers).
final class BenchPostgres {
    let directory: String
    let port: Int
    let settings: ConnectionSettings

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
        self.settings = ConnectionSettings(
            host: "127.0.0.1", port: port, database: "bench", user: "postgres", password: nil,
            sslMode: "disable", applicationName: "bench-core", connectTimeout: .seconds(5),
            statementTimeout: .seconds(120))
    }

    static func start() throws -> BenchPostgres {
        let directory = NSTemporaryDirectory() + "bench-core-\(getpid())"
        let port = Int.random(in: 40_000..<50_000)
        let server = BenchPostgres(directory: directory, port: port)
        try server.script("start", extraOptions: "-c synchronous_commit=on -c shared_buffers=2GB -c max_wal_size=4GB")
        return server
    }

    func stop() {
        try? script("stop", extraOptions: "")
        try? FileManager.default.removeItem(atPath: directory)
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
            throw BenchError("scripts/postgres.sh \(action) failed (status \(process.terminationStatus)); run bench-core from the repository root")
        }
    }

    /// Creates the table through the project's migrations and fills it with `users` x 50 rows:
    /// user `i` holds the 50 goals of challenge `i % 10`, as limits.md's "update" scenario.
    func prepareTable(catalog: Catalog, users: Int, logger: Logger) throws {
        let connection = try PostgresConnection(settings: settings)
        defer { connection.close() }
        _ = try Migrator(directory: "migrations", logger: logger).migrate(on: connection)
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

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
