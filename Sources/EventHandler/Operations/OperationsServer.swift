import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server for the operations endpoints (`/metrics`, `/healthz`, `/readyz`) on
/// `METRICS_PORT`. Plain SwiftNIO, already in the build for gRPC; each request is answered on
/// its event loop by a synchronous route that must not block (the routes read atomics and
/// render the registry, microseconds).
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

    private let channel: any Channel

    /// The address it listens on (the real port when 0 was asked for).
    var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(host: String, port: Int, route: @escaping Route) async throws -> OperationsServer {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(route: route))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return OperationsServer(channel: channel)
    }

    /// Stops listening (connections in progress finish on their own).
    func close() {
        channel.close(promise: nil)
    }
}

/// One connection's requests: routes GET and HEAD, 405 for other methods, keep-alive honoured.
private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let route: OperationsServer.Route
    private var head: HTTPRequestHead?

    init(route: @escaping OperationsServer.Route) {
        self.route = route
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let response: OperationsServer.Response
        if head.method == .GET || head.method == .HEAD {
            let path = String(head.uri.prefix { $0 != "?" })
            response = route(path) ?? .text(.notFound, "not found: \(path)\n")
        } else {
            response = .text(.methodNotAllowed, "method not allowed\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        headers.add(name: "cache-control", value: "no-store")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }

        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            var body = context.channel.allocator.buffer(capacity: response.body.count)
            body.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        if !keepAlive {
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    }
}
