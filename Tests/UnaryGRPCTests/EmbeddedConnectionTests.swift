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
    /// build. Now the stream is reset, counted, and the connection goes on: the next call on it is
    /// answered. (NIOHTTP2Handler reports a stream error as its bare underlying error, as it does
    /// a connection error, and the connection used to be closed for it: `GoAwayWatch` tells them
    /// apart.)
    @Test func malformedHeadersResetOnlyTheirStream() throws {
        let (channel, metrics) = try Self.connection()
        let request = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"), ("content-type", "application/grpc")]
        var input = Self.preface
        input += Self.frame(type: 0x1, flags: 0x4, stream: 1, Self.literals(request + [("\u{0}path", "/test.Echo/Call")]))
        input += Self.frame(type: 0x1, flags: 0x4, stream: 3, Self.literals(request + [(":path", "/test.Echo/Call"), ("X-Upper", "1")]))
        let valid = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"), (":path", "/test.Echo/Call"), ("content-type", "application/grpc")]
        input += Self.frame(type: 0x1, flags: 0x4, stream: 5, Self.literals(valid))
        input += Self.frame(type: 0x0, flags: 0x1, stream: 5, [0, 0, 0, 0, 2] + Array("hi".utf8))
        let frames = try Self.serve(channel, input)
        #expect(frames.first?.type == 0x4, "the server's SETTINGS first")
        #expect(frames.contains { $0.type == 0x3 && $0.stream == 1 }, "stream 1 is reset")
        #expect(frames.contains { $0.type == 0x3 && $0.stream == 3 }, "stream 3 is reset")
        #expect(!frames.contains { $0.type == 0x7 }, "no GOAWAY")
        #expect(frames.contains { $0.type == 0x0 && $0.stream == 5 && $0.payload == [0, 0, 0, 0, 2] + Array("hi".utf8) }, "stream 5 answered")
        #expect(channel.isActive)
        #expect(metrics.exposition().contains("grpc_server_stream_errors_total 2\n"))
        #expect(metrics.exposition().contains("grpc_server_connection_errors_total 0\n"))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    /// A connection error still ends the connection: DATA on stream 0 is one (RFC 9113, 6.1).
    @Test func connectionErrorEndsTheConnection() throws {
        let (channel, metrics) = try Self.connection()
        let frames = try Self.serve(channel, Self.preface + Self.frame(type: 0x0, flags: 0, stream: 0, [1, 2, 3]))
        #expect(frames.contains { $0.type == 0x7 }, "GOAWAY")
        #expect(!channel.isActive)
        #expect(metrics.exposition().contains("grpc_server_connection_errors_total 1\n"))
        #expect(metrics.exposition().contains("grpc_server_stream_errors_total 0\n"))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(type: 0x4, flags: 0, stream: 0, [])

    /// A connection to a server with one method, `test.Echo/Call`, answering with the request.
    private static func connection() throws -> (EmbeddedChannel, GRPCServerMetrics) {
        let echo = GRPCMethod(service: "test.Echo", name: "Call", handler: .unary { call in call.respond(call.request) })
        let metrics = GRPCServerMetrics(methods: [echo])
        let pipeline = UnaryGRPCServer.ConnectionPipeline(
            configuration: .init(host: "127.0.0.1", port: 6565), methods: [echo], metrics: metrics, security: nil)
        let channel = EmbeddedChannel()
        try pipeline.install(on: channel)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6565), promise: nil)
        return (channel, metrics)
    }

    /// Writes `input` as one read, runs the loop, and returns the frames the server wrote.
    private static func serve(_ channel: EmbeddedChannel, _ input: [UInt8]) throws -> [(type: UInt8, stream: UInt32, payload: [UInt8])] {
        try channel.writeInbound(ByteBuffer(bytes: input))
        channel.embeddedEventLoop.run()
        var written: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { written += buffer.readableBytesView }
        }
        return frames(written)
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
