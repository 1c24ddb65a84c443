import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL

/// gRPC on one HTTP/2 connection, at the frame level: sits after `NIOHTTP2Handler` (framing,
/// HPACK, flow-control accounting, the flood limits) with no stream multiplexer, so a call is a
/// small value in `streams`, not a channel. Everything here runs on the connection's event loop.
///
/// A call's life: HEADERS (method, content type, encoding and deadline checked; unknown methods
/// answered at once) → DATA (the 5-byte prefix read, oversized messages refused before they are
/// buffered) → END_STREAM: the method's handler runs, here and now → its answer (HEADERS, DATA,
/// trailers) is written, and flushed once per read burst. Errors are trailers-only responses.
/// A call the client resets, or whose deadline passes, is forgotten; a late answer is dropped.
final class GRPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    struct Limits {
        var maxMessageBytes: Int
        /// The connection-level receive window kept open for the client (bytes).
        var connectionWindow: Int
    }

    enum Answer {
        case message(ByteBuffer)
        case status(GRPCStatus)
    }

    // The state below is internal, not private, only so the answers' half of the handler can live
    // in GRPCConnectionHandler+Answers.swift; nothing outside the handler touches it.

    enum Phase {
        /// Reading the request.
        case receiving
        /// Handed to the handler; waiting for its answer.
        case dispatched
        /// A server-streaming call with its response headers sent.
        case streaming
    }

    struct Call {
        var method: Int
        var arrived: UInt64
        var deadline: NIODeadline?
        var phase: Phase = .receiving
        var body: ByteBuffer?
        /// The request message's length, once its prefix has arrived.
        var messageLength: Int?
        var clientDone = false
        var timer: Scheduled<Void>?
        var onCancel: (@Sendable () -> Void)?
    }

    let methods: GRPCMethodTable
    let metrics: GRPCServerMetrics
    let limits: Limits
    let security: GRPCSecurity?
    /// Whether the connection has written a GOAWAY: tells a stream error from a connection error.
    private let goAways: GoAwayWatch
    var context: ChannelHandlerContext?
    var calls: [HTTP2StreamID: Call] = [:]
    private var highestStreamID = HTTP2StreamID(0)
    var inReadLoop = false
    var flushPending = false
    var flushScheduled = false
    /// DATA bytes received and not yet returned to the client's connection window.
    private var unreturnedCredit = 0

    init(methods: GRPCMethodTable, metrics: GRPCServerMetrics, limits: Limits, security: GRPCSecurity?, goAways: GoAwayWatch) {
        self.methods = methods
        self.metrics = metrics
        self.limits = limits
        self.security = security
        self.goAways = goAways
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        // HTTP/2 opens every connection with a 65,535-byte window; many calls in flight need more.
        let increment = limits.connectionWindow - 65_535
        if increment > 0 {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let open = calls
        calls.removeAll()
        for (_, call) in open { end(call) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadLoop = true
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if calls[frame.streamID] != nil {
                // Trailers from the client: only their END_STREAM matters to a unary call.
                if headers.endStream { clientFinished(frame.streamID) }
            } else if frame.streamID > highestStreamID {
                highestStreamID = frame.streamID
                open(frame.streamID, headers: headers.headers, endStream: headers.endStream)
            }
        case .data(let data):
            received(data, on: frame.streamID)
        case .rstStream:
            if let call = calls.removeValue(forKey: frame.streamID) { end(call) }
        default:
            // SETTINGS, PING, WINDOW_UPDATE, GOAWAY, PRIORITY: NIOHTTP2Handler and the
            // connection management handler before this one deal with them.
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadLoop = false
        // NIOHTTP2Handler has flushed what was written during the burst already (it flushes at
        // read-complete); this flush then finds nothing to write and costs no syscall.
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent, let call = calls.removeValue(forKey: closed.streamID) {
            end(call)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error has been answered with RST_STREAM by NIOHTTP2Handler (a request with
        // malformed headers, say); the connection's other calls go on. It comes as the bare
        // underlying error, as a connection error does, but a connection error's GOAWAY has been
        // written before it is reported. Anything else (a bad preface, HTTP/1.1, a protocol
        // violation, TLS, the socket) ends the connection.
        if error is NIOHTTP2Errors.StreamError || (error is any NIOHTTP2Error && !goAways.written) {
            metrics.streamErrors.add(1)
            return
        }
        if error is NIOSSLError || error is BoringSSLError {
            metrics.tlsHandshakeFailures.add(1)
        } else {
            metrics.connectionErrors.add(1)
        }
        context.close(promise: nil)
    }

    // MARK: - Requests

    private func open(_ streamID: HTTP2StreamID, headers: HPACKHeaders, endStream: Bool) {
        var path = ""
        var method = ""
        var contentType = ""
        var encoding: String?
        var timeout: String?
        var authorization: String?
        for (name, value, _) in headers {
            switch name {
            case ":path": path = value
            case ":method": method = value
            case "content-type": contentType = value
            case "grpc-encoding": encoding = value
            case "grpc-timeout": timeout = value
            case "authorization": authorization = value
            default: break
            }
        }
        let arrived = NIODeadline.now()
        guard method == "POST" else {
            return refuse(streamID, status: GRPCStatus(.unimplemented, "method \(method) is not POST"), httpStatus: "405", clientDone: endStream)
        }
        guard GRPCFraming.isGRPCContentType(contentType) else {
            return refuse(
                streamID, status: GRPCStatus(.internal, "invalid gRPC content-type \"\(contentType)\""), httpStatus: "415",
                clientDone: endStream)
        }
        let index = methods.index(of: path)
        // Without the token, a caller learns nothing, not even which methods exist.
        if let security, index.map({ methods.methods[$0].requiresToken }) ?? true, !security.authorizes(authorization) {
            metrics.unauthenticated.add(1)
            guard let index else {
                return refuse(streamID, status: GRPCStatus(.unauthenticated, Self.unauthenticated(authorization)), clientDone: endStream)
            }
            metrics.started(index)
            calls[streamID] = Call(method: index, arrived: arrived.uptimeNanoseconds, clientDone: endStream)
            return answer(streamID: streamID.asInt, with: .status(GRPCStatus(.unauthenticated, Self.unauthenticated(authorization))))
        }
        guard let index else {
            metrics.unknownMethods.add(1)
            return refuse(streamID, status: methods.unknown(path), clientDone: endStream)
        }
        metrics.started(index)
        var call = Call(method: index, arrived: arrived.uptimeNanoseconds)
        call.clientDone = endStream
        if let encoding, encoding != "identity" {
            calls[streamID] = call
            return answer(
                streamID: streamID.asInt,
                with: .status(GRPCStatus(.unimplemented, "grpc-encoding \"\(encoding)\" is not supported; send identity")),
                extraHeaders: [("grpc-accept-encoding", "identity")])
        }
        if let timeout {
            guard let nanoseconds = GRPCTimeout.nanoseconds(timeout) else {
                calls[streamID] = call
                return answer(streamID: streamID.asInt, with: .status(GRPCStatus(.internal, "malformed grpc-timeout \"\(timeout)\"")))
            }
            call.deadline = nanoseconds >= Int64.max / 2 ? nil : arrived + .nanoseconds(nanoseconds)
        }
        calls[streamID] = call
        if endStream { clientFinished(streamID) }
    }

    private func received(_ frame: HTTP2Frame.FramePayload.Data, on streamID: HTTP2StreamID) {
        guard case .byteBuffer(var bytes) = frame.data else { return }
        // Every DATA byte goes back to the connection window (a call's bytes are bounded by its
        // own window and GRPC_MAX_MESSAGE_BYTES, not by starving the connection), in one
        // WINDOW_UPDATE per half window, written here so that NIOHTTP2Handler's flush at the end
        // of the read burst carries it with the answers: one write syscall per burst, not two.
        unreturnedCredit += bytes.readableBytes + (frame.paddingBytes.map { $0 + 1 } ?? 0)
        if unreturnedCredit >= limits.connectionWindow / 2 {
            write(.rootStream, .windowUpdate(windowSizeIncrement: unreturnedCredit))
            unreturnedCredit = 0
            flushSoon()
        }
        guard var call = calls[streamID], case .receiving = call.phase else { return }
        if call.body == nil {
            call.body = bytes
        } else {
            call.body!.writeBuffer(&bytes)
        }
        if call.messageLength == nil, let body = call.body, body.readableBytes >= 5 {
            let flag = body.getInteger(at: body.readerIndex, as: UInt8.self)!
            let length = Int(body.getInteger(at: body.readerIndex + 1, as: UInt32.self)!)
            if flag != 0 {
                calls[streamID] = call
                return answer(
                    streamID: streamID.asInt,
                    with: .status(GRPCStatus(.internal, "compressed message without a negotiated grpc-encoding")))
            }
            if length > limits.maxMessageBytes {
                metrics.oversizedMessages.add(1)
                calls[streamID] = call
                return answer(
                    streamID: streamID.asInt,
                    with: .status(GRPCStatus(
                        .resourceExhausted,
                        "request message of \(length) bytes is larger than GRPC_MAX_MESSAGE_BYTES (\(limits.maxMessageBytes))")))
            }
            call.messageLength = length
        }
        if let length = call.messageLength, call.body!.readableBytes > 5 + length {
            calls[streamID] = call
            return answer(streamID: streamID.asInt, with: .status(GRPCStatus(.internal, "more than one request message on a unary call")))
        }
        calls[streamID] = call
        if frame.endStream { clientFinished(streamID) }
    }

    /// The client's side of the stream ended: the request is complete, or it is wrong.
    private func clientFinished(_ streamID: HTTP2StreamID) {
        guard var call = calls[streamID] else { return }
        call.clientDone = true
        guard case .receiving = call.phase else {
            calls[streamID] = call
            return
        }
        guard let length = call.messageLength, var body = call.body, body.readableBytes == 5 + length else {
            calls[streamID] = call
            return answer(streamID: streamID.asInt, with: .status(GRPCStatus(.internal, "the request ended without a complete message")))
        }
        if let deadline = call.deadline, deadline <= .now() {
            calls[streamID] = call
            return answer(streamID: streamID.asInt, with: .status(GRPCStatus(.deadlineExceeded, "deadline exceeded before the call was handled")))
        }
        body.moveReaderIndex(forwardBy: 5)
        metrics.received(call.method)
        let connection = ConnectionReference(self, loop: context!.eventLoop)
        switch methods.methods[call.method].handler {
        case .unary(let handler):
            call.phase = .dispatched
            call.body = nil
            calls[streamID] = call
            handler(GRPCCall(request: body, arrived: call.arrived, connection: connection, streamID: streamID.asInt))
        case .serverStreaming(let handler):
            call.phase = .streaming
            call.body = nil
            calls[streamID] = call
            write(streamID, .headers(.init(headers: GRPCFraming.responseHeaders)))
            handler(GRPCServerStream(request: body, connection: connection, streamID: streamID.asInt))
        }
        // Not answered yet (durable acknowledgement, a Redis round trip): the deadline, if
        // any, now needs a timer.
        if let deadline = calls[streamID]?.deadline, calls[streamID]?.phase == .dispatched {
            let handler = NIOLoopBound(self, eventLoop: context!.eventLoop)
            calls[streamID]!.timer = context!.eventLoop.scheduleTask(deadline: deadline) {
                handler.value.expire(streamID)
            }
        }
    }
}

extension HTTP2StreamID {
    var asInt: Int { Int(self) }
}
