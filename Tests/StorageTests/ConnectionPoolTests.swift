import Foundation
import Storage
import Testing
import TestSupport

@Suite("ConnectionPool against a real PostgreSQL")
struct ConnectionPoolTests {
    /// Touched only on test threads: starting it blocks.
    var server: PostgresServer { .shared }
    static let statements = [PreparedStatement(name: "add_one", sql: "SELECT $1::int + 1")]

    private func makePool(
        _ applicationName: String, on server: PostgresServer? = nil, maxOpen: Int, maxIdle: Int,
        maxLifetime: Duration = .seconds(1_800), maxIdleTime: Duration = .seconds(300),
        acquireTimeout: Duration = .seconds(10)
    ) -> ConnectionPool {
        ConnectionPool(
            settings: (server ?? self.server).settings(applicationName: applicationName),
            limits: PoolLimits(
                maxOpen: maxOpen, maxIdle: maxIdle, maxLifetime: maxLifetime, maxIdleTime: maxIdleTime,
                acquireTimeout: acquireTimeout),
            statements: Self.statements, logger: testLogger)
    }

    @Test func warmUpOpensExactlyMaxIdleWithStatementsPrepared() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("warm")
            let pool = makePool(name, maxOpen: 5, maxIdle: 3)
            defer { pool.close() }
            try pool.warmUp()
            #expect(try backendCount(server, applicationName: name) == 3)
            #expect(pool.stats == PoolStats(active: 0, idle: 3, max: 5, opened: 3))
            try pool.warmUp()  // already warm: opens nothing more
            #expect(pool.stats.opened == 3)
            for _ in 0..<3 {
                try pool.withConnection { connection throws in
                    #expect(connection.preparedStatements == ["add_one"])
                    #expect(try connection.executePrepared("add_one", [.text("41")])[0, 0] == "42")
                }
            }
            #expect(pool.stats.opened == 3)
            #expect(try backendCount(server, applicationName: name) == 3)
        }
    }

    @Test func maxOpenIsHonouredAndWaitsAreCounted() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("maxopen")
            let pool = makePool(name, maxOpen: 2, maxIdle: 2)
            defer { pool.close() }
            let holding = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let maxActiveSeen = LockedValue(0)
            let pids = LockedValue<[Int32]>([])
            let borrow: @Sendable () throws -> Void = {
                try pool.withConnection { connection in
                    let active = pool.stats.active
                    maxActiveSeen.update { $0 = max($0, active) }
                    pids.update { $0.append(connection.backendPID) }
                    holding.signal()
                    release.wait()
                }
            }
            let first = TestThread("borrower-1", borrow)
            let second = TestThread("borrower-2", borrow)
            holding.wait()
            holding.wait()
            #expect(pool.stats.active == 2)
            let third = TestThread("borrower-3", borrow)
            try waitUntil("the third checkout to wait") { pool.stats.waitCount == 1 }
            #expect(pool.stats.active == 2)
            #expect(pids.get().count == 2)

            release.signal()  // one of the first two returns: the third gets its connection
            holding.wait()
            #expect(pool.stats.active == 2)
            release.signal()
            release.signal()
            try first.join()
            try second.join()
            try third.join()

            let stats = pool.stats
            #expect(maxActiveSeen.get() <= 2)
            #expect(stats.waitCount == 1)
            #expect(stats.waitDuration > .zero)
            #expect(stats.opened == 2)
            #expect(stats.active == 0)
            #expect(stats.idle == 2)
            let seen = pids.get()
            #expect(Set(seen).count == 2, "the third borrower reused one of the two connections: \(seen)")
        }
    }

    @Test func acquireTimeoutThrows() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("timeout")
            let pool = makePool(name, maxOpen: 1, maxIdle: 1, acquireTimeout: .milliseconds(300))
            defer { pool.close() }
            let holding = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let holder = TestThread("holder") {
                try pool.withConnection { _ in
                    holding.signal()
                    release.wait()
                }
            }
            holding.wait()
            let started = ContinuousClock.now
            let error = #expect(throws: PostgresError.self) { try pool.withConnection { _ in } }
            let waited = ContinuousClock.now - started
            release.signal()
            try holder.join()
            #expect(error?.kind == .timeout)
            #expect(error?.isConnectionFailure == false)
            #expect(waited >= .milliseconds(300))
            #expect(waited < .seconds(5))
            #expect(pool.stats.waitCount == 1)
            #expect(pool.stats.active == 0)
            // The pool still works after a timed-out wait.
            try pool.withConnection { connection throws in #expect(try connection.execute("SELECT 1")[0, 0] == "1") }
        }
    }

    @Test func maxLifetimeReplacesOldConnections() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("lifetime")
            // Zero lifetime: every connection is too old by the time it comes back.
            let expiring = makePool(name, maxOpen: 2, maxIdle: 2, maxLifetime: .zero)
            defer { expiring.close() }
            // A short lifetime: an idle connection that got too old is replaced at checkout.
            let lifetime = Duration.seconds(1)
            let short = makePool(name + "-s", maxOpen: 2, maxIdle: 2, maxLifetime: lifetime)
            defer { short.close() }
            let first = try expiring.withConnection { $0.backendPID }
            let second = try expiring.withConnection { $0.backendPID }
            #expect(first != second)
            #expect(expiring.stats.opened == 2)
            #expect(expiring.stats.closed == 2)
            #expect(expiring.stats.idle == 0)

            let (pid, created) = try short.withConnection { ($0.backendPID, $0.createdAt) }
            if ContinuousClock.now - created < lifetime {  // (on a very slow machine it expired on return already)
                #expect(short.stats.idle == 1)
            }
            sleep(until: created + lifetime)
            let replacement = try short.withConnection { connection in
                #expect(connection.preparedStatements == ["add_one"])
                return connection.backendPID
            }
            #expect(replacement != pid)
            #expect(short.stats.closed == 1)
            #expect(short.stats.opened == 2)
        }
    }

    @Test func reapIdleHonoursMaxIdleTime() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("idle")
            let pool = makePool(name, maxOpen: 3, maxIdle: 2, maxIdleTime: .milliseconds(400))
            defer { pool.close() }
            let warmed = ContinuousClock.now
            try pool.warmUp()
            pool.reapIdle()
            if ContinuousClock.now - warmed < .milliseconds(400) {  // (a slow machine could pass the limit already)
                #expect(pool.stats.idle == 2)
            }
            sleep(until: ContinuousClock.now + .milliseconds(400))
            pool.reapIdle()
            #expect(pool.stats.idle == 0)
            #expect(pool.stats.closed == 2)
            try waitUntil("the reaped backends to exit") { try backendCount(server, applicationName: name) == 0 }
            // Checkouts open new ones as needed.
            try pool.withConnection { connection throws in
                #expect(try connection.executePrepared("add_one", [.text("1")])[0, 0] == "2")
            }
            #expect(pool.stats.opened == 3)
        }
    }

    @Test func aConnectionKilledByTheServerIsReplacedTransparently() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("killed")
            let pool = makePool(name, maxOpen: 1, maxIdle: 1)
            defer { pool.close() }
            try pool.warmUp()
            let pid = try pool.withConnection { $0.backendPID }
            try terminateBackend(server, pid: pid)
            let replacement = try pool.withConnection { connection throws in
                #expect(try connection.executePrepared("add_one", [.text("2")])[0, 0] == "3")
                return connection.backendPID
            }
            #expect(replacement != pid)
            #expect(pool.stats.closed == 1)
            #expect(pool.stats.opened == 2)
            #expect(pool.stats.idle == 1)
        }
    }

    @Test func aBodyThatHitsADeadConnectionFailsAndTheConnectionIsDiscarded() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("dead")
            let pool = makePool(name, maxOpen: 2, maxIdle: 2)
            defer { pool.close() }
            try pool.warmUp()
            let doomed = LockedValue<Int32>(0)
            let error = #expect(throws: PostgresError.self) {
                try pool.withConnection { connection in
                    doomed.set(connection.backendPID)
                    try terminateBackend(server, pid: connection.backendPID)
                    try connection.execute("SELECT 1")
                }
            }
            #expect(error?.isConnectionFailure == true)
            #expect(pool.stats.closed == 1)
            #expect(pool.stats.idle == 1)
            #expect(pool.stats.active == 0)
            for _ in 0..<3 {
                let pid = try pool.withConnection { $0.backendPID }
                #expect(pid != doomed.get())
            }
        }
    }

    @Test func aConnectionReturnedInsideATransactionIsDiscarded() async throws {
        try await onThread { [self] in
            let pool = makePool(uniqueApplicationName("tx"), maxOpen: 1, maxIdle: 1)
            defer { pool.close() }
            let pid = try pool.withConnection { connection in
                try connection.execute("BEGIN")
                return connection.backendPID
            }
            #expect(pool.stats.closed == 1)
            #expect(try pool.withConnection { $0.backendPID } != pid)
        }
    }

    @Test func thePoolSurvivesAServerRestart() async throws {
        try await onThread { [self] in
            let server = try PostgresServer()
            defer { server.shutdown() }
            let name = uniqueApplicationName("restart")
            let pool = makePool(name, on: server, maxOpen: 3, maxIdle: 2)
            defer { pool.close() }
            try pool.warmUp()
            let before = try pool.withConnection { $0.backendPID }
            try server.stop()
            let down = #expect(throws: PostgresError.self) { try pool.withConnection { _ in } }
            #expect(down?.isConnectionFailure == true)
            try server.start()
            let after = try pool.withConnection { connection throws in
                #expect(try connection.executePrepared("add_one", [.text("9")])[0, 0] == "10")
                return connection.backendPID
            }
            #expect(after != before)
            #expect(pool.stats.closed == 2)  // both warm connections died with the old server
            #expect(pool.stats.idle == 1)
        }
    }

    @Test func warmUpFailsWhenNoConnectionCanBeOpened() async throws {
        let port = try PostgresServer.freeLoopbackPort()
        let pool = ConnectionPool(
            settings: ConnectionSettings(host: "127.0.0.1", port: port, database: "x", connectTimeout: .seconds(2)),
            limits: PoolLimits(maxOpen: 2, maxIdle: 2), statements: [], logger: testLogger)
        defer { pool.close() }
        let error = try await onThread {
            do {
                try pool.warmUp()
                return PostgresError?.none
            } catch let error as PostgresError {
                return error
            }
        }
        #expect(error?.kind == .connect)
        #expect(error?.isConnectionFailure == true)
        #expect(pool.stats == PoolStats(max: 2))
    }

    @Test func closeClosesIdleConnectionsAndRefusesCheckouts() async throws {
        try await onThread { [self] in
            let name = uniqueApplicationName("close")
            let pool = makePool(name, maxOpen: 2, maxIdle: 2)
            try pool.warmUp()
            pool.close()
            #expect(pool.stats.idle == 0)
            #expect(pool.stats.closed == 2)
            let error = #expect(throws: PostgresError.self) { try pool.withConnection { _ in } }
            #expect(error?.kind == .connectionLost)
            try waitUntil("the closed pool's backends to exit") { try backendCount(server, applicationName: name) == 0 }
        }
    }
}
