import Foundation
import Storage

/// What the naive peer reads from its environment, under the service's variable names so one
/// benchmark configuration drives both. Only the process environment is read (no `.env`): the
/// benchmark runner starts the peer with exactly the variables it means.
struct PeerSettings: Sendable {
    /// `AB_NAMESPACE` (required): events of another namespace are answered OK and not stored.
    var namespace: String
    /// `CONFIG_PATH`: the challenges file, read with the service's loader.
    var challengesPath = "config/challenges.json"
    /// `GRPC_HOST` / `GRPC_PORT`.
    var grpcHost = "0.0.0.0"
    var grpcPort = 6565
    /// `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, `DB_PASSWORD`, `DB_SSLMODE`.
    var database: ConnectionSettings
    /// `DB_MAX_OPEN_CONNS`: writer threads, each owning one connection (default 16).
    var connections = 16

    /// Reads and checks every variable; the first bad one throws `PeerConfigurationError`.
    init(environment: [String: String] = ProcessInfo.processInfo.environment) throws(PeerConfigurationError) {
        func text(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        func number(_ name: String, in range: ClosedRange<Int>) throws(PeerConfigurationError) -> Int? {
            guard let value = text(name) else { return nil }
            guard let parsed = Int(value.trimmingCharacters(in: .whitespaces)), range.contains(parsed) else {
                throw PeerConfigurationError(
                    "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), got \"\(value)\"")
            }
            return parsed
        }

        guard let namespace = text("AB_NAMESPACE") else {
            throw PeerConfigurationError("AB_NAMESPACE is required (the namespace whose events are stored)")
        }
        guard namespace.utf8.count <= 100 else {
            throw PeerConfigurationError("AB_NAMESPACE must be at most 100 bytes (it is stored in a VARCHAR(100) column)")
        }
        self.namespace = namespace
        challengesPath = text("CONFIG_PATH") ?? challengesPath
        grpcHost = text("GRPC_HOST") ?? grpcHost
        grpcPort = try number("GRPC_PORT", in: 0...65_535) ?? grpcPort
        connections = try number("DB_MAX_OPEN_CONNS", in: 1...1_000) ?? connections

        let sslMode = text("DB_SSLMODE") ?? "disable"
        let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
        guard sslModes.contains(sslMode) else {
            throw PeerConfigurationError(
                "DB_SSLMODE must be one of \(sslModes.joined(separator: ", ")), got \"\(sslMode)\"")
        }
        database = ConnectionSettings(
            host: text("DB_HOST") ?? "localhost",
            port: try number("DB_PORT", in: 1...65_535) ?? 5432,
            database: text("DB_NAME") ?? "challenge_db",
            user: text("DB_USER") ?? "postgres",
            password: text("DB_PASSWORD"),
            sslMode: sslMode,
            applicationName: "naive-peer")
    }
}

/// A setting the peer cannot start with; main prints it and exits with status 2.
struct PeerConfigurationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
