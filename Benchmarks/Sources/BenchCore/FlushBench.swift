import BenchSupport
import Buffer
import Catalog
import Foundation
import Logging
import ProgressStore
import Storage

/// Our flush path: merged entries written by `ProgressWriter` on connections from the
/// `ConnectionPool`, one thread per worker, users split between workers as in the service.
/// Unlike the ceiling client, encoding the batch is inside the timed window: it is our cost.
struct FlushBench {
    let settings: ConnectionSettings
    let users: Int
    let catalog: Catalog
    let logger: Logger

    func rowsPerSecond(batch: Int, workers: Int, seconds: Double) throws -> Throughput {
        let writer = ProgressWriter(catalog: catalog, namespace: "bench")
        let pool = ConnectionPool(
            settings: settings,
            limits: PoolLimits(
                maxOpen: workers, maxIdle: workers, maxLifetime: .seconds(3_600), maxIdleTime: .seconds(3_600),
                acquireTimeout: .seconds(10)),
            statements: ProgressWriter.preparedStatements, logger: logger)
        try pool.warmUp()
        defer { pool.close() }
        let entrySets: [[[PendingEntry]]] = (0..<workers).map { worker in
            BenchKeys.batches(users: users, stream: worker, streams: workers, batch: batch, count: 8).map { keys in
                keys.map { user, goal in
                    PendingEntry(
                        key: EntryKey(userID: BenchCatalog.userID(user), goal: goal),
                        progress: PendingProgress(kind: .increment, value: 1, increase: 1, events: 1))
                }
            }
        }
        return try BenchRunner.run(streams: workers, seconds: seconds) { worker in
            var i = 0
            return ({}, {
                let entries = entrySets[worker][i % entrySets[worker].count]
                i += 1
                let result = try pool.withConnection { try writer.write(entries, on: $0) }
                return result.updated + result.inserted
            })
        }
    }
}
