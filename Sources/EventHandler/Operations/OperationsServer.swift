import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 server for the operations endpoints (`/metrics`, `/healthz`, `/readyz`) on
/// `METRICS_PORT`. Plain SwiftNIO, already in the build for gRPC; each request is answered on
/// its event loop by a synchronous route that must not block (the routes read atomics and
/// render the registry, microseconds).
///
/// Hostile or broken clients cost a bounded amount (`Limits`): connections past the cap are
/// closed as they are accepted; a connection idle too long, a request that does not arrive in
/// time (slowloris) or a response the client does not take in time closes its connection; and
/// a connection has one response outstanding at most (`OperationsConnection`), so a client that
/// pipelines requests without reading stops being read instead of queueing responses.
final class OperationsServer: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]

        static func text(_ status: HTTPResponseStatus, _ text: String) -> Response {
            Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
        }
    }

    /// Answers a GET of `path` (query string removed), or nil for 404.
    typealias Route = @Sendable (_ path: String) -> Response?

    /// What one client may hold. Constants rather than settings: a scraper or a probe uses a
    /// fraction of each, and the operations port belongs on the scrape network (`METRICS_HOST`).
    struct Limits: Sendable {
        /// A connection with no request in progress and no response pending is closed after
        /// this. Longer than Prometheus's default one-minute scrape interval, so a scraper's
        /// keep-alive connection is reused rather than closed just as its next scrape starts.
        var idleTimeout: Duration = .seconds(90)
        /// A request must have arrived whole (head and any body) this long after its first byte:
        /// a client sending a header a byte at a time (slowloris) is closed.
        var requestTimeout: Duration = .seconds(10)
        /// A response must have been taken by the client (handed to the kernel whole) within
        /// this; Prometheus's own default scrape timeout is 10 s too.
        var responseTimeout: Duration = .seconds(10)
        /// Connections open at once; the next ones are closed as they are accepted.
        var maxConnections = 64
    }

    private let channel: any Channel
    let limits: Limits
    let metrics: Metrics

    /// The address it listens on (the real port when 0 was asked for).
    var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel, limits: Limits, metrics: Metrics) {
        self.channel = channel
        self.limits = limits
        self.metrics = metrics
    }

    /// `metrics`: the service's own (`.shared`, exported on /metrics), or a test's.
    static func start(
        host: String, port: Int, limits: Limits = Limits(), metrics: Metrics = .shared, route: @escaping Route
    ) async throws -> OperationsServer {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // One read of at most 16 KiB at a time (a request here is a few hundred bytes): what a
            // connection can have read ahead, parsed and held while a response is outstanding.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1_024, maximum: 16_384))
            .childChannelInitializer { channel in
                guard metrics.admit(limit: limits.maxConnections) else {
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in metrics.closed() }
                return channel.eventLoop.makeCompletedFuture {
                    let connection = OperationsConnection(route: route, limits: limits, metrics: metrics)
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(RequestStartWatcher(connection))
                    // Decoder, encoder, HTTPServerPipelineHandler (one request handed on at a time,
                    // reading paused until its response ends) and the 400-on-garbage handler.
                    try pipeline.configureHTTPServerPipeline()
                    try pipeline.addHandler(connection)
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return OperationsServer(channel: channel, limits: limits, metrics: metrics)
    }

    /// Stops listening (connections in progress finish on their own).
    func close() {
        channel.close(promise: nil)
    }

    /// The operations server's own counters: connections open and refused at the cap, and
    /// connections closed by each timeout.
    final class Metrics: Sendable {
        /// The service's, exported on /metrics by `MetricsCollector`.
        static let shared = Metrics()

        enum Timeout: String, CaseIterable, Sendable {
            case idle, request, response
        }

        private let open = Atomic<Int>(0)
        private let refusedTotal = Atomic<Int>(0)
        private let idleTimeouts = Atomic<Int>(0)
        private let requestTimeouts = Atomic<Int>(0)
        private let responseTimeouts = Atomic<Int>(0)

        init() {}

        /// Takes a connection slot if one of `limit` is free; counts a refusal otherwise.
        func admit(limit: Int) -> Bool {
            var current = open.load(ordering: .relaxed)
            while current < limit {
                let (exchanged, original) = open.compareExchange(
                    expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged { return true }
                current = original
            }
            refusedTotal.add(1, ordering: .relaxed)
            return false
        }

        /// An admitted connection closed.
        func closed() {
            open.subtract(1, ordering: .acquiringAndReleasing)
        }

        func timedOut(_ timeout: Timeout) {
            switch timeout {
            case .idle: idleTimeouts.add(1, ordering: .relaxed)
            case .request: requestTimeouts.add(1, ordering: .relaxed)
            case .response: responseTimeouts.add(1, ordering: .relaxed)
            }
        }

        var openConnections: Int { open.load(ordering: .relaxed) }
        var refused: Int { refusedTotal.load(ordering: .relaxed) }

        func timeouts(_ timeout: Timeout) -> Int {
            switch timeout {
            case .idle: idleTimeouts.load(ordering: .relaxed)
            case .request: requestTimeouts.load(ordering: .relaxed)
            case .response: responseTimeouts.load(ordering: .relaxed)
            }
        }

        /// Their Prometheus text exposition.
        func exposition() -> String {
            var text = """
                # HELP operations_http_connections_refused_total Connections to METRICS_PORT closed as they were accepted because the most allowed were open
                # TYPE operations_http_connections_refused_total counter
                operations_http_connections_refused_total \(refused)
                # HELP operations_http_connections_timed_out_total Connections to METRICS_PORT closed by a timeout: idle (no request), request (not received in time), response (not taken by the client in time)
                # TYPE operations_http_connections_timed_out_total counter

                """
            for timeout in Timeout.allCases {
                text += "operations_http_connections_timed_out_total{timeout=\"\(timeout.rawValue)\"} \(timeouts(timeout))\n"
            }
            return text
        }
    }
}
