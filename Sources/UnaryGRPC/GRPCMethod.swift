import NIOCore

/// A method the server answers, by its full name, and the function that answers it.
///
/// Handlers run on the connection's event loop, synchronously, as soon as the request message
/// is complete: they must not block. A handler answers through the call it is given, at once
/// or later from any thread (after a Redis reply or a flush's commit, say).
public struct GRPCMethod: Sendable {
    public enum Handler: Sendable {
        /// One request message, one answer (`GRPCCall.respond` or `.fail`).
        case unary(@Sendable (GRPCCall) -> Void)
        /// One request message, any number of response messages, then a status.
        case serverStreaming(@Sendable (GRPCServerStream) -> Void)
    }

    /// The package-qualified service name, `accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService`.
    public let service: String
    /// The method's name, `OnMessage`.
    public let name: String
    public let handler: Handler
    /// Whether the call's time also goes to `grpc_request_duration_seconds{method}` (the
    /// service's event-latency alert reads it for the event methods only).
    public let recordsRequestDuration: Bool
    /// Whether a call needs the bearer token when one is configured (`GRPCSecurity`); health
    /// checks do not, so probes work without it.
    public let requiresToken: Bool

    public init(
        service: String, name: String, recordsRequestDuration: Bool = false, requiresToken: Bool = true, handler: Handler
    ) {
        self.service = service
        self.name = name
        self.handler = handler
        self.recordsRequestDuration = recordsRequestDuration
        self.requiresToken = requiresToken
    }

    /// The `:path` of its calls: `/service/name`.
    public var path: String { "/\(service)/\(name)" }

    /// go-grpc-prometheus's `grpc_type` label.
    var typeLabel: String {
        switch handler {
        case .unary: "unary"
        case .serverStreaming: "server_stream"
        }
    }
}

/// The methods of one server, looked up by `:path`.
struct GRPCMethodTable: Sendable {
    let methods: [GRPCMethod]
    private let byPath: [String: Int]
    private let services: Set<String>

    init(_ methods: [GRPCMethod]) {
        self.methods = methods
        var byPath: [String: Int] = [:]
        for (index, method) in methods.enumerated() {
            precondition(byPath[method.path] == nil, "method \(method.path) registered twice")
            byPath[method.path] = index
        }
        self.byPath = byPath
        services = Set(methods.map(\.service))
    }

    func index(of path: String) -> Int? { byPath[path] }

    /// The UNIMPLEMENTED answer for a path no method has: names the unknown service, or the
    /// unknown method of a known one, as grpc-go does.
    func unknown(_ path: String) -> GRPCStatus {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count == 2, services.contains(String(parts[0])) {
            return GRPCStatus(.unimplemented, "unknown method \(parts[1]) for service \(parts[0])")
        }
        if parts.count == 2 {
            return GRPCStatus(.unimplemented, "unknown service \(parts[0])")
        }
        return GRPCStatus(.unimplemented, "malformed method name: \"\(path)\"")
    }
}
