import NIOCore

/// Between the socket (or TLS) and `NIOHTTP2Handler`: notes whether a GOAWAY frame has been
/// written on the connection, reading only the frame headers of what goes out.
///
/// `NIOHTTP2Handler` reports a stream error (one stream refused with RST_STREAM: a request whose
/// headers are malformed, say) and a connection error (GOAWAY: the connection is done) to the
/// handlers after it the same way, as the bare underlying error, and writes the GOAWAY of a
/// connection error before reporting it. So `GRPCConnectionHandler` asks this whether a GOAWAY
/// went out: if not, the error cost one stream and the connection's other calls go on.
final class GoAwayWatch: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// A GOAWAY frame has been written (any: an error's, or a graceful one of the connection
    /// management handler; the connection is going away either way).
    private(set) var written = false
    /// Bytes of the current frame's payload still to come.
    private var payloadLeft = 0
    /// The next frame header, while it is split across writes (NIOHTTP2Handler writes a frame's
    /// header and payload together, except DATA, whose payload follows as writes of its own).
    private var header: [UInt8] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !written {
            switch unwrapOutboundIn(data) {
            case .byteBuffer(let buffer): read(buffer.readableBytesView)
            case .fileRegion(let region): skip(region.readableBytes)
            }
        }
        context.write(data, promise: promise)
    }

    private func read(_ bytes: ByteBufferView) {
        var index = bytes.startIndex
        while index < bytes.endIndex && !written {
            if payloadLeft > 0 {
                let step = min(payloadLeft, bytes.endIndex - index)
                payloadLeft -= step
                index += step
                continue
            }
            header.append(bytes[index])
            index += 1
            guard header.count == 9 else { continue }
            payloadLeft = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            written = header[3] == 0x7
            header.removeAll(keepingCapacity: true)
        }
    }

    private func skip(_ count: Int) {
        payloadLeft = max(0, payloadLeft - count)
    }
}
