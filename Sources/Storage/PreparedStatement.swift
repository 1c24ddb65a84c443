/// A statement every pooled connection prepares once, before its first use.
public struct PreparedStatement: Sendable, Equatable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}
