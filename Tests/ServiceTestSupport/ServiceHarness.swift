import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GameEvents
import GameEventsGRPC
import Storage
import TestSupport
import Testing

public typealias LoginClient = Accelbyte_Iam_Account_V1_UserAuthenticationUserLoggedInService.Client<HTTP2ClientTransport.Posix>
public typealias StatClient = Accelbyte_Social_Statistic_V1_StatisticStatItemUpdatedService.Client<HTTP2ClientTransport.Posix>

/// A running `event-handler serve` (or another server of the package speaking the same gRPC
/// methods and settings: `naive-peer`) against a database of a test PostgreSQL, plus what a test
/// needs around it: a challenges file, the gRPC port, and clients.
public final class ServiceHarness: Sendable {
    public let server: PostgresServer
    public let database: String
    public let grpcPort: Int
    /// HTTP `/metrics`, `/healthz`, `/readyz`.
    public let metricsPort: Int
    public let namespace: String
    public let workDirectory: String
    public let process: ServiceProcess
    /// The environment the service runs with (another instance can be started from it).
    public let environment: [String: String]

    /// Writes `catalogJSON`, runs `beforeMigrate` on the empty database, migrates (through
    /// `event-handler migrate`, run in an empty directory: the built-in migrations), runs
    /// `prepare` on the fresh table, then starts `executable arguments` (the service by
    /// default) and (unless `waitForReady` is false) waits until it logs `readyLine`.
    public init(
        server: PostgresServer, catalogJSON: String, namespace: String = "test-ns",
        environment extra: [String: String] = [:], waitForReady: Bool = true,
        executable: String = "event-handler", arguments: [String] = ["serve"], readyLine: String = "] ready",
        prepare: (PostgresConnection) throws -> Void = { _ in },
        // After `prepare`, so a trailing closure still means `prepare`.
        beforeMigrate: (PostgresConnection) throws -> Void = { _ in }
    ) throws {
        self.server = server
        self.namespace = namespace
        database = try server.makeDatabase()
        grpcPort = try PostgresServer.freeLoopbackPort()
        var httpPort = try PostgresServer.freeLoopbackPort()
        while httpPort == grpcPort { httpPort = try PostgresServer.freeLoopbackPort() }
        metricsPort = httpPort
        workDirectory = NSTemporaryDirectory() + "eh-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        try catalogJSON.write(toFile: workDirectory + "/challenges.json", atomically: true, encoding: .utf8)

        var environment = [
            "AB_NAMESPACE": namespace,
            "CONFIG_PATH": workDirectory + "/challenges.json",
            "DB_HOST": "127.0.0.1", "DB_PORT": String(server.port), "DB_NAME": database, "DB_USER": "postgres",
            "GRPC_HOST": "127.0.0.1", "GRPC_PORT": String(grpcPort),
            "METRICS_HOST": "127.0.0.1", "METRICS_PORT": String(metricsPort),
            "BUFFER_FLUSH_INTERVAL": "200ms", "FLUSH_WORKERS": "2", "LOG_LEVEL": "info",
        ]
        environment.merge(extra) { $1 }
        self.environment = environment

        let connection = try PostgresConnection(settings: server.settings(database: database))
        defer { connection.close() }
        try beforeMigrate(connection)
        let empty = workDirectory + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let migrate = try ServiceProcess(arguments: ["migrate"], environment: environment, directory: empty)
        let status = try migrate.waitForExit(timeout: .seconds(60))
        guard status == 0 else { throw ServiceProcessError("migrate exited with \(status)", log: migrate.log) }
        try prepare(connection)

        process = try ServiceProcess(executable: executable, arguments: arguments, environment: environment)
        if waitForReady { try process.waitForLog(readyLine) }
    }

    /// Starts another instance on the same database and settings, with ports of its own; it is
    /// ready when this returns. Returns it and its operations client.
    public func startInstance(_ overrides: [String: String] = [:]) throws -> (ServiceProcess, OperationsClient) {
        var environment = environment
        let grpc = try PostgresServer.freeLoopbackPort()
        var http = try PostgresServer.freeLoopbackPort()
        while http == grpc { http = try PostgresServer.freeLoopbackPort() }
        environment["GRPC_PORT"] = String(grpc)
        environment["METRICS_PORT"] = String(http)
        environment.merge(overrides) { $1 }
        let process = try ServiceProcess(arguments: ["serve"], environment: environment)
        try process.waitForLog("] ready")
        return (process, OperationsClient(port: http))
    }

    /// The operations endpoints of this service.
    public var http: OperationsClient { OperationsClient(port: metricsPort) }

    deinit {
        process.terminate()
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    /// Runs `body` with a gRPC client connected to the service.
    public func withClients<T: Sendable>(_ body: (LoginClient, StatClient) async throws -> T) async throws -> T {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: grpcPort), transportSecurity: .plaintext)
        ) { client in
            try await body(LoginClient(wrapping: client), StatClient(wrapping: client))
        }
    }

    /// SIGTERM, then the exit status.
    public func stop() throws -> Int32 {
        process.signal(SIGTERM)
        return try process.waitForExit()
    }

    /// The table as (user|goal → row).
    public func tableRows() throws -> [String: ExpectedRow] {
        var rows: [String: ExpectedRow] = [:]
        for row in try server.query(
            "SELECT user_id, goal_id, challenge_id, progress, status, completed_at IS NOT NULL, is_active, namespace FROM user_goal_progress",
            database: database)
        {
            rows["\(row[0]!)|\(row[1]!)"] = ExpectedRow(
                challenge: row[2]!, progress: Int(row[3]!)!, status: row[4]!, completedAtSet: row[5] == "t",
                active: row[6] == "t")
        }
        return rows
    }

    /// Expects the table to hold exactly `expected`, and no row at all for `absentUsers`.
    public func expectTable(
        _ expected: [String: ExpectedRow], absentUsers: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let actual = try tableRows()
        let diff = differences(expected: expected, actual: actual)
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))", sourceLocation: sourceLocation)
        for user in absentUsers {
            #expect(!actual.keys.contains { $0.hasPrefix("\(user)|") }, "rows for \(user)", sourceLocation: sourceLocation)
        }
    }
}

extension TestEvent {
    /// A login from another namespace: acknowledged, never stored (its user is "foreign-user").
    public static var foreignNamespaceLogin: Accelbyte_Iam_Account_V1_UserLoggedIn {
        var message = TestEvent.login(id: "foreign-1", user: "foreign-user").loginMessage!
        message.namespace = "someone-else"
        return message
    }

    public var loginMessage: Accelbyte_Iam_Account_V1_UserLoggedIn? {
        guard case .login(let id, let user) = self else { return nil }
        return .with {
            $0.id = id
            $0.namespace = "test-ns"
            $0.userID = user
            $0.payload.userAccount.userID = user
        }
    }

    public var statMessage: Accelbyte_Social_Statistic_V1_StatItemUpdated? {
        guard case .stat(let id, let user, let code, let value, let inc) = self else { return nil }
        return .with {
            $0.id = id
            $0.namespace = "test-ns"
            $0.userID = user
            $0.payload.statCode = code
            $0.payload.userID = user
            $0.payload.latestValue = value
            $0.payload.inc = inc
        }
    }

    /// Sends the event; `timeout` sets the call's deadline (`grpc-timeout`).
    public func send(login: LoginClient, stat: StatClient, timeout: Duration? = nil) async throws {
        var options = CallOptions.defaults
        options.timeout = timeout
        if let message = loginMessage {
            _ = try await login.onMessage(message, options: options)
        } else if let message = statMessage {
            _ = try await stat.onMessage(message, options: options)
        }
    }
}

/// Compares the table with the model; returns human-readable differences (at most `limit`).
public func differences(expected: [String: ExpectedRow], actual: [String: ExpectedRow], limit: Int = 15) -> [String] {
    var out: [String] = []
    for key in Set(expected.keys).union(actual.keys).sorted() where expected[key] != actual[key] {
        out.append("\(key): expected \(expected[key].map { "\($0)" } ?? "no row"), table has \(actual[key].map { "\($0)" } ?? "no row")")
        if out.count >= limit { break }
    }
    return out
}
