import NIOCore
import NIOHPACK

/// The few bytes gRPC adds over HTTP/2 that the server writes (the rest is swift-nio-http2's):
/// the 5-byte length prefix of a message, the response headers, the trailers and their status
/// values, and which request content types are gRPC's.
enum GRPCFraming {
    /// `application/grpc`, alone or followed by `+codec` or `;parameters`.
    static func isGRPCContentType(_ value: String) -> Bool {
        guard value.hasPrefix("application/grpc") else { return false }
        let rest = value.utf8.dropFirst("application/grpc".utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: ";")
    }

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    static let okTrailers: HPACKHeaders = ["grpc-status": "0"]
    static let statusValues = (0...16).map { String($0) }
    /// An empty message (google.protobuf.Empty) with its prefix: five zero bytes, shared.
    static let emptyMessage = ByteBuffer(bytes: [0, 0, 0, 0, 0])

    /// `message` behind its prefix: not compressed (0), then its length, big-endian.
    static func prefixed(_ message: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        if message.readableBytes == 0 { return emptyMessage }
        var buffer = allocator.buffer(capacity: 5 + message.readableBytes)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.readableBytes))
        var message = message
        buffer.writeBuffer(&message)
        return buffer
    }
}
