import CLibPQ

/// One libpq connection. The only type (with the pool, through it) that touches libpq.
///
/// Every call blocks the calling thread until the server answers: call it only from threads the
/// caller owns (flush workers, start-up threads), never from the Swift cooperative pool.
///
/// `@unchecked Sendable`: a connection is used by one thread at a time. The `ConnectionPool`
/// hands it from the thread that opened it to the thread that checks it out, under its mutex,
/// which orders the two uses; nothing else shares it.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    public private(set) var preparedStatements: Set<String> = []
    public let createdAt: ContinuousClock.Instant
    public let settings: ConnectionSettings
    /// When it was last handed back to the pool (for the idle-time limit).
    var lastReturnedAt: ContinuousClock.Instant

    /// Opens a connection; throws `PostgresError(.connect)` naming the server, never the password.
    public init(settings: ConnectionSettings) throws {
        self.settings = settings
        self.createdAt = .now
        self.lastReturnedAt = .now
        let connection = PQconnectdb(settings.conninfo)
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let reason = connection.map { Self.text(PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(connection)
            throw PostgresError(
                kind: .connect, sqlState: nil,
                message: "cannot connect to \(settings.redactedDescription): \(reason.trimmingTrailingWhitespace())")
        }
        // NOTICEs (e.g. "already exists, skipping") are not errors; keep them off stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
    }

    deinit { close() }

    /// Closes the connection (once; later calls do nothing).
    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    public var isHealthy: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    public var backendPID: Int32 {
        handle.map { PQbackendPID($0) } ?? 0
    }

    /// Runs SQL through the simple protocol (several statements allowed; no parameters).
    @discardableResult
    public func execute(_ sql: String) throws -> QueryResult {
        let connection = try open()
        return try consume(PQexec(connection, sql), on: connection)
    }

    /// Runs one statement with parameters (text results).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresParameter]) throws -> QueryResult {
        let connection = try open()
        return try withParameters(parameters) { count, types, values, lengths, formats in
            try consume(PQexecParams(connection, sql, count, types, values, lengths, formats, 0), on: connection)
        }
    }

    /// Prepares a named statement on this connection (once per connection).
    public func prepare(_ name: String, _ sql: String) throws {
        let connection = try open()
        _ = try consume(PQprepare(connection, name, sql, 0, nil), on: connection)
        preparedStatements.insert(name)
    }

    /// Runs a statement prepared on this connection.
    @discardableResult
    public func executePrepared(_ name: String, _ parameters: [PostgresParameter]) throws -> QueryResult {
        let connection = try open()
        return try withParameters(parameters) { count, _, values, lengths, formats in
            try consume(PQexecPrepared(connection, name, count, values, lengths, formats, 0), on: connection)
        }
    }

    // MARK: - Internals

    private func open() throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(kind: .connectionLost, sqlState: nil, message: "connection is closed")
        }
        return handle
    }

    /// Turns a PGresult into a `QueryResult` or a `PostgresError`, and frees it.
    private func consume(_ result: OpaquePointer?, on connection: OpaquePointer) throws -> QueryResult {
        guard let result else {
            throw PostgresError(
                kind: PQstatus(connection) == CONNECTION_OK ? .query : .connectionLost, sqlState: nil,
                message: Self.text(PQerrorMessage(connection)).trimmingTrailingWhitespace())
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        default:
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { Self.text($0) }
            var message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { Self.text($0) }
                ?? Self.text(PQresultErrorMessage(result))
            if let detail = PQresultErrorField(result, Int32(UInt8(ascii: "D"))) { message += " (\(Self.text(detail)))" }
            let lost = PQstatus(connection) != CONNECTION_OK
            throw PostgresError(
                kind: lost ? .connectionLost : .query, sqlState: sqlState,
                message: message.trimmingTrailingWhitespace())
        }
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { Self.text(PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<Int32(rowCount) {
            var row: [String?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<Int32(columnCount) {
                row.append(PQgetisnull(result, r, c) == 1 ? nil : Self.text(PQgetvalue(result, r, c)))
            }
            rows.append(row)
        }
        let affected = Int(Self.text(PQcmdTuples(result))) ?? 0
        return QueryResult(columns: columns, rows: rows, affectedRows: affected)
    }

    /// Lays all parameter bytes out in one buffer and passes libpq pointers into it.
    private func withParameters<T>(
        _ parameters: [PostgresParameter],
        _ body: (
            Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
            UnsafePointer<Int32>?
        ) throws -> T
    ) throws -> T {
        var storage: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var types: [Oid] = []
        var total = 1
        for parameter in parameters {
            switch parameter {
            case .null: break
            case .text(let text): total += text.utf8.count + 1
            case .binary(let bytes, _): total += bytes.count
            }
        }
        storage.reserveCapacity(total)
        for parameter in parameters {
            switch parameter {
            case .null:
                offsets.append(-1)
                lengths.append(0)
                formats.append(0)
                types.append(0)
            case .text(let text):
                offsets.append(storage.count)
                storage.append(contentsOf: text.utf8)
                storage.append(0)
                lengths.append(Int32(text.utf8.count))
                formats.append(0)
                types.append(0)
            case .binary(let bytes, let oid):
                offsets.append(storage.count)
                storage.append(contentsOf: bytes)
                lengths.append(Int32(bytes.count))
                formats.append(1)
                types.append(oid)
            }
        }
        storage.append(0)  // never empty, so baseAddress exists
        return try storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            let values: [UnsafePointer<CChar>?] = offsets.map {
                $0 < 0 ? nil : (base + $0).assumingMemoryBound(to: CChar.self)
            }
            return try body(Int32(parameters.count), types, values, lengths, formats)
        }
    }

    /// A C string from libpq as a Swift string (bytes up to the NUL).
    static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var s = Substring(self)
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
