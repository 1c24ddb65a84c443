/// A failure talking to PostgreSQL, with the server's SQLSTATE when it sent one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// Could not open a connection.
        case connect
        /// The server refused a statement (see `sqlState`).
        case query
        /// The connection broke during a call, or was already closed.
        case connectionLost
        /// No pooled connection became free in time (the pool's acquire timeout).
        case timeout
    }

    public let kind: Kind
    /// The five-character SQLSTATE the server sent (`PG_DIAG_SQLSTATE`), if any.
    public let sqlState: String?
    /// The primary message (`PG_DIAG_MESSAGE_PRIMARY`), or libpq's own message.
    public let message: String
    /// The server's optional detail line (`PG_DIAG_MESSAGE_DETAIL`), e.g. the duplicate key.
    public let detail: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
    }

    /// The connection, not the statement, is at fault: the same work may succeed on a fresh one.
    /// Connect failures, lost connections, SQLSTATE class 08 (connection exception) and the
    /// server going away: 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now.
    public var isConnectionFailure: Bool {
        switch kind {
        case .connect, .connectionLost:
            return true
        case .timeout:
            return false
        case .query:
            guard let sqlState else { return false }
            return sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
        }
    }

    /// The data broke a rule (SQLSTATE class 22 data exception or 23 integrity constraint
    /// violation): sending the same rows again fails the same way.
    public var isDataError: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }

    public var description: String {
        var text = message
        if let detail { text += " (\(detail))" }
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        return text
    }
}
