import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real Redis for tests: `redis-server` on a free loopback port with its files in a fresh
/// temporary directory, started and stopped through `scripts/redis.sh` (the script `make run`
/// uses). `stop()` then `start()` is a restart on the same port, with nothing kept (no
/// persistence), as a crashed or restarted Redis would come back. The server is stopped and
/// its directory removed by `shutdown()`, by `deinit`, or when the test process exits.
///
/// With `password`, the server requires it (`requirepass`, set as soon as it answers, and again
/// after each `start()`); `cli` logs in with it.
public final class RedisServer: Sendable {
    public let directory: String
    public let port: Int
    /// The default user's password (`requirepass`); nil: none.
    public let password: String?
    /// `redis://127.0.0.1:PORT/0`, for `REDIS_URL` (never with the password).
    public var url: String { "redis://127.0.0.1:\(port)/0" }

    public init(password: String? = nil) throws {
        directory = NSTemporaryDirectory() + "redis-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try PostgresServer.freeLoopbackPort()
        self.password = password
        RedisRegistry.register(directory)
        try start()
    }

    deinit {
        shutdown()
    }

    public func start() throws {
        try run("start")
        if let password {
            // scripts/redis.sh waits for a PING answered without a password: set it after.
            let set = try cli(["CONFIG", "SET", "requirepass", password], authenticated: false)
            guard set == "OK" else { throw PostgresServerError("CONFIG SET requirepass answered \(set)", log: "") }
        }
    }

    public func stop() throws {
        try run("stop")
    }

    /// Sends `signal` to the running server (SIGSTOP hangs it: connections stay open, nothing
    /// answers; SIGCONT resumes it).
    public func signal(_ signal: Int32) throws {
        let text = try String(contentsOfFile: directory + "/redis.pid", encoding: .utf8)
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, signal) == 0 else {
            throw PostgresServerError("cannot signal redis (pid file: \(text))", log: "")
        }
    }

    /// Stops the server and removes its directory. Idempotent.
    public func shutdown() {
        try? run("stop")
        RedisRegistry.unregister(directory)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `redis-cli` against the server (as the default user, with `password` if any) and
    /// returns what it printed, trimmed.
    public func cli(_ arguments: String...) throws -> String {
        try cli(arguments, authenticated: true)
    }

    private func cli(_ arguments: [String], authenticated: Bool) throws -> String {
        // The password through the environment (REDISCLI_AUTH), not the command line.
        var environment = ProcessInfo.processInfo.environment
        if authenticated, let password { environment["REDISCLI_AUTH"] = password }
        let result = try ChildProcess.run(
            "/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", "\(port)"] + arguments,
            environment: environment, scratchDirectory: directory)
        guard result.status == 0 else {
            throw PostgresServerError("redis-cli \(arguments.joined(separator: " ")) exited \(result.status)", log: result.standardError)
        }
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func run(_ action: String) throws {
        let result = try ChildProcess.run(
            "/bin/bash", [PostgresServer.repositoryRoot + "/scripts/redis.sh", action, directory, "\(port)"],
            environment: ProcessInfo.processInfo.environment, scratchDirectory: directory)
        guard result.status == 0 else {
            throw PostgresServerError("scripts/redis.sh \(action) exited \(result.status)", log: result.standardError)
        }
    }
}

/// The Redis servers of this process, killed at exit if a test leaked one.
private enum RedisRegistry {
    private static let directories = Mutex<Set<String>>([])
    private static let installExitHook: Void = {
        atexit { RedisRegistry.stopAll() }
    }()

    static func register(_ directory: String) {
        _ = installExitHook
        _ = directories.withLock { $0.insert(directory) }
    }

    static func unregister(_ directory: String) {
        _ = directories.withLock { $0.remove(directory) }
    }

    private static func stopAll() {
        for directory in directories.withLock({ $0 }) {
            if let data = FileManager.default.contents(atPath: directory + "/redis.pid"),
                let pid = pid_t(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            {
                kill(pid, SIGTERM)
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
