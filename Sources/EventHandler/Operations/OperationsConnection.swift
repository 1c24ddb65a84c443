import NIOCore
import NIOHTTP1

/// One connection of the operations server: routes GET and HEAD, 405 for other methods,
/// keep-alive honoured, and the connection's clocks and its one outstanding response.
///
/// Phases, each with its clock (`OperationsServer.Limits`):
/// - idle: no request in progress, no response pending (the idle timeout);
/// - receiving: a request's first byte has arrived, its end not yet (the request timeout);
/// - responding: a response was written and the kernel has not taken all of it (the response
///   timeout). A request that ends meanwhile (pipelined) waits here, unanswered; while it waits,
///   `HTTPServerPipelineHandler` holds whatever was read after it and reads no more, so a client
///   that pipelines without reading fills its own socket buffers and is read no further, and
///   the service holds one response for it at most. (The pipeline handler alone would not
///   stop it: it resumes reading as soon as a response's end is *written*, not sent, so with
///   routes that answer at once, responses would pile up in the channel's outbound buffer.)
final class OperationsConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        case idle, receiving, responding
    }

    private let route: OperationsServer.Route
    private let limits: OperationsServer.Limits
    private let metrics: OperationsServer.Metrics
    private var context: ChannelHandlerContext?
    private var phase = Phase.idle
    /// The head of the request being received.
    private var head: HTTPRequestHead?
    /// A request received whole while the response before it is still being sent.
    private var waiting: HTTPRequestHead?
    private var timer: Scheduled<Void>?
    /// Which arming of the clock is current (a task that ran after a re-arm does nothing).
    private var clock = 0

    init(route: @escaping OperationsServer.Route, limits: OperationsServer.Limits, metrics: OperationsServer.Metrics) {
        self.route = route
        self.limits = limits
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm(limits.idleTimeout, .idle)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    /// Bytes reached the connection, not yet decoded (`RequestStartWatcher`): when idle, they
    /// are a request's first, and its clock starts.
    func bytesArrived() {
        guard phase == .idle else { return }
        phase = .receiving
        arm(limits.requestTimeout, .request)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            // A request the pipeline handler held while the last response was written.
            bytesArrived()
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            if phase == .responding {
                waiting = head
            } else {
                respond(to: head, context: context)
            }
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        phase = .responding
        arm(limits.responseTimeout, .response)
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
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        // Completed inside the flush when the socket takes everything at once: the next answer
        // starts from the loop, not from inside this write (no recursion through a pipeline).
        written.futureResult.whenComplete { result in
            loop.execute { handler.value.responseSent(result, keepAlive: keepAlive) }
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    }

    /// The kernel took the whole response (or the connection failed).
    private func responseSent(_ result: Result<Void, any Error>, keepAlive: Bool) {
        guard let context else { return }
        guard case .success = result, keepAlive else {
            disarm()
            context.close(promise: nil)
            return
        }
        if let next = waiting {
            waiting = nil
            respond(to: next, context: context)
        } else if head != nil {
            phase = .receiving
            arm(limits.requestTimeout, .request)
        } else {
            phase = .idle
            arm(limits.idleTimeout, .idle)
        }
    }

    private func arm(_ timeout: Duration, _ kind: OperationsServer.Metrics.Timeout) {
        disarm()
        guard let context else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let armed = clock
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            handler.value.expired(kind, armed: armed)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
        clock &+= 1
    }

    private func expired(_ kind: OperationsServer.Metrics.Timeout, armed: Int) {
        guard armed == clock, let context else { return }
        timer = nil
        metrics.timedOut(kind)
        context.close(promise: nil)
    }
}

/// First in the pipeline, before the HTTP decoder: tells the connection that bytes arrived, so
/// a request's clock starts at its first byte rather than once its head is whole.
final class RequestStartWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let connection: OperationsConnection

    init(_ connection: OperationsConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.bytesArrived()
        context.fireChannelRead(data)
    }
}
