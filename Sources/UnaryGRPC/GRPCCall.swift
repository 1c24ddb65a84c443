import NIOCore

/// The connection handler, handed to other threads only to be called back on its event loop.
struct ConnectionReference: @unchecked Sendable {
    // @unchecked: `handler` is touched only on `loop` (`run` hops there first).
    private let handler: GRPCConnectionHandler
    let loop: any EventLoop

    init(_ handler: GRPCConnectionHandler, loop: any EventLoop) {
        self.handler = handler
        self.loop = loop
    }

    /// Runs `body` on the connection's event loop: at once when already there.
    func run(_ body: @escaping @Sendable (GRPCConnectionHandler) -> Void) {
        if loop.inEventLoop {
            body(handler)
        } else {
            let handler = UnsafeHandlerTransfer(handler)
            loop.execute { body(handler.value) }
        }
    }
}

private struct UnsafeHandlerTransfer: @unchecked Sendable {
    let value: GRPCConnectionHandler
    init(_ value: GRPCConnectionHandler) { self.value = value }
}

/// One unary call: its request message and the means to answer it, once, from any thread.
/// An answer to a call that is already over (the client reset it, its deadline passed, the
/// connection closed) is dropped.
public struct GRPCCall: Sendable {
    /// The request message (without the 5-byte gRPC prefix).
    public let request: ByteBuffer
    /// When its HEADERS arrived (CLOCK_MONOTONIC nanoseconds): the call's start.
    public let arrived: UInt64
    let connection: ConnectionReference
    let streamID: Int

    /// Answers OK with `message` (serialized; the prefix is added here).
    public func respond(_ message: ByteBuffer) {
        let streamID = streamID
        connection.run { $0.answer(streamID: streamID, with: .message(message)) }
    }

    /// Answers with a status other than OK (trailers only).
    public func fail(_ status: GRPCStatus) {
        let streamID = streamID
        connection.run { $0.answer(streamID: streamID, with: .status(status)) }
    }

    /// `action` runs once, on the event loop, if the call ends without the method's answer: the
    /// client reset it or went away, its deadline passed (answered DEADLINE_EXCEEDED by the
    /// server), or the connection closed. At once if the call is already over. For a method
    /// that waits (a commit, a reply), so that its wait can stop with the call.
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        let streamID = streamID
        connection.run { $0.setCancelAction(streamID: streamID, action) }
    }
}

/// One server-streaming call: its request, messages sent as they come, then a status.
public struct GRPCServerStream: Sendable {
    public let request: ByteBuffer
    let connection: ConnectionReference
    let streamID: Int

    /// Sends one response message (the response headers go before the first).
    public func send(_ message: ByteBuffer) {
        let streamID = streamID
        connection.run { $0.send(streamID: streamID, message: message) }
    }

    /// Ends the call with `status`.
    public func finish(_ status: GRPCStatus = .ok) {
        let streamID = streamID
        connection.run { $0.answer(streamID: streamID, with: .status(status)) }
    }

    /// `action` runs once, on the event loop, if the call ends without `finish` (the client
    /// reset it or went away, or the server closed the connection). Call it from the handler.
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        let streamID = streamID
        connection.run { $0.setCancelAction(streamID: streamID, action) }
    }
}
