import Catalog
import Foundation
import Storage
import Synchronization

/// The raw PostgreSQL ceiling, as limits.md measures it: a feather-light client that only ships
/// pre-encoded batches of the T2 increment UPSERT (prepared, binary array parameters), one
/// thread and one connection per concurrent stream, users split between streams.
public struct CeilingBench: Sendable {
    public let settings: ConnectionSettings
    public let users: Int
    public let catalog: Catalog

    public init(settings: ConnectionSettings, users: Int, catalog: Catalog) {
        self.settings = settings
        self.users = users
        self.catalog = catalog
    }

    static let statement = """
        INSERT INTO user_goal_progress AS ugp
            (user_id, goal_id, challenge_id, namespace, progress, status, completed_at, updated_at)
        SELECT t.u, t.g, t.c, t.n, t.p, t.s, NULL, now()
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[]) AS t(u, g, c, n, p, s)
        ON CONFLICT (user_id, goal_id) DO UPDATE SET
            progress = ugp.progress + EXCLUDED.progress,
            status = CASE WHEN ugp.progress + EXCLUDED.progress >= 1000000 THEN 'completed' ELSE 'in_progress' END,
            completed_at = CASE WHEN ugp.progress + EXCLUDED.progress >= 1000000
                                THEN COALESCE(ugp.completed_at, now()) ELSE ugp.completed_at END,
            updated_at = now()
        WHERE ugp.status <> 'claimed'
        """

    public func rowsPerSecond(batch: Int, connections: Int, seconds: Double) throws -> Throughput {
        // Encode every batch before the timed window.
        let streams: [[[PostgresParameter]]] = (0..<connections).map { stream in
            BenchKeys.batches(users: users, stream: stream, streams: connections, batch: batch, count: 8).map { keys in
                var u = BinaryArray(.text, capacity: batch * 40), g = BinaryArray(.text, capacity: batch * 12)
                var c = BinaryArray(.text, capacity: batch * 16), n = BinaryArray(.text, capacity: batch * 9)
                var p = BinaryArray(.int4, capacity: batch * 8), s = BinaryArray(.text, capacity: batch * 15)
                for (user, goal) in keys {
                    u.append(BenchCatalog.userID(user))
                    g.append(catalog.goals[Int(goal)].goalId)
                    c.append(catalog.goals[Int(goal)].challengeId)
                    n.append("bench")
                    p.append(int4: 1)
                    s.append("in_progress")
                }
                return [u.parameter(), g.parameter(), c.parameter(), n.parameter(), p.parameter(), s.parameter()]
            }
        }
        return try BenchRunner.run(streams: connections, seconds: seconds) { stream in
            let connection = try PostgresConnection(settings: settings)
            try connection.prepare("ceiling", Self.statement)
            var i = 0
            return ({ connection.close() }, {
                _ = try connection.executePrepared("ceiling", streams[stream][i % streams[stream].count])
                i += 1
                return batch
            })
        }
    }
}

/// Keys of the "update" scenario, split between streams by user (as the service splits users
/// between flush workers), shuffled, unique within a batch.
public enum BenchKeys {
    public static func batches(users: Int, stream: Int, streams: Int, batch: Int, count: Int) -> [[(Int, Int32)]] {
        var keys: [(Int, Int32)] = []
        for user in stride(from: stream, to: users, by: streams) {
            for goal in BenchCatalog.goals(ofUser: user) { keys.append((user, goal)) }
        }
        keys.shuffle()
        return (0..<count).map { b in
            let start = (b * batch) % max(1, keys.count - batch)
            return Array(keys[start..<min(start + batch, keys.count)])
        }
    }
}

/// Rows per second over a timed window, and the p99 latency of one step.
public struct Throughput: Sendable {
    public var rowsPerSecond: Double
    public var p99Milliseconds: Double
}

/// Runs `streams` threads, each repeating its step until the time is up; rows per second over
/// all of them and the p99 of one step's latency.
public enum BenchRunner {
    public static func run(
        streams: Int, seconds: Double,
        setUp: @escaping @Sendable (Int) throws -> (cleanUp: () -> Void, step: () throws -> Int)
    ) throws -> Throughput {
        let results = Mutex<[(rows: Int, latencies: [Double], error: String?)]>([])
        let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let deadline = Mutex<ContinuousClock.Instant>(.now)
        for stream in 0..<streams {
            let thread = Thread {
                var rows = 0
                var latencies: [Double] = []
                var failure: String?
                do {
                    let (cleanUp, step) = try setUp(stream)
                    defer { cleanUp() }
                    _ = try step()  // warm: plan cached, pages in memory
                    ready.signal()
                    go.wait()
                    let end = deadline.withLock { $0 }
                    while ContinuousClock.now < end {
                        let started = ContinuousClock.now
                        rows += try step()
                        let (s, atto) = (ContinuousClock.now - started).components
                        latencies.append((Double(s) + Double(atto) / 1e18) * 1000)
                    }
                } catch {
                    failure = "\(error)"
                    ready.signal()
                }
                results.withLock { $0.append((rows, latencies, failure)) }
                done.signal()
            }
            thread.start()
        }
        for _ in 0..<streams { ready.wait() }
        let began = ContinuousClock.now
        deadline.withLock { $0 = began + .milliseconds(Int64(seconds * 1000)) }
        for _ in 0..<streams { go.signal() }
        for _ in 0..<streams { done.wait() }
        let (s, atto) = (ContinuousClock.now - began).components
        let elapsed = Double(s) + Double(atto) / 1e18
        let all = results.withLock { $0 }
        if let failure = all.compactMap(\.error).first { throw BenchError(failure) }
        let latencies = all.flatMap(\.latencies).sorted()
        let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]
        return Throughput(rowsPerSecond: Double(all.reduce(0) { $0 + $1.rows }) / elapsed, p99Milliseconds: p99)
    }
}
