import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection: the only type that calls libpq (the pool uses it, never `PGconn`).
///
/// Every call blocks the calling thread until the server answers, so call it only from threads
/// the caller owns (flush workers, start-up threads), never from the Swift cooperative pool.
///
/// `@unchecked Sendable`: a connection is used by one thread at a time, never concurrently.
/// It crosses threads only through `ConnectionPool`, which hands it over under its mutex (from
/// the warm-up thread that opened it, or from the thread that returned it, to the next
/// borrower); the mutex orders the two uses. Whoever holds a connection outside the pool must
/// not share it.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    /// The backend's cancel key, for `DB_CALL_TIMEOUT` (nil without one).
    private var cancelKey: CancelKey?
    /// Names this connection has prepared (`prepare`).
    public private(set) var preparedStatements: Set<String> = []
    public let createdAt: ContinuousClock.Instant
    public let settings: ConnectionSettings

    /// Opens a connection (`PQconnectdb`, blocking up to `settings.connectTimeout`).
    /// Throws `PostgresError(.connect)` naming `user@host:port/database`, never the password.
    public init(settings: ConnectionSettings) throws {
        self.settings = settings
        self.createdAt = .now
        guard let connection = PQconnectdb(settings.conninfo) else {
            throw PostgresError(kind: .connect, message: "cannot connect to \(settings.redactedDescription): out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = Self.string(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(
                kind: .connect, message: "cannot connect to \(settings.redactedDescription): \(reason.trimmedLines)")
        }
        // NOTICEs ("relation already exists, skipping", …) are not errors; keep them off stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
        if settings.callTimeout != nil { cancelKey = CancelKey(connection) }
    }

    deinit { close() }

    /// Closes the connection (`PQfinish`, once; later calls do nothing).
    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
        cancelKey = nil
        preparedStatements.removeAll()
    }

    /// libpq still considers the connection good (`PQstatus == CONNECTION_OK`). This reflects only
    /// what libpq has seen: a backend the server closed while idle shows up after `checkHealth()`
    /// or the next statement.
    public var isHealthy: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Reads, without blocking and without a round trip, whatever the server sent while the
    /// connection was idle; returns `isHealthy` afterwards. A backend that was terminated
    /// (`pg_terminate_backend`, a server restart) sent its last error and closed the socket,
    /// so this turns such a connection unhealthy before a statement is lost on it.
    /// Cost: one `poll` system call when nothing arrived.
    public func checkHealth() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        let socket = PQsocket(handle)
        guard socket >= 0 else { return false }
        // The farewell error and the end of the stream may arrive apart: read until quiet.
        for _ in 0..<4 {
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            if PQconsumeInput(handle) == 0 { return false }
            while let notification = PQnotifies(handle) { PQfreemem(notification) }
        }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// A transaction is open (or failed and not yet rolled back), or a command is running:
    /// `PQtransactionStatus` is not `PQTRANS_IDLE`. The pool does not keep such a connection.
    public var isInTransaction: Bool {
        guard let handle else { return false }
        return PQtransactionStatus(handle) != PQTRANS_IDLE
    }

    /// The server process serving this connection (0 when closed).
    public var backendPID: Int32 {
        handle.map { PQbackendPID($0) } ?? 0
    }

    /// Runs SQL through the simple query protocol (`PQexec`): several statements are allowed,
    /// parameters are not. The result is the last statement's.
    @discardableResult
    public func execute(_ sql: String) throws -> QueryResult {
        let connection = try openHandle()
        return try bounded(connection) { try consume(PQexec(connection, sql), on: connection) }
    }

    /// Runs one statement with parameters (`PQexecParams`); results come back as text.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresParameter]) throws -> QueryResult {
        let connection = try openHandle()
        return try withBoundParameters(parameters) { count, types, values, lengths, formats in
            try bounded(connection) {
                try consume(PQexecParams(connection, sql, count, types, values, lengths, formats, 0), on: connection)
            }
        }
    }

    /// Prepares a named statement on this connection (`PQprepare`); parameter types are
    /// inferred or taken from casts in `sql`.
    public func prepare(_ name: String, _ sql: String) throws {
        let connection = try openHandle()
        _ = try bounded(connection) { try consume(PQprepare(connection, name, sql, 0, nil), on: connection) }
        preparedStatements.insert(name)
    }

    /// Runs a statement prepared on this connection (`PQexecPrepared`). The hot path of a
    /// flush: parameter bytes are passed to libpq in place (no copy), and the pointer, length
    /// and format arrays live on the stack for the call.
    @discardableResult
    public func executePrepared(_ name: String, _ parameters: [PostgresParameter]) throws -> QueryResult {
        let connection = try openHandle()
        return try withBoundParameters(parameters) { count, _, values, lengths, formats in
            try bounded(connection) {
                try consume(PQexecPrepared(connection, name, count, values, lengths, formats, 0), on: connection)
            }
        }
    }

    // MARK: - The call bound

    /// Runs one blocking libpq call under `settings.callTimeout`: past it, `CallWatchdog` shuts
    /// the socket down, the call returns, and this throws `.connectionLost` saying so (the
    /// connection is closed: the pool replaces it). A statement the server had finished meanwhile
    /// may have committed: callers treat a lost COMMIT as an unknown outcome, as for any cut.
    private func bounded<T>(_ connection: OpaquePointer, _ call: () throws -> T) throws -> T {
        guard let timeout = settings.callTimeout else { return try call() }
        let ticket = CallWatchdog.shared.begin(socket: PQsocket(connection), cancelKey: cancelKey, timeout: timeout)
        let outcome = Result { try call() }
        guard CallWatchdog.shared.end(ticket) else { return try outcome.get() }
        close()
        throw PostgresError(
            kind: .connectionLost,
            message: "no answer from \(settings.redactedDescription) within \(ConnectionSettings.shown(timeout)) (DB_CALL_TIMEOUT): the connection was abandoned and its statement cancelled")
    }

    // MARK: - Results

    private func openHandle() throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(kind: .connectionLost, message: "connection to \(settings.redactedDescription) is closed")
        }
        return handle
    }

    /// Turns a `PGresult` into a `QueryResult` or a `PostgresError`, and frees it.
    private func consume(_ result: OpaquePointer?, on connection: OpaquePointer) throws -> QueryResult {
        guard let result else {
            // No result at all: out of memory or the connection is gone.
            throw PostgresError(
                kind: PQstatus(connection) == CONNECTION_OK ? .query : .connectionLost,
                message: Self.string(PQerrorMessage(connection)).trimmedLines)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.decode(result)
        default:
            throw error(from: result, on: connection)
        }
    }

    private func error(from result: OpaquePointer, on connection: OpaquePointer) -> PostgresError {
        // PG_DIAG_SQLSTATE, _MESSAGE_PRIMARY and _MESSAGE_DETAIL are character macros, which
        // Swift does not import: 'C', 'M' and 'D'.
        let sqlState = Self.field(result, "C")
        let primary = Self.field(result, "M")
        let detail = Self.field(result, "D")
        let message = primary ?? Self.string(PQresultErrorMessage(result)).trimmedLines
        let lost = PQstatus(connection) != CONNECTION_OK
        return PostgresError(
            kind: lost ? .connectionLost : .query, sqlState: sqlState,
            message: message.isEmpty ? Self.string(PQerrorMessage(connection)).trimmedLines : message,
            detail: detail)
    }

    private static func field(_ result: OpaquePointer, _ code: Unicode.Scalar) -> String? {
        guard let value = PQresultErrorField(result, Int32(code.value)) else { return nil }
        return string(value)
    }

    private static func decode(_ result: OpaquePointer) -> QueryResult {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        var columns: [String] = []
        columns.reserveCapacity(Int(columnCount))
        for column in 0..<columnCount { columns.append(string(PQfname(result, column))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let bytes = UnsafeRawPointer(PQgetvalue(result, row, column)!).assumingMemoryBound(to: UInt8.self)
                    let length = Int(PQgetlength(result, row, column))
                    values.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                }
            }
            rows.append(values)
        }
        let affected = Int(string(PQcmdTuples(result))) ?? 0
        return QueryResult(columns: columns, rows: rows, affectedRows: affected)
    }

    // MARK: - Parameters

    /// Calls `body` with libpq's parallel parameter arrays. The type, length and format arrays
    /// are stack allocations; each value pointer points into the parameter's own storage
    /// (`withCString` / `withUnsafeBufferPointer`), so no parameter bytes are copied.
    private func withBoundParameters<T>(
        _ parameters: [PostgresParameter],
        _ body: (
            Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
            UnsafePointer<Int32>?
        ) throws -> T
    ) throws -> T {
        let count = parameters.count
        if count == 0 { return try body(0, nil, nil, nil, nil) }
        return try withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { values in
            try withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * count) { integers in
                try withUnsafeTemporaryAllocation(of: Oid.self, capacity: count) { types in
                    let lengths = UnsafeMutableBufferPointer(rebasing: integers[0..<count])
                    let formats = UnsafeMutableBufferPointer(rebasing: integers[count..<2 * count])
                    for (index, parameter) in parameters.enumerated() {
                        values[index] = nil
                        switch parameter {
                        case .null, .text:
                            lengths[index] = 0  // ignored by libpq for text and NULL
                            formats[index] = 0
                            types[index] = 0  // let the server infer it
                        case .binary(let bytes, let oid):
                            lengths[index] = Int32(bytes.count)
                            formats[index] = 1
                            types[index] = oid
                        }
                    }
                    // Any valid address will do for an empty binary value (length 0); nil would mean NULL.
                    let emptyValue = UnsafeRawPointer(types.baseAddress!).assumingMemoryBound(to: CChar.self)
                    return try Self.pinValues(parameters, from: 0, into: values, emptyValue: emptyValue) {
                        try body(
                            Int32(count), UnsafePointer(types.baseAddress), UnsafePointer(values.baseAddress),
                            UnsafePointer(lengths.baseAddress), UnsafePointer(formats.baseAddress))
                    }
                }
            }
        }
    }

    /// Pins parameter `index`'s bytes, stores their address in `values`, and recurses: all
    /// values stay pinned while `body` runs. The depth is the parameter count (a handful).
    private static func pinValues<T>(
        _ parameters: [PostgresParameter], from index: Int,
        into values: UnsafeMutableBufferPointer<UnsafePointer<CChar>?>, emptyValue: UnsafePointer<CChar>,
        _ body: () throws -> T
    ) throws -> T {
        guard index < parameters.count else { return try body() }
        switch parameters[index] {
        case .null:
            return try pinValues(parameters, from: index + 1, into: values, emptyValue: emptyValue, body)
        case .text(let text):
            return try text.withCString { pointer in
                values[index] = pointer
                return try pinValues(parameters, from: index + 1, into: values, emptyValue: emptyValue, body)
            }
        case .binary(let bytes, _):
            return try bytes.withUnsafeBufferPointer { buffer in
                values[index] = buffer.baseAddress.map {
                    UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)
                } ?? emptyValue
                return try pinValues(parameters, from: index + 1, into: values, emptyValue: emptyValue, body)
            }
        }
    }

    // MARK: - C strings

    /// A NUL-terminated string from libpq, decoded as UTF-8 up to the NUL ("" for nil).
    static func string(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        let bytes = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self)
        return String(decoding: UnsafeBufferPointer(start: bytes, count: strlen(pointer)), as: UTF8.self)
    }
}

extension String {
    /// libpq's multi-line messages on one line, without the trailing newline.
    fileprivate var trimmedLines: String {
        split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: " \t") }.joined(separator: " ")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var slice = self
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return slice
    }
}
