import NIOCore
import NIOHPACK
import NIOHTTP2

/// The answers' half of `GRPCConnectionHandler`: statuses, messages and trailers written as
/// frames, flushed once per burst; calls ended without an answer counted.
extension GRPCConnectionHandler {
    /// The UNAUTHENTICATED message for a call without the right token.
    static func unauthenticated(_ authorization: String?) -> String {
        authorization == nil ? "missing authorization: send \"authorization: Bearer <token>\"" : "invalid bearer token"
    }

    /// The deadline of a call still waiting for its answer passed: DEADLINE_EXCEEDED, then its
    /// cancel action (the method's wait stops with the call).
    func expire(_ streamID: HTTP2StreamID) {
        let action = calls[streamID]?.onCancel
        answer(streamID: streamID.asInt, with: .status(GRPCStatus(.deadlineExceeded, "deadline exceeded")))
        action?()
    }

    /// Ends call `streamID` with `answer`, if it is still open; counts it.
    func answer(streamID: Int, with answer: Answer, extraHeaders: [(String, String)] = []) {
        let id = HTTP2StreamID(streamID)
        guard let call = calls.removeValue(forKey: id) else { return }
        call.timer?.cancel()
        let code: GRPCStatus.Code
        switch answer {
        case .message(let message):
            code = .ok
            if call.phase != .streaming { write(id, .headers(.init(headers: GRPCFraming.responseHeaders))) }
            write(id, .data(.init(data: .byteBuffer(GRPCFraming.prefixed(message, allocator: context!.channel.allocator)))))
            write(id, .headers(.init(headers: GRPCFraming.okTrailers, endStream: true)))
            metrics.sent(call.method)
        case .status(let status):
            code = status.code
            var trailers = call.phase == .streaming ? HPACKHeaders() : GRPCFraming.responseHeaders
            trailers.add(name: "grpc-status", value: GRPCFraming.statusValues[status.code.rawValue])
            if !status.message.isEmpty { trailers.add(name: "grpc-message", value: status.encodedMessage) }
            for (name, value) in extraHeaders { trailers.add(name: name, value: value) }
            write(id, .headers(.init(headers: trailers, endStream: true)))
        }
        if !call.clientDone {
            // Answered before the request ended (refused early): ask the client to stop sending.
            write(id, .rstStream(.noError))
        }
        metrics.handled(call.method, code: code, nanoseconds: NIODeadline.now().uptimeNanoseconds &- call.arrived)
        flushSoon()
    }

    /// One message of a server-streaming call.
    func send(streamID: Int, message: ByteBuffer) {
        let id = HTTP2StreamID(streamID)
        guard let call = calls[id], call.phase == .streaming else { return }
        write(id, .data(.init(data: .byteBuffer(GRPCFraming.prefixed(message, allocator: context!.channel.allocator)))))
        metrics.sent(call.method)
        flushSoon()
    }

    func setCancelAction(streamID: Int, _ action: @escaping @Sendable () -> Void) {
        let id = HTTP2StreamID(streamID)
        if calls[id] != nil {
            calls[id]!.onCancel = action
        } else {
            action()
        }
    }

    /// A call that never reached a method: counted apart, answered with `status`.
    func refuse(_ streamID: HTTP2StreamID, status: GRPCStatus, httpStatus: String = "200", clientDone: Bool) {
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: httpStatus)
        headers.add(name: "content-type", value: "application/grpc")
        headers.add(name: "grpc-status", value: GRPCFraming.statusValues[status.code.rawValue])
        headers.add(name: "grpc-message", value: status.encodedMessage)
        write(streamID, .headers(.init(headers: headers, endStream: true)))
        if !clientDone { write(streamID, .rstStream(.noError)) }
        flushSoon()
    }

    /// A call that ended without an answer written: cancelled by its client, or, when the reset
    /// comes at its deadline (within `deadlineSlack` before it, or after), given up by a client
    /// whose deadline passed a moment before ours did (its clock started first): counted as
    /// DEADLINE_EXCEEDED, as our timer would have.
    func end(_ call: Call) {
        call.timer?.cancel()
        call.onCancel?()
        let now = NIODeadline.now()
        let expired = call.deadline.map { now + Self.deadlineSlack >= $0 } ?? false
        metrics.handled(call.method, code: expired ? .deadlineExceeded : .cancelled, nanoseconds: now.uptimeNanoseconds &- call.arrived)
    }

    /// How early a client's reset may come and still be its deadline passing.
    static let deadlineSlack = TimeAmount.milliseconds(50)

    func write(_ streamID: HTTP2StreamID, _ payload: HTTP2Frame.FramePayload) {
        context?.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: payload)), promise: nil)
    }

    /// Flushes at the end of the read burst, or (for answers from elsewhere: a commit, a timer)
    /// once after the burst of answers already queued on the event loop.
    func flushSoon() {
        if inReadLoop {
            flushPending = true
            return
        }
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            handler.value.flushScheduled = false
            handler.value.context?.flush()
        }
    }
}
