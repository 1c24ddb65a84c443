import BenchSupport
import Foundation

/// A system the load is pointed at: our release `event-handler`, or the naive peer (same gRPC
/// methods, no buffer, one UPSERT per event and goal), each its own process on loopback ports.
struct SystemUnderTest {
    enum Kind: String {
        case service
        case naive = "naive-peer"
    }

    let kind: Kind
    let process: BenchProcess
    let grpcPort: Int
    /// The operations port (`/metrics`, `/readyz`); the naive peer has none.
    let metricsPort: Int?
    let settings: [String: String]

    /// Starts the system against `database` and returns once it serves (the service's `/readyz`
    /// answers 200: migrations checked, pool warm; the naive peer's "listening" line).
    static func start(
        _ kind: Kind, binaryDirectory: String, database: BenchPostgres, catalogPath: String,
        settings: [String: String], logPath: String
    ) throws -> SystemUnderTest {
        let grpcPort = try freeLoopbackPort()
        var environment = [
            "ENV_FILE": "/nonexistent/.env", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "AB_NAMESPACE": "bench", "CONFIG_PATH": catalogPath,
            "DB_HOST": "127.0.0.1", "DB_PORT": String(database.port), "DB_NAME": "bench", "DB_USER": "postgres",
            "DB_SSLMODE": "disable", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": String(grpcPort), "LOG_LEVEL": "info",
        ]
        var metricsPort: Int?
        if kind == .service {
            let port = try freeLoopbackPort()
            metricsPort = port
            environment["METRICS_HOST"] = "127.0.0.1"
            environment["METRICS_PORT"] = String(port)
            environment["MIGRATE_ON_START"] = "false"
        }
        environment.merge(settings) { _, chosen in chosen }
        let binary = "\(binaryDirectory)/\(kind == .service ? "event-handler" : "naive-peer")"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchError("\(binary) is missing: build it first (make bench does)")
        }
        let process = try BenchProcess(
            binary: binary, arguments: kind == .service ? ["serve"] : [], environment: environment, logPath: logPath)
        let system = SystemUnderTest(kind: kind, process: process, grpcPort: grpcPort, metricsPort: metricsPort, settings: settings)
        switch kind {
        case .naive:
            try process.waitForLog("naive-peer listening", timeout: .seconds(60))
        case .service:
            let deadline = ContinuousClock.now + .seconds(60)
            while LoopbackHTTP.get(port: metricsPort!, path: "/readyz")?.status != 200 {
                guard process.process.isRunning, ContinuousClock.now < deadline else {
                    throw BenchError("event-handler never became ready:\n\(process.log.suffix(3_000))")
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        return system
    }

    /// For the service: waits until its buffer is empty and no flush holds a connection (the
    /// last drained entries are committed), twice in a row 100 ms apart, so a flush between
    /// draining the buffer and taking its connection is not missed. The naive peer answers only
    /// after writing. The table check after this still polls, so a slow commit is not a failure.
    func waitUntilFlushed() throws {
        guard let metricsPort else { return }
        let deadline = ContinuousClock.now + .seconds(120)
        var quietReadings = 0
        while quietReadings < 2 {
            if let reading = MetricsReading.read(port: metricsPort), reading.bufferSize == 0, reading.poolActive == 0 {
                quietReadings += 1
            } else {
                quietReadings = 0
            }
            guard ContinuousClock.now < deadline else { throw BenchError("the service's buffer never emptied") }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    func stop() -> Int32 { process.stop() }
}
