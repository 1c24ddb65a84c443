import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import Synchronization

/// A gRPC server for unary (and simple server-streaming) methods on HTTP/2 with prior knowledge,
/// as the platform's event bridge speaks it: plaintext, or TLS (ALPN `h2`, optionally with client
/// certificates) and a bearer token as `GRPCSecurity` says.
///
/// Per connection, three handlers on one event loop (after `NIOSSLServerHandler` with TLS): `NIOHTTP2Handler` (framing, HPACK, flow
/// control, the flood limits), `NIOHTTP2ServerConnectionManagementHandler` (idle timeout,
/// maximum age and its grace, keepalive pings, graceful GOAWAY) and `GRPCConnectionHandler`
/// (calls as values keyed by stream id; handlers run on the event loop), with `StreamEventFilter`
/// between the first two (`ConnectionPipeline`). No task, channel or event-loop hop per call.
public final class UnaryGRPCServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Event-loop threads: one connection is served by one of them.
        public var threads: Int = System.coreCount
        /// `SETTINGS_MAX_CONCURRENT_STREAMS` advertised and enforced per connection.
        public var maxConcurrentStreams = 1_000
        /// A request message larger than this is refused (RESOURCE_EXHAUSTED) from its prefix,
        /// before it is buffered.
        public var maxMessageBytes = 64 * 1024
        /// Connections past this many are closed as they are accepted.
        public var maxConnections = 10_000
        /// A connection with no call open this long is closed gracefully (GOAWAY); nil: never.
        public var maxConnectionIdle: Duration? = .seconds(300)
        /// A connection this old is closed gracefully, so a long-lived client re-balances over
        /// replicas; nil: never.
        public var maxConnectionAge: Duration? = .seconds(1_800)
        /// How long calls may go on after a graceful close began (age, shutdown); nil: no bound.
        public var maxConnectionAgeGrace: Duration? = .seconds(60)
        /// A PING after this long without reading anything; no ACK within `keepaliveTimeout`
        /// closes the connection. nil: no pings.
        public var keepaliveTime: Duration? = .seconds(7_200)
        public var keepaliveTimeout: Duration = .seconds(20)

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public let metrics: GRPCServerMetrics
    public let configuration: Configuration
    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel
    /// Open connections, so shutdown can send each a GOAWAY and wait for it to close.
    private let connections: ConnectionRegistry

    private init(
        configuration: Configuration, metrics: GRPCServerMetrics, group: MultiThreadedEventLoopGroup,
        listener: any Channel, connections: ConnectionRegistry
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.group = group
        self.listener = listener
        self.connections = connections
    }

    /// Binds and starts accepting connections. `metrics` counts `methods` (made from the same
    /// list, so `/metrics` can show its zeros before the server starts).
    /// `security`, when given, puts TLS in front of HTTP/2 and asks calls for its bearer token.
    public static func start(
        configuration: Configuration, methods: [GRPCMethod], metrics: GRPCServerMetrics? = nil, security: GRPCSecurity? = nil,
        onAcceptError: @escaping @Sendable (any Error) -> Void = { _ in }
    ) async throws -> UnaryGRPCServer {
        let metrics = metrics ?? GRPCServerMetrics(methods: methods)
        let pipeline = ConnectionPipeline(configuration: configuration, methods: methods, metrics: metrics, security: security)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        let connections = ConnectionRegistry()
        let maxConnections = configuration.maxConnections
        do {
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 4_096)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    AcceptErrors.install(on: channel, count: { metrics.acceptErrors.add(1) }, onError: onAcceptError)
                }
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    guard connections.admit(channel, limit: maxConnections) else {
                        metrics.connectionsRefused.add(1)
                        return channel.close()
                    }
                    metrics.connectionsAccepted.add(1)
                    metrics.connectionsOpen.add(1)
                    channel.closeFuture.whenComplete { _ in
                        connections.remove(channel)
                        metrics.connectionsOpen.add(-1)
                    }
                    return channel.eventLoop.makeCompletedFuture { try pipeline.install(on: channel) }
                }
                .bind(host: configuration.host, port: configuration.port).get()
            return UnaryGRPCServer(
                configuration: configuration, metrics: metrics, group: group, listener: listener,
                connections: connections)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// The address it listens on (the port the system chose for port 0).
    public var localAddress: SocketAddress? { listener.localAddress }

    /// Connections open now.
    public var connectionCount: Int { connections.channels.withLock { $0.count } }

    /// Stops accepting and sends every connection a graceful GOAWAY: calls in flight are still
    /// answered, clients open no new ones here. Connections close as their last call ends.
    public func quiesce() async {
        try? await listener.close()
        let open = connections.channels.withLock { Array($0.values) }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Waits for the connections to close by themselves until `timeout`, closes the rest, and
    /// stops the event loops.
    public func shutdown(timeout: Duration) async {
        await quiesce()
        let deadline = ContinuousClock.now + timeout
        while connectionCount > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let open = connections.channels.withLock { Array($0.values) }
        for channel in open { try? await channel.close() }
        try? await group.shutdownGracefully()
    }
}

/// The open connections, counted against the limit as they are accepted.
private final class ConnectionRegistry: Sendable {
    let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func admit(_ channel: any Channel, limit: Int) -> Bool {
        channels.withLock { open in
            guard open.count < limit else { return false }
            open[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) {
        _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
