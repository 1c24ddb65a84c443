import NIOCore
import NIOHTTP2
import NIOSSL

extension UnaryGRPCServer {
    /// One connection's handlers, as the server adds them to every connection it accepts: TLS
    /// when `security` has it, then `GoAwayWatch`, `NIOHTTP2Handler`, `StreamEventFilter`,
    /// `NIOHTTP2ServerConnectionManagementHandler` and `GRPCConnectionHandler`, all set up from the
    /// server's `Configuration`. Public so that a
    /// connection can be served without a socket (the fuzz target `grpc` drives it through an
    /// `EmbeddedChannel`: bytes in, frames out), exactly as the server serves it.
    public struct ConnectionPipeline: Sendable {
        private let table: GRPCMethodTable
        private let metrics: GRPCServerMetrics
        private let security: GRPCSecurity?
        private let connection: NIOHTTP2Handler.ConnectionConfiguration
        private let stream: NIOHTTP2Handler.StreamConfiguration
        private let management: NIOHTTP2ServerConnectionManagementHandler.Configuration
        private let limits: GRPCConnectionHandler.Limits

        public init(configuration: Configuration, methods: [GRPCMethod], metrics: GRPCServerMetrics, security: GRPCSecurity?) {
            table = GRPCMethodTable(methods)
            self.metrics = metrics
            self.security = security
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            connection.initialSettings = [
                HTTP2Setting(parameter: .maxConcurrentStreams, value: configuration.maxConcurrentStreams),
                // One request message (and its prefix) fits a stream's window: no per-stream
                // WINDOW_UPDATE is ever needed for a unary request.
                HTTP2Setting(parameter: .initialWindowSize, value: max(65_535, configuration.maxMessageBytes + 5)),
                HTTP2Setting(parameter: .maxHeaderListSize, value: 16 * 1024),
            ]
            // Rapid-reset protection stays the library's, scaled to the stream limit: a client that
            // cancels its calls (deadlines, a retry policy) resets streams by the hundred, and a reset
            // costs this server one dictionary removal. The default (200 per 30 s) would GOAWAY a
            // bridge that cancels a few hundred calls.
            var stream = NIOHTTP2Handler.StreamConfiguration()
            stream.streamResetFrameRateLimit.maximumCount = max(200, 10 * configuration.maxConcurrentStreams)
            self.connection = connection
            self.stream = stream
            limits = GRPCConnectionHandler.Limits(
                maxMessageBytes: configuration.maxMessageBytes,
                connectionWindow: max(1 << 20, 2 * (configuration.maxMessageBytes + 5)))
            management = NIOHTTP2ServerConnectionManagementHandler.Configuration(
                maxIdleTime: configuration.maxConnectionIdle.map(TimeAmount.init),
                maxAge: configuration.maxConnectionAge.map(TimeAmount.init),
                maxGraceTime: configuration.maxConnectionAgeGrace.map(TimeAmount.init),
                keepalive: configuration.keepaliveTime.map {
                    .init(pingInterval: TimeAmount($0), ackTimeout: TimeAmount(configuration.keepaliveTimeout))
                })
        }

        /// Adds the handlers to `channel`'s pipeline. On the channel's event loop. The TLS context
        /// is read now, so a connection gets the one in force when it is accepted (SIGHUP reloads it).
        public func install(on channel: any Channel) throws {
            let pipeline = channel.pipeline.syncOperations
            if let tls = security?.tlsContext {
                try pipeline.addHandler(NIOSSLServerHandler(context: tls))
            }
            let goAways = GoAwayWatch()
            try pipeline.addHandler(goAways)
            try pipeline.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: connection, streamConfiguration: stream))
            try pipeline.addHandler(StreamEventFilter())
            try pipeline.addHandler(NIOHTTP2ServerConnectionManagementHandler(eventLoop: channel.eventLoop, configuration: management))
            try pipeline.addHandler(
                GRPCConnectionHandler(methods: table, metrics: metrics, limits: limits, security: security, goAways: goAways))
        }
    }
}
