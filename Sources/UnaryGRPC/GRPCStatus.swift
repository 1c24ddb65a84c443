/// A gRPC status: the code and message a call ends with (`grpc-status`, `grpc-message`).
public struct GRPCStatus: Sendable, Equatable, Error {
    /// The codes of the gRPC specification (doc/statuscodes.md), with their wire numbers.
    public enum Code: Int, Sendable, CaseIterable {
        case ok = 0
        case cancelled = 1
        case unknown = 2
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case alreadyExists = 6
        case permissionDenied = 7
        case resourceExhausted = 8
        case failedPrecondition = 9
        case aborted = 10
        case outOfRange = 11
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case dataLoss = 15
        case unauthenticated = 16

        /// The name Go's `codes.Code.String()` gives, which go-grpc-prometheus puts in the
        /// `grpc_code` label: the incumbent's dashboards match on these.
        public var goName: String {
            switch self {
            case .ok: "OK"
            case .cancelled: "Canceled"
            case .unknown: "Unknown"
            case .invalidArgument: "InvalidArgument"
            case .deadlineExceeded: "DeadlineExceeded"
            case .notFound: "NotFound"
            case .alreadyExists: "AlreadyExists"
            case .permissionDenied: "PermissionDenied"
            case .resourceExhausted: "ResourceExhausted"
            case .failedPrecondition: "FailedPrecondition"
            case .aborted: "Aborted"
            case .outOfRange: "OutOfRange"
            case .unimplemented: "Unimplemented"
            case .internal: "Internal"
            case .unavailable: "Unavailable"
            case .dataLoss: "DataLoss"
            case .unauthenticated: "Unauthenticated"
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    public static let ok = GRPCStatus(.ok)

    /// `message` as `grpc-message` carries it: UTF-8, with every byte outside printable ASCII
    /// and `%` itself percent-encoded (gRPC over HTTP/2, "Responses").
    public var encodedMessage: String {
        var needsEncoding = false
        for byte in message.utf8 where !Self.isUnreserved(byte) {
            needsEncoding = true
            break
        }
        guard needsEncoding else { return message }
        var encoded: [UInt8] = []
        encoded.reserveCapacity(message.utf8.count * 3)
        for byte in message.utf8 {
            if Self.isUnreserved(byte) {
                encoded.append(byte)
            } else {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(Self.hexDigits[Int(byte >> 4)])
                encoded.append(Self.hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte <= 0x7e && byte != UInt8(ascii: "%")
    }
}
