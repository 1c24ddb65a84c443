/// A failure talking to PostgreSQL, with the server's SQLSTATE when it sent one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// Could not open a connection.
        case connect
        /// The server refused a statement (see `sqlState`).
        case query
        /// The connection broke during a call.
        case connectionLost
        /// No connection became free in time (the pool's acquire timeout).
        case timeout
    }

    public let kind: Kind
    public let sqlState: String?
    public let message: String

    public init(kind: Kind, sqlState: String?, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    /// The connection, not the statement, is at fault: retrying on a fresh one may succeed.
    /// Connect failures, lost connections, SQLSTATE class 08 and the server shutting down
    /// (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now).
    public var isConnectionFailure: Bool {
        switch kind {
        case .connect, .connectionLost: return true
        case .timeout: return false
        case .query:
            guard let sqlState else { return false }
            return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
        }
    }

    /// The data broke a rule (SQLSTATE class 22 data exception or 23 integrity violation):
    /// retrying the same rows fails the same way.
    public var isDataError: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }

    public var description: String {
        if let sqlState { return "\(message) (SQLSTATE \(sqlState))" }
        return message
    }
}
