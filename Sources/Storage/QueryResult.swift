/// A statement's result in text form: rows of optional strings (SQL NULL is nil).
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows the command affected (`PQcmdTuples`); 0 when it does not apply (e.g. DDL).
    public let affectedRows: Int

    public init(columns: [String], rows: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    /// The value at `row`, `column`; traps when out of range, like an array.
    public subscript(row: Int, column: Int) -> String? {
        rows[row][column]
    }
}
