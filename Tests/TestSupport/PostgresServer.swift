import Foundation
import Logging
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real PostgreSQL 15 for tests: a private cluster in a fresh temporary directory, on a free
/// loopback port, started through `scripts/postgres.sh` (the script `make run` uses, so the
/// repository's postgresql-tuning.conf applies). Memory is small and durability off
/// (`fsync=off`, …) unless the test passes other `extraOptions`.
///
///     let server = try PostgresServer()                 // or PostgresServer.shared
///     let db = try server.makeDatabase()                // a fresh, empty database
///     let connection = try PostgresConnection(settings: server.settings(database: db))
///     try server.stop(); try server.start()              // a restart, same data
///     #expect(try server.psql("SELECT 1", database: db) == "1")
///
/// All methods block (they run the script or psql): call them from tests, not from actors
/// that must stay responsive. The cluster is stopped and its directory removed by `shutdown()`,
/// by `deinit`, or when the test process exits.
public final class PostgresServer: Sendable {
    /// The options the tests use unless told otherwise: small, fast, not durable.
    public static let defaultExtraOptions =
        "-c shared_buffers=128MB -c max_connections=100 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    /// One server for the whole test process, started on first use; tests take their own
    /// database on it with `makeDatabase()`. A failure to start it stops the test process.
    public static let shared: PostgresServer = {
        do {
            return try PostgresServer()
        } catch {
            fatalError("cannot start the test PostgreSQL: \(error)")
        }
    }()

    /// The repository root (found from this file's path), where `scripts/` and `migrations/` are.
    public static let repositoryRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The temporary directory holding the cluster (`data/`) and psql's error output.
    public let directory: String
    public let dataDirectory: String
    /// The port (fixed once the server first started).
    public var port: Int { state.withLock { $0.port } }
    /// The database `scripts/postgres.sh` creates, and `connectionSettings` names.
    public let database: String
    public let extraOptions: String
    /// TLS on the server's port, if it was asked for.
    public let tls: TLS?
    /// `extraOptions`, plus the TLS and `pg_hba.conf` options.
    private let serverOptions: String

    /// `ssl=on` with `certificate` and `key` (copied into the server's directory, readable by the
    /// server's OS user alone: PostgreSQL refuses a key others can read), and with `clientCA` the
    /// CA whose client certificates the server accepts (`ssl_ca_file`; pg_hba rules decide who
    /// must present one). Plaintext connections are still accepted unless `hbaRules` refuse them.
    public struct TLS: Sendable {
        public var certificate: String
        public var key: String
        public var clientCA: String?

        public init(certificate: String, key: String, clientCA: String? = nil) {
            self.certificate = certificate
            self.key = key
            self.clientCA = clientCA
        }

        /// The server certificate of `certificates` (for `localhost` and 127.0.0.1), and its CA
        /// for client certificates when `clientCertificates` is true.
        public init(_ certificates: TestCertificates, clientCertificates: Bool = false) {
            self.init(
                certificate: certificates.serverCertificate, key: certificates.serverKey,
                clientCA: clientCertificates ? certificates.caCertificate : nil)
        }
    }

    private struct State {
        var port: Int
        var hasStarted = false
        var isRunning = false
        var isShutDown = false
    }

    private let state: Mutex<State>

    /// Starts a new server. Throws (with the end of the server log) when it cannot start.
    ///
    /// `tls` turns TLS on (see `TLS`). `hbaRules` are `pg_hba.conf` lines checked before the
    /// default ones (trust for every user on the socket and on loopback), e.g.
    /// `hostssl all alice 127.0.0.1/32 cert` to make `alice` present a client certificate.
    public init(
        database: String = "challenge_db", extraOptions: String = PostgresServer.defaultExtraOptions, tls: TLS? = nil,
        hbaRules: [String] = []
    ) throws {
        let directory = NSTemporaryDirectory() + "pg-test-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
        // The postgres OS user (the script runs the server as it when we are root) must reach data/.
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        self.directory = directory
        self.dataDirectory = directory + "/data"
        self.state = Mutex(State(port: try Self.freeLoopbackPort()))
        self.database = database
        self.extraOptions = extraOptions
        self.tls = tls
        var options = extraOptions
        if let tls {
            func install(_ file: String, as name: String) throws -> String {
                let path = directory + "/" + name
                try FileManager.default.copyItem(atPath: file, toPath: path)
                var attributes: [FileAttributeKey: Any] = [.posixPermissions: 0o600]
                if getuid() == 0 {
                    attributes[.ownerAccountName] = "postgres"
                    attributes[.groupOwnerAccountName] = "postgres"
                }
                try FileManager.default.setAttributes(attributes, ofItemAtPath: path)
                return path
            }
            options += " -c ssl=on -c ssl_cert_file=\(try install(tls.certificate, as: "server.crt"))"
            options += " -c ssl_key_file=\(try install(tls.key, as: "server.key"))"
            if let clientCA = tls.clientCA { options += " -c ssl_ca_file=\(try install(clientCA, as: "client-ca.crt"))" }
        }
        if !hbaRules.isEmpty {
            let hba = directory + "/pg_hba.conf"
            let defaults = ["local all all trust", "host all all 127.0.0.1/32 trust", "host all all ::1/128 trust"]
            try (hbaRules + defaults).joined(separator: "\n").appending("\n").write(toFile: hba, atomically: true, encoding: .utf8)
            options += " -c hba_file=\(hba)"
        }
        self.serverOptions = options
        ServerRegistry.register(dataDirectory: dataDirectory, directory: directory)
        do {
            try start()
        } catch {
            shutdown()
            throw error
        }
    }

    deinit {
        shutdown()
    }

    // MARK: - Lifecycle

    /// Starts the server (again, after `stop()` or `kill()`: the same data dir, so a restart).
    ///
    /// The first start picks another free port if the chosen one was taken meanwhile (a port
    /// from `bind(0)` is in the ephemeral range, where parallel tests' client sockets live).
    public func start() throws {
        var attempt = 1
        while true {
            do {
                try runScript("start")
                break
            } catch let error as PostgresServerError
                where error.log.contains("Address already in use") && attempt < 5 && !state.withLock({ $0.hasStarted })
            {
                attempt += 1
                let port = try Self.freeLoopbackPort()
                state.withLock { $0.port = port }
            }
        }
        state.withLock {
            $0.hasStarted = true
            $0.isRunning = true
        }
    }

    /// Fast shutdown: clients are disconnected, the server waits for nothing.
    public func stop() throws {
        try runScript("stop")
        state.withLock { $0.isRunning = false }
    }

    /// SIGKILLs the postmaster (a crash, for fault tests) and waits until it and its server
    /// processes are gone, so `start()` can run crash recovery.
    public func kill() throws {
        guard let pid = Self.postmasterPID(dataDirectory: dataDirectory) else {
            throw PostgresServerError("kill: no postmaster.pid in \(dataDirectory)", log: serverLogTail())
        }
        let children = Self.childProcesses(of: pid)
        _ = sendSignal(SIGKILL, to: pid)
        let deadline = ContinuousClock.now + .seconds(30)
        while ([pid] + children).contains(where: Self.isAlive) {
            guard ContinuousClock.now < deadline else {
                throw PostgresServerError("kill: server processes of \(pid) still alive after 30s", log: serverLogTail())
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        state.withLock { $0.isRunning = false }
    }

    public var isRunning: Bool { state.withLock { $0.isRunning } }

    /// Stops the server and removes its directory. Idempotent; later calls to `start` fail.
    public func shutdown() {
        let first = state.withLock { state in
            defer { state.isShutDown = true }
            return !state.isShutDown
        }
        guard first else { return }
        _ = try? runScript("stop")
        state.withLock { $0.isRunning = false }
        try? FileManager.default.removeItem(atPath: directory)
        ServerRegistry.unregister(dataDirectory: dataDirectory)
    }

    // MARK: - Databases

    /// Settings for `database` (default: `self.database`), trust auth as `postgres`.
    public func settings(database: String? = nil, applicationName: String = "tests") -> ConnectionSettings {
        ConnectionSettings(
            host: "127.0.0.1", port: port, database: database ?? self.database, user: "postgres", password: nil,
            sslMode: "disable", applicationName: applicationName, connectTimeout: .seconds(5),
            statementTimeout: .seconds(60))
    }

    public var connectionSettings: ConnectionSettings { settings() }

    /// Creates a new, empty database and returns its name (`name`, or a unique one).
    @discardableResult
    public func makeDatabase(name: String? = nil) throws -> String {
        let name = name ?? "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let admin = try PostgresConnection(settings: settings(database: "postgres"))
        defer { admin.close() }
        try admin.execute("CREATE DATABASE \"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"")
        return name
    }

    /// Runs `sql` with `psql -At` (unaligned, tuples only; `ON_ERROR_STOP`) against `database`
    /// (default: `self.database`) and returns its standard output without the final newline.
    /// Throws with psql's error output on a non-zero exit.
    @discardableResult
    public func psql(_ sql: String, database: String? = nil) throws -> String {
        let output = try runScript(
            "psql", arguments: ["-At", "-v", "ON_ERROR_STOP=1", "-c", sql], database: database ?? self.database)
        return output.hasSuffix("\n") ? String(output.dropLast()) : output
    }

    /// Runs `sql` on a new connection and returns its rows (a convenience for assertions).
    public func query(_ sql: String, database: String? = nil) throws -> [[String?]] {
        let connection = try PostgresConnection(settings: settings(database: database))
        defer { connection.close() }
        return try connection.execute(sql).rows
    }

    /// Applies the repository's `migrations/` to `database`; returns the versions applied.
    @discardableResult
    public func migrate(database: String? = nil) throws -> [Int] {
        let connection = try PostgresConnection(settings: settings(database: database))
        defer { connection.close() }
        return try Migrator(directory: Self.repositoryRoot + "/migrations", logger: Logger(label: "tests.migrate"))
            .migrate(on: connection)
    }

    /// The last lines of the server log (for failure messages).
    public func serverLogTail(lines: Int = 30) -> String {
        guard let data = FileManager.default.contents(atPath: dataDirectory + "/server.log") else { return "(no server log)" }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    // MARK: - Internals

    /// Runs `scripts/postgres.sh action DATA PORT arguments…`; returns its standard output.
    @discardableResult
    private func runScript(_ action: String, arguments: [String] = [], database: String? = nil) throws -> String {
        if state.withLock({ $0.isShutDown }) && action != "stop" {
            throw PostgresServerError("\(action): the server was shut down", log: "")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PG_EXTRA_OPTS"] = serverOptions
        environment["PGDATABASE_NAME"] = database ?? self.database
        let result = try ChildProcess.run(
            "/bin/bash",
            [Self.repositoryRoot + "/scripts/postgres.sh", action, dataDirectory, String(port)] + arguments,
            environment: environment, scratchDirectory: directory)
        guard result.status == 0 else {
            throw PostgresServerError(
                "scripts/postgres.sh \(action) failed (exit \(result.status))", log: result.standardError + result.standardOutput)
        }
        return result.standardOutput
    }

    /// A port nobody listens on: bind 127.0.0.1:0, read the port the kernel chose, release it.
    public static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PostgresServerError("socket() failed: errno \(errno)", log: "") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw PostgresServerError("cannot bind a loopback port: errno \(errno)", log: "") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func postmasterPID(dataDirectory: String) -> pid_t? {
        guard let data = FileManager.default.contents(atPath: dataDirectory + "/postmaster.pid") else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").first.flatMap { pid_t($0) }
    }

    /// Processes whose parent is `pid` (from /proc).
    private static func childProcesses(of pid: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { pid_t($0) }.filter { processStat($0)?.parent == pid }
    }

    /// Alive and not a zombie (a zombie is gone for our purposes; nobody may reap it here).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard sendSignal(0, to: pid) == 0 else { return false }
        guard let stat = processStat(pid) else { return false }
        return stat.state != "Z" && stat.state != "X"
    }

    /// State and parent from /proc/PID/stat ("pid (comm) S ppid …"; comm may hold spaces).
    private static func processStat(_ pid: pid_t) -> (state: Character, parent: pid_t)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count >= 2, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        return (state, parent)
    }
}

/// A child process run to completion with `posix_spawn` and `waitpid`.
///
/// Not `Foundation.Process`: on Linux it learns that a child exited when a socket it passes to
/// the child closes, and `pg_ctl start` leaves the server running with whatever it inherited, so
/// `waitUntilExit()` could wait forever (swift-corelibs-foundation issue 4795). The script also
/// closes inherited descriptors before starting the server, for callers that do use `Process`.
public enum ChildProcess {
    public struct Output: Sendable {
        public let status: Int32
        public let standardOutput: String
        public let standardError: String
    }

    /// Runs `executable` with standard output and error going to two files in `scratchDirectory`
    /// (opened in the child only: no descriptor of ours can leak into another process), waits for
    /// it, and returns what it wrote.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
        scratchDirectory: String = NSTemporaryDirectory()
    ) throws -> Output {
        let stem = scratchDirectory + "/child-\(UUID().uuidString.prefix(8))"
        let outputPath = stem + ".out"
        let errorPath = stem + ".err"
        defer {
            unlink(outputPath)
            unlink(errorPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        // The child starts with no signal blocked and SIGTERM/SIGINT/SIGHUP at their defaults,
        // whatever the test process has done with them: a server it starts (redis-server)
        // inherits both through exec and would otherwise never see the signal that stops it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw PostgresServerError("cannot start \(executable): error \(spawned)", log: "") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw PostgresServerError("waitpid(\(pid)) failed: errno \(errno)", log: "") }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let exitCode = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Output(status: exitCode, standardOutput: contents(outputPath), standardError: contents(errorPath))
    }

    private static func contents(_ path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// `kill(2)`, under a name that the `kill()` method does not shadow.
private func sendSignal(_ signal: Int32, to pid: pid_t) -> Int32 {
    kill(pid, signal)
}

/// A test server that could not be started, stopped or queried; `log` holds what it printed.
public struct PostgresServerError: Error, CustomStringConvertible {
    public let message: String
    public let log: String

    public init(_ message: String, log: String) {
        self.message = message
        self.log = log
    }

    public var description: String { log.isEmpty ? message : "\(message)\n\(log)" }
}

/// The servers of this process, stopped at exit if a test leaked one (or used `shared`, which
/// lives until the end): without this, every test run would leave a postmaster behind.
private enum ServerRegistry {
    private static let servers = Mutex<[String: String]>([:])  // data directory → temp directory
    private static let installExitHook: Void = {
        atexit { ServerRegistry.stopAll() }
    }()

    static func register(dataDirectory: String, directory: String) {
        _ = installExitHook
        servers.withLock { $0[dataDirectory] = directory }
    }

    static func unregister(dataDirectory: String) {
        _ = servers.withLock { $0.removeValue(forKey: dataDirectory) }
    }

    /// At exit: a fast shutdown by signal (SIGINT to the postmaster; no child processes started
    /// from an exit handler), a bounded wait, then the directory goes.
    private static func stopAll() {
        let all = servers.withLock { servers in
            defer { servers.removeAll() }
            return servers
        }
        for (data, _) in all {
            if let pid = PostgresServer.postmasterPID(dataDirectory: data) { _ = sendSignal(SIGINT, to: pid) }
        }
        for (data, directory) in all {
            if let pid = PostgresServer.postmasterPID(dataDirectory: data) {
                let deadline = ContinuousClock.now + .seconds(10)
                while PostgresServer.isAlive(pid), ContinuousClock.now < deadline { usleep(20_000) }
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
