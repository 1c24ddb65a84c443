import NIOCore

/// What a listening socket reports when `accept` fails (EMFILE at the process's open-files limit,
/// ENFILE at the system's): each failure is counted and `onError` hears it (the service logs it,
/// rate-limited), so an operator sees why new connections are not served.
///
/// Known limit: NIO leaves the listener registered for reading after a failed accept, so while a
/// connection waits in the backlog the event loop retries at once (`FaultInjectionTests/
/// fileDescriptorLimit` counted about 1.3 million failed accepts in 15 s, a core); NIO's
/// `AcceptBackoffHandler` does not stop it, since no `read` is asked for in between. The calls on
/// open connections go on meanwhile, and the limit is the operator's to raise (the log says so).
public enum AcceptErrors {
    /// Adds the observer to a server channel (`serverChannelInitializer`).
    public static func install(
        on channel: any Channel, count: @escaping @Sendable () -> Void, onError: @escaping @Sendable (any Error) -> Void
    ) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(Observer(count: count, onError: onError))
        }
    }

    private final class Observer: ChannelInboundHandler {
        typealias InboundIn = any Channel
        private let count: @Sendable () -> Void
        private let onError: @Sendable (any Error) -> Void

        init(count: @escaping @Sendable () -> Void, onError: @escaping @Sendable (any Error) -> Void) {
            self.count = count
            self.onError = onError
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            count()
            onError(error)
            context.fireErrorCaught(error)
        }
    }
}
