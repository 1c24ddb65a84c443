import NIOCore
import NIOHTTP2

/// Between `NIOHTTP2Handler` and `NIOHTTP2ServerConnectionManagementHandler`: passes a stream's
/// `StreamClosedEvent` on only when its `NIOHTTP2StreamCreatedEvent` came first.
///
/// `NIOHTTP2Handler` refuses a stream whose first HEADERS is malformed (a header name with a NUL
/// or an upper-case letter, say) with RST_STREAM and reports the stream closed without ever
/// reporting it created; the management handler's state machine asserts that a closed stream was
/// open (swift-nio-http2 1.46.0), so one such request trapped a debug build of the server (found
/// by the fuzz target `grpc`). A release build skips the assertion and its count of open streams
/// is the same either way; no call of `GRPCConnectionHandler` exists for such a stream either.
final class StreamEventFilter: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    private var open: Set<HTTP2StreamID> = []

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let created as NIOHTTP2StreamCreatedEvent:
            open.insert(created.streamID)
        case let closed as StreamClosedEvent:
            guard open.remove(closed.streamID) != nil else { return }
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }
}
