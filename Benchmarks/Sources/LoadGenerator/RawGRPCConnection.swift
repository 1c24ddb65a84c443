import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization

/// One HTTP/2 connection speaking unary gRPC at the frame level: a HEADERS and a DATA frame out
/// per call, the trailers' `grpc-status` back. Shaped like the platform's bridge (one
/// connection, many calls in flight), and cheap enough that the generator does not take the
/// CPU the service needs: grpc-swift's `GRPCClient` spent 300-570 µs of CPU per call here
/// (a stream channel, async sequences and tasks per call), as much as the service itself,
/// which on 2 shared cores made the load tool part of what it measured.
///
/// Everything about a call runs on the connection's one event loop thread: the scheduling
/// loop hands over a tick's batch at once (one flush), and answers come back through each
/// call's completion on that thread.
final class RawGRPCConnection: Sendable {
    /// A call to make: the method's path, the serialized request, and what to do with the
    /// answer's status code (0 OK).
    struct Call: Sendable {
        var path: String
        var message: [UInt8]
        var completion: @Sendable (_ status: Int) -> Void
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let handler: NIOLoopBound<UnaryCallHandler>

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, handler: NIOLoopBound<UnaryCallHandler>) {
        self.group = group
        self.channel = channel
        self.handler = handler
    }

    /// Connects to `host:port` (plaintext HTTP/2, prior knowledge, as gRPC does without TLS).
    static func connect(host: String, port: Int, deadline: Duration) async throws -> RawGRPCConnection {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let authority = "\(host):\(port)"
        do {
            let channel = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let settings = [
                            HTTP2Setting(parameter: .maxConcurrentStreams, value: 1_000),
                            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
                        ]
                        try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client, initialSettings: settings))
                        try channel.pipeline.syncOperations.addHandler(
                            UnaryCallHandler(authority: authority, deadlineNanos: Int64(deadline.components.seconds) * 1_000_000_000
                                + deadline.components.attoseconds / 1_000_000_000))
                    }
                }
                .connect(host: host, port: port).get()
            let handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: UnaryCallHandler.self), eventLoop: channel.eventLoop)
            }.get()
            return RawGRPCConnection(group: group, channel: channel, handler: handler)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Starts `calls` (one flush for all of them); each completion runs on the event loop.
    func start(_ calls: [Call]) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.start(calls) }
    }

    /// Closes the connection; calls still open complete with UNAVAILABLE.
    func close() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// The connection's one handler behind NIOHTTP2Handler: numbers streams, writes each call's two
/// frames, reads each stream's `grpc-status`, and fails calls past their deadline. Confined to
/// the event loop.
final class UnaryCallHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private struct Open {
        var completion: @Sendable (Int) -> Void
        var startedNanos: Int64
    }

    private let authority: String
    private let deadlineNanos: Int64
    private var context: ChannelHandlerContext?
    private var nextStreamID: Int32 = 1
    /// Open calls by stream, and the order they started in (the order of their deadlines).
    private var open: [HTTP2StreamID: Open] = [:]
    private var started: [HTTP2StreamID] = []
    private var startedHead = 0
    private var sweep: Scheduled<Void>?
    /// Response bytes received since the last connection-level WINDOW_UPDATE. Without
    /// NIOHTTP2's stream multiplexer nobody else returns the connection's receive window, and
    /// the server stops sending once 65,535 bytes (13,107 empty responses) are unacknowledged.
    private var unacknowledgedBytes = 0
    private let clock = ContinuousClock()
    private let origin = ContinuousClock.now

    static let unavailable = 14
    static let deadlineExceeded = 4
    static let unknown = 2

    init(authority: String, deadlineNanos: Int64) {
        self.authority = authority
        self.deadlineNanos = deadlineNanos
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        scheduleSweep(context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweep?.cancel()
        self.context = nil
    }

    private var nowNanos: Int64 {
        let (seconds, attoseconds) = (ContinuousClock.now - origin).components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    func start(_ calls: [RawGRPCConnection.Call]) {
        guard let context, context.channel.isActive else {
            for call in calls { call.completion(Self.unavailable) }
            return
        }
        let now = nowNanos
        for call in calls {
            let id = HTTP2StreamID(nextStreamID)
            nextStreamID += 2
            open[id] = Open(completion: call.completion, startedNanos: now)
            started.append(id)
            let headers: HPACKHeaders = [
                ":method": "POST", ":scheme": "http", ":path": call.path, ":authority": authority,
                "content-type": "application/grpc", "te": "trailers",
            ]
            context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers)))), promise: nil)
            var body = context.channel.allocator.buffer(capacity: 5 + call.message.count)
            body.writeInteger(UInt8(0))  // not compressed
            body.writeInteger(UInt32(call.message.count))
            body.writeBytes(call.message)
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body), endStream: true)))),
                promise: nil)
        }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let status = headers.headers.first(name: "grpc-status") {
                finish(frame.streamID, status: Int(status) ?? Self.unknown)
            } else if headers.endStream {
                finish(frame.streamID, status: Self.unknown)
            }
        case .data(let data):
            unacknowledgedBytes += data.data.readableBytes + (data.paddingBytes ?? 0)
            if unacknowledgedBytes >= 16_384 {
                context.writeAndFlush(
                    wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unacknowledgedBytes))),
                    promise: nil)
                unacknowledgedBytes = 0
            }
        case .rstStream:
            finish(frame.streamID, status: Self.unavailable)
        case .goAway(let lastStreamID, _, _):
            for id in open.keys where id > lastStreamID { finish(id, status: Self.unavailable) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for id in Array(open.keys) { finish(id, status: Self.unavailable) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream-level error (e.g. a late frame on a stream the deadline ended) is not the
        // connection's: only a connection error closes it.
        if error is NIOHTTP2Errors.StreamClosed || error is NIOHTTP2Errors.NoSuchStream { return }
        context.close(promise: nil)
    }

    private func finish(_ id: HTTP2StreamID, status: Int) {
        guard let call = open.removeValue(forKey: id) else { return }
        call.completion(status)
    }

    /// Every 10 ms: calls open past the deadline complete as DEADLINE_EXCEEDED (their answers,
    /// if they come, are ignored). Streams are not reset: NIO's HTTP/2 server answers more than
    /// 200 resets in 30 s with GOAWAY, which would fail every other call on the connection.
    private func scheduleSweep(_ loop: any EventLoop) {
        sweep = loop.assumeIsolated().scheduleTask(in: .milliseconds(10)) { [self] in
            let limit = nowNanos - deadlineNanos
            while startedHead < started.count {
                let id = started[startedHead]
                if let call = open[id] {
                    guard call.startedNanos <= limit else { break }
                    finish(id, status: Self.deadlineExceeded)
                }
                startedHead += 1
            }
            if startedHead > 4_096 {
                started.removeFirst(startedHead)
                startedHead = 0
            }
            scheduleSweep(loop)
        }
    }
}
