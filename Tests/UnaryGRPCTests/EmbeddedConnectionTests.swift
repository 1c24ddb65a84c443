import NIOCore
import NIOEmbedded
import Testing
import UnaryGRPC

/// The server's connection pipeline (`UnaryGRPCServer.ConnectionPipeline`) served in process,
/// through an `EmbeddedChannel`: bytes in as a client writes them, frames out.
@Suite("A connection served in process")
struct EmbeddedConnectionTests {
    /// Found by the fuzz target `grpc` (Fuzz/corpus/grpc/crash-fb83cc90…): a first HEADERS whose
    /// header name holds a NUL is refused by NIOHTTP2Handler with RST_STREAM, reported closed but
    /// never created, and the connection management handler's assertion on that trapped a debug
    /// build. Now the stream is reset and the server lives on. (The connection is then closed:
    /// `GRPCConnectionHandler.errorCaught` is handed NIOHTTP2Handler's underlying error, not a
    /// `StreamError`, so it takes it for a connection error; not what this test pins down.)
    @Test func malformedHeaderNameResetsItsStream() throws {
        let echo = GRPCMethod(service: "test.Echo", name: "Call", handler: .unary { call in call.respond(call.request) })
        let pipeline = UnaryGRPCServer.ConnectionPipeline(
            configuration: .init(host: "127.0.0.1", port: 6565), methods: [echo], metrics: GRPCServerMetrics(methods: [echo]),
            security: nil)
        let channel = EmbeddedChannel()
        try pipeline.install(on: channel)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6565), promise: nil)

        var input = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + Self.frame(type: 0x4, flags: 0, stream: 0, [])
        let request = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"), ("content-type", "application/grpc")]
        input += Self.frame(type: 0x1, flags: 0x4, stream: 1, Self.literals(request + [("\u{0}path", "/test.Echo/Call")]))
        try channel.writeInbound(ByteBuffer(bytes: input))
        channel.embeddedEventLoop.run()

        var written: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { written += buffer.readableBytesView }
        }
        let frames = Self.frames(written)
        #expect(frames.first?.type == 0x4, "the server's SETTINGS first")
        #expect(frames.contains { $0.type == 0x3 && $0.stream == 1 }, "stream 1 is reset")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    private static func frame(type: UInt8, flags: UInt8, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        for shift: UInt32 in [16, 8, 0] { bytes.append(UInt8(truncatingIfNeeded: UInt32(payload.count) >> shift)) }
        bytes += [type, flags]
        for shift: UInt32 in [24, 16, 8, 0] { bytes.append(UInt8(truncatingIfNeeded: stream >> shift)) }
        return bytes + payload
    }

    /// HPACK literal header fields without indexing, new names, no Huffman (lengths under 127).
    private static func literals(_ headers: [(String, String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in headers {
            bytes.append(0x00)
            for text in [name, value] {
                bytes.append(UInt8(text.utf8.count))
                bytes += Array(text.utf8)
            }
        }
        return bytes
    }

    private static func frames(_ bytes: [UInt8]) -> [(type: UInt8, stream: UInt32, payload: [UInt8])] {
        var frames: [(type: UInt8, stream: UInt32, payload: [UInt8])] = []
        var offset = 0
        while bytes.count - offset >= 9 {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            let stream = bytes[(offset + 5)..<(offset + 9)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
            guard bytes.count - offset - 9 >= length else { break }
            frames.append((bytes[offset + 3], stream, Array(bytes[(offset + 9)..<(offset + 9 + length)])))
            offset += 9 + length
        }
        return frames
    }
}
