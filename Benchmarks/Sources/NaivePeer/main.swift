import Catalog
import Foundation
import Lifecycle
import Logging
import UnaryGRPC

// naive-peer: the benchmarks' comparison service. It serves the service's two gRPC event methods
// the way the incumbent handler worked, without a buffer: each event is validated, matched to its
// goals through the same catalog, and written at once, one autocommit UPSERT per goal, before it
// is answered. The load profiles run the same events against it and against event-handler in
// the same run, so the tuning guide can quote what the buffer buys on the same machine.
//
// Configuration: AB_NAMESPACE, CONFIG_PATH, DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD,
// DB_SSLMODE, GRPC_HOST, GRPC_PORT, DB_MAX_OPEN_CONNS (writer threads and connections, default 16).
// It does not migrate: `user_goal_progress` must exist. Once every connection is open and the
// server listens it prints one line, `naive-peer listening on HOST:PORT (N connections)`, on
// stdout. SIGTERM / SIGINT stop it gracefully (exit 0). Bad configuration exits 2, a database
// or server that cannot be reached at start-up exits 1.

/// Prints to stderr and exits.
func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("naive-peer: \(message)\n".utf8))
    exit(status)
}

/// Start-up, serving, shutdown; returns the exit status.
func runNaivePeer() async -> Int32 {
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    let logger = Logger(label: "naive-peer")

    let settings: PeerSettings
    let catalog: Catalog
    do {
        settings = try PeerSettings()
        let loaded = try Catalog.load(path: settings.challengesPath)
        for warning in loaded.warnings { logger.warning("\(warning)") }
        catalog = loaded.catalog
    } catch {
        fail("configuration error: \(error)", status: 2)
    }
    // Relative and rotating goals need the service's baseline and period logic; writing them
    // as plain absolute goals would leave rows the service would not, and the comparison would
    // be of different work. The benchmark catalog has neither.
    if let goal = catalog.goals.first(where: { $0.progressMode == .relative || $0.rotation?.enabled == true }) {
        fail(
            "configuration error: \(settings.challengesPath): goal \"\(goal.goalId)\" is relative or rotating; "
                + "the naive peer writes absolute, non-rotating goals only", status: 2)
    }

    // Installed before anything slow, so a signal during start-up is not lost.
    let stopSignal = SignalWatcher(SIGTERM, SIGINT)
    let pool = WriterPool(
        size: settings.connections, settings: settings.database,
        writer: SingleRowWriter(catalog: catalog, namespace: settings.namespace), logger: logger)
    do {
        try await pool.start()
    } catch {
        fail("cannot open \(settings.connections) connections to \(settings.database): \(error)", status: 1)
    }

    let rules = PeerRules(namespace: settings.namespace, catalog: catalog)
    let server: UnaryGRPCServer
    do {
        server = try await UnaryGRPCServer.start(
            configuration: .init(host: settings.grpcHost, port: settings.grpcPort),
            methods: PeerMethods.methods(rules: rules, pool: pool))
    } catch {
        logger.critical("gRPC server on \(settings.grpcHost):\(settings.grpcPort) failed: \(error)")
        return 1
    }
    // One unbuffered write: the runner reads this line from a file while we keep running.
    let port = server.localAddress?.port ?? settings.grpcPort
    FileHandle.standardOutput.write(
        Data("naive-peer listening on \(settings.grpcHost):\(port) (\(pool.size) connections)\n".utf8))
    let signal = await stopSignal.next()
    logger.info("stopping: no new calls; the calls under way finish", metadata: ["signal": "\(signal)"])
    await server.shutdown(timeout: .seconds(30))
    // Every call has been answered; end the writer threads (blocking, so on a thread of its own).
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        Thread {
            pool.stop()
            done.resume()
        }.start()
    }
    logger.info("stopped")
    return 0
}

exit(await runNaivePeer())
