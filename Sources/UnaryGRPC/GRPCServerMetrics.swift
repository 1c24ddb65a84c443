/// The server's metrics, under go-grpc-prometheus's names and labels (the incumbent's
/// dashboards read them): `grpc_server_started_total`, `grpc_server_handled_total`,
/// `grpc_server_msg_received_total`, `grpc_server_msg_sent_total` and the
/// `grpc_server_handling_seconds` histogram, every series present from the start with zeros (as
/// its `InitializeMetrics` does); and the service's own `grpc_request_duration_seconds{method}`
/// for the methods that ask for it, which the latency alert reads.
///
/// Every count is a relaxed atomic add on a counter of its own: no lock that calls share.
public final class GRPCServerMetrics: Sendable {
    /// Prometheus's default buckets, as go-grpc-prometheus uses them.
    static let handlingBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// The service's request-duration buckets (finer: a buffered answer takes microseconds).
    static let requestBuckets: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    ]

    private struct MethodSeries: Sendable {
        let labels: String
        let requestLabels: String?
        let started = AtomicCounter()
        let received = AtomicCounter()
        let sent = AtomicCounter()
        let handled: [AtomicCounter]
        let handling: AtomicHistogram
        let requestDuration: AtomicHistogram?
    }

    private let methods: [MethodSeries]
    /// Connections open now, accepted in all, and refused at `GRPC_MAX_CONNECTIONS`.
    let connectionsOpen = AtomicCounter()
    let connectionsAccepted = AtomicCounter()
    let connectionsRefused = AtomicCounter()
    /// Connections closed for a protocol error (not HTTP/2, a bad preface, a flood limit).
    let connectionErrors = AtomicCounter()
    /// Streams refused with RST_STREAM for a protocol error of their own (malformed request
    /// headers, say) on a connection that goes on.
    let streamErrors = AtomicCounter()
    /// Accepts that failed (too many open files: RLIMIT_NOFILE); the connection waits in the
    /// backlog and accepting resumes after a second.
    let acceptErrors = AtomicCounter()
    /// Calls to a method this server does not have (answered UNIMPLEMENTED).
    let unknownMethods = AtomicCounter()
    /// Requests refused for a message over `GRPC_MAX_MESSAGE_BYTES`.
    let oversizedMessages = AtomicCounter()
    /// Calls refused for a missing or wrong bearer token.
    let unauthenticated = AtomicCounter()
    /// Connections closed because their TLS handshake failed (no client certificate, an
    /// untrusted one, plaintext on the TLS port, no common protocol version).
    let tlsHandshakeFailures = AtomicCounter()
    /// Certificate and token reloads (SIGHUP) that worked and that failed (the old ones kept).
    let reloadsSucceeded = AtomicCounter()
    let reloadsFailed = AtomicCounter()

    /// Counts a reload of `GRPCSecurity`'s files.
    public func recordReload(succeeded: Bool) {
        (succeeded ? reloadsSucceeded : reloadsFailed).add(1)
    }

    /// The series of `methods`: give the server the same methods in the same order.
    public init(methods: [GRPCMethod]) {
        self.methods = methods.map { method in
            MethodSeries(
                labels: "grpc_method=\"\(method.name)\",grpc_service=\"\(method.service)\",grpc_type=\"\(method.typeLabel)\"",
                requestLabels: method.recordsRequestDuration ? "method=\"\(method.service)/\(method.name)\"" : nil,
                handled: GRPCStatus.Code.allCases.map { _ in AtomicCounter() },
                handling: AtomicHistogram(boundsInSeconds: Self.handlingBuckets),
                requestDuration: method.recordsRequestDuration ? AtomicHistogram(boundsInSeconds: Self.requestBuckets) : nil)
        }
    }

    func started(_ method: Int) { methods[method].started.add(1) }
    func received(_ method: Int) { methods[method].received.add(1) }
    func sent(_ method: Int) { methods[method].sent.add(1) }

    func handled(_ method: Int, code: GRPCStatus.Code, nanoseconds: UInt64) {
        let series = methods[method]
        series.handled[code.rawValue].add(1)
        series.handling.record(nanoseconds: nanoseconds)
        series.requestDuration?.record(nanoseconds: nanoseconds)
    }

    /// The Prometheus text exposition of every series.
    public func exposition() -> String {
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ body: () -> Void) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            body()
        }
        family("grpc_server_started_total", "counter", "Total number of RPCs started on the server.") {
            for series in methods { text += "grpc_server_started_total{\(series.labels)} \(series.started.total)\n" }
        }
        family("grpc_server_handled_total", "counter", "Total number of RPCs completed on the server, regardless of success or failure.") {
            for series in methods {
                for code in GRPCStatus.Code.allCases {
                    text += "grpc_server_handled_total{grpc_code=\"\(code.goName)\",\(series.labels)} \(series.handled[code.rawValue].total)\n"
                }
            }
        }
        family("grpc_server_msg_received_total", "counter", "Total number of RPC stream messages received on the server.") {
            for series in methods { text += "grpc_server_msg_received_total{\(series.labels)} \(series.received.total)\n" }
        }
        family("grpc_server_msg_sent_total", "counter", "Total number of gRPC stream messages sent by the server.") {
            for series in methods { text += "grpc_server_msg_sent_total{\(series.labels)} \(series.sent.total)\n" }
        }
        family(
            "grpc_server_handling_seconds", "histogram",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
        ) {
            for series in methods { series.handling.write(name: "grpc_server_handling_seconds", labels: series.labels, into: &text) }
        }
        family("grpc_request_duration_seconds", "histogram", "Time to answer one event call, from its request headers to its answer") {
            for series in methods {
                guard let labels = series.requestLabels, let histogram = series.requestDuration else { continue }
                histogram.write(name: "grpc_request_duration_seconds", labels: labels, into: &text)
            }
        }
        let levels: [(name: String, type: String, help: String, value: Int)] = [
            ("grpc_server_connections", "gauge", "gRPC connections open now", connectionsOpen.total),
            ("grpc_server_connections_accepted_total", "counter", "gRPC connections accepted", connectionsAccepted.total),
            (
                "grpc_server_connections_refused_total", "counter",
                "gRPC connections closed at once because GRPC_MAX_CONNECTIONS were open", connectionsRefused.total
            ),
            (
                "grpc_server_connection_errors_total", "counter",
                "gRPC connections closed for a protocol error (not HTTP/2, bad preface, flood limits)", connectionErrors.total
            ),
            (
                "grpc_server_stream_errors_total", "counter",
                "gRPC streams reset for a protocol error of their own (malformed request headers); the connection goes on",
                streamErrors.total
            ),
            (
                "grpc_server_accept_errors_total", "counter",
                "Connections the gRPC server failed to accept (too many open files: RLIMIT_NOFILE); accepting resumes a second later",
                acceptErrors.total
            ),
            (
                "grpc_server_unknown_method_total", "counter",
                "Calls to a method the server does not have (answered UNIMPLEMENTED)", unknownMethods.total
            ),
            (
                "grpc_server_oversized_messages_total", "counter",
                "Requests refused for a message over GRPC_MAX_MESSAGE_BYTES", oversizedMessages.total
            ),
            (
                "grpc_server_unauthenticated_total", "counter",
                "Calls refused UNAUTHENTICATED for a missing or wrong bearer token (GRPC_AUTH_TOKEN_FILE)", unauthenticated.total
            ),
            (
                "grpc_server_tls_handshake_failures_total", "counter",
                "gRPC connections closed because their TLS handshake failed (no or untrusted client certificate, plaintext)",
                tlsHandshakeFailures.total
            ),
        ]
        for level in levels {
            family(level.name, level.type, level.help) { text += "\(level.name) \(level.value)\n" }
        }
        family("grpc_server_security_reloads_total", "counter", "Reloads of the gRPC TLS certificate and token files on SIGHUP, by result") {
            text += "grpc_server_security_reloads_total{result=\"ok\"} \(reloadsSucceeded.total)\n"
            text += "grpc_server_security_reloads_total{result=\"failed\"} \(reloadsFailed.total)\n"
        }
        return text
    }
}
