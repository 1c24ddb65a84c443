/// A statement's result in text form: rows of optional strings (NULL is nil).
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows the command affected (`PQcmdTuples`), 0 when not applicable.
    public let affectedRows: Int

    public init(columns: [String], rows: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    public subscript(row: Int, column: Int) -> String? {
        rows[row][column]
    }
}

/// A statement parameter.
public enum PostgresParameter: Sendable {
    case null
    case text(String)
    /// Binary wire format with the value's type OID (e.g. `BinaryArray.parameter()`).
    case binary([UInt8], oid: UInt32)
}
