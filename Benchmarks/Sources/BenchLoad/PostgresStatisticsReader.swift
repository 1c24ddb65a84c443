import BenchSupport
import Storage

/// PostgreSQL's view of the runs, for the tuning guide's PostgreSQL and index sections: the
/// buffer cache hit ratio of the database, each index's use, and the busiest statements
/// (pg_stat_statements, loaded by postgresql-tuning.conf).
enum PostgresStatisticsReader {
    static func read(_ database: BenchPostgres) throws -> ProfileResults.PostgresStatistics {
        let connection = try PostgresConnection(settings: database.settings)
        defer { connection.close() }
        let hit = try connection.execute(
            "SELECT coalesce(blks_hit::float8 / nullif(blks_hit + blks_read, 0), 0) FROM pg_stat_database WHERE datname = current_database()")
        let indexes = try connection.execute(
            """
            SELECT indexrelname, idx_scan, idx_tup_read, idx_tup_fetch, pg_relation_size(indexrelid)
            FROM pg_stat_user_indexes WHERE relname = 'user_goal_progress' ORDER BY indexrelname
            """)
        var statements: [ProfileResults.StatementStatistics] = []
        if let top = try? connection.execute(
            """
            SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160), calls, rows, mean_exec_time, total_exec_time
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY total_exec_time DESC LIMIT 5
            """)
        {
            for row in 0..<top.rows.count {
                statements.append(
                    .init(
                        query: top[row, 0] ?? "", calls: Int(top[row, 1] ?? "") ?? 0, rows: Int(top[row, 2] ?? "") ?? 0,
                        meanMs: Double(top[row, 3] ?? "") ?? 0, totalMs: Double(top[row, 4] ?? "") ?? 0))
            }
        }
        return .init(
            cacheHitRatio: Double(hit[0, 0] ?? "") ?? 0,
            indexes: (0..<indexes.rows.count).map { row in
                .init(
                    name: indexes[row, 0] ?? "", scans: Int(indexes[row, 1] ?? "") ?? 0,
                    tuplesRead: Int(indexes[row, 2] ?? "") ?? 0, tuplesFetched: Int(indexes[row, 3] ?? "") ?? 0,
                    sizeBytes: Int(indexes[row, 4] ?? "") ?? 0)
            },
            statements: statements)
    }
}
