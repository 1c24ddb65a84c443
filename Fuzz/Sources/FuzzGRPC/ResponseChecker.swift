import FuzzSupport
import NIOCore
import NIOHPACK

/// What a gRPC client may expect of the server's bytes, checked as a client reads them: the
/// connection preface (a SETTINGS frame) first; whole frames, no longer than the client allows
/// (16,384 bytes, or its SETTINGS_MAX_FRAME_SIZE); header blocks (HEADERS and CONTINUATION) that
/// decode with one HPACK decoder over the connection, whose dynamic table may grow to the client's
/// SETTINGS_HEADER_TABLE_SIZE (4,096 bytes unless it sent one); on each stream (odd, client-initiated) a
/// first block with `:status`, DATA only after it, an END_STREAM block carrying `grpc-status` in
/// 0…16, nothing but RST_STREAM after it; no control character in any header value; and DATA that
/// is whole gRPC messages (flag 0, a length that matches).
struct ResponseChecker {
    private struct Stream {
        var headersSeen = false
        var ended = false
        var data: [UInt8] = []
    }

    private let maxFrameSize: Int
    private var decoder: HPACKDecoder
    private var streams: [UInt32: Stream] = [:]

    init(input: [UInt8]) {
        let settings = ClientSettings(input)
        maxFrameSize = settings.largestFrameSize
        decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        // Set after init: the initializer preallocates for its size (a client may offer 4 GiB),
        // the setter only moves the bound (found by the fuzzer: an out-of-memory of the checker).
        decoder.maxDynamicTableLength = settings.largestHeaderTableSize
    }

    mutating func check(_ bytes: [UInt8]) {
        var offset = 0
        var block: (stream: UInt32, flags: UInt8, bytes: [UInt8])?
        var first = true
        while offset < bytes.count {
            require(bytes.count - offset >= 9, "a frame header cut short at byte \(offset)")
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            let type = bytes[offset + 3]
            let flags = bytes[offset + 4]
            let stream = UInt32(bytes[offset + 5] & 0x7F) << 24 | UInt32(bytes[offset + 6]) << 16 | UInt32(bytes[offset + 7]) << 8
                | UInt32(bytes[offset + 8])
            require(length <= maxFrameSize, "a frame of \(length) bytes (the client allows \(maxFrameSize))")
            require(bytes.count - offset - 9 >= length, "a frame cut short at byte \(offset)")
            let payload = Array(bytes[(offset + 9)..<(offset + 9 + length)])
            offset += 9 + length
            if first {
                require(type == 0x4 && stream == 0 && flags & 0x1 == 0, "the first frame is not the server's SETTINGS")
                first = false
            }
            if let open = block {
                require(type == 0x9 && stream == open.stream, "a header block interrupted by a frame of type \(type)")
                block = (open.stream, open.flags, open.bytes + payload)
                if flags & 0x4 != 0 {
                    headers(block!.bytes, stream: open.stream, endStream: open.flags & 0x1 != 0)
                    block = nil
                }
                continue
            }
            switch type {
            case 0x0:  // DATA
                requireOpen(stream)
                require(streams[stream]?.headersSeen == true, "DATA before the response headers on stream \(stream)")
                streams[stream]!.data += unpadded(payload, flags)
                if flags & 0x1 != 0 { end(stream) }
            case 0x1:  // HEADERS
                requireOpen(stream)
                var fragment = unpadded(payload, flags)
                if flags & 0x20 != 0 {
                    require(fragment.count >= 5, "a short priority block")
                    fragment.removeFirst(5)
                }
                if flags & 0x4 != 0 {
                    headers(fragment, stream: stream, endStream: flags & 0x1 != 0)
                } else {
                    block = (stream, flags, fragment)
                }
            case 0x9:
                FuzzSupport.fail("fuzz-grpc", "a CONTINUATION frame outside a header block")
            case 0x5:
                FuzzSupport.fail("fuzz-grpc", "a PUSH_PROMISE (the client never enables push)")
            case 0x2, 0x3:  // PRIORITY, RST_STREAM
                require(stream != 0, "a stream frame of type \(type) on stream 0")
                if type == 0x3 { streams[stream, default: Stream()].ended = true }
            case 0x4, 0x6, 0x7:  // SETTINGS, PING, GOAWAY
                require(stream == 0, "a connection frame of type \(type) on stream \(stream)")
            default:
                break
            }
        }
        require(!first, "the server wrote nothing (not even its SETTINGS)")
        require(block == nil, "a header block without END_HEADERS at the end")
    }

    private mutating func headers(_ fragment: [UInt8], stream: UInt32, endStream: Bool) {
        var buffer = ByteBuffer(bytes: fragment)
        let decoded: HPACKHeaders
        do {
            decoded = try decoder.decodeHeaders(from: &buffer)
        } catch {
            FuzzSupport.fail("fuzz-grpc", "a header block on stream \(stream) does not decode: \(error)")
        }
        for (name, value, _) in decoded {
            require(!value.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "a control character in \(name): \(value.debugDescription)")
        }
        if streams[stream]?.headersSeen != true {
            require(
                decoded.first(name: ":status").map { $0.count == 3 && $0.allSatisfy(\.isNumber) } == true,
                "response headers without :status on stream \(stream): \(decoded)")
            streams[stream, default: Stream()].headersSeen = true
        }
        if endStream {
            require(
                decoded.first(name: "grpc-status").flatMap { Int($0) }.map { (0...16).contains($0) } == true,
                "an end of stream without a grpc-status in 0...16 on stream \(stream): \(decoded)")
            end(stream)
        }
    }

    private func requireOpen(_ stream: UInt32) {
        require(stream % 2 == 1, "a response on stream \(stream), which the client cannot have opened")
        require(streams[stream]?.ended != true, "a frame on stream \(stream) after its end")
    }

    /// The stream's DATA is whole gRPC messages.
    private mutating func end(_ stream: UInt32) {
        var data = streams[stream]!.data[...]
        while !data.isEmpty {
            require(data.count >= 5 && data.first == 0, "a gRPC message prefix that is cut short or flagged")
            let length = data.dropFirst().prefix(4).reduce(0) { $0 << 8 | Int($1) }
            require(data.count >= 5 + length, "a gRPC message of \(length) bytes cut short")
            data = data.dropFirst(5 + length)
        }
        streams[stream]!.ended = true
    }

    private func unpadded(_ payload: [UInt8], _ flags: UInt8) -> [UInt8] {
        guard flags & 0x8 != 0 else { return payload }
        require(!payload.isEmpty && Int(payload[0]) < payload.count, "bad padding")
        return Array(payload[1..<(payload.count - Int(payload[0]))])
    }

    private func require(_ condition: Bool, _ property: @autoclosure () -> String) {
        FuzzSupport.require(condition, "fuzz-grpc", property())
    }
}

/// The largest values of the settings that bound the server's writes, over every SETTINGS frame
/// the client sent, read as the server reads them: after the 24-byte preface, whole frames until
/// one does not fit. The largest, not the last: the server may write under an earlier value before
/// it reads a later SETTINGS, so the check allows any the client offered.
private struct ClientSettings {
    /// SETTINGS_MAX_FRAME_SIZE, valid values only (16,384 when none).
    private(set) var largestFrameSize = 16_384
    /// SETTINGS_HEADER_TABLE_SIZE (4,096, HPACK's initial size, when none). The server's encoder
    /// may announce any dynamic table size up to it (RFC 7541, section 4.2).
    private(set) var largestHeaderTableSize = 4_096

    init(_ input: [UInt8]) {
        var offset = 24
        while input.count - offset >= 9 {
            let length = Int(input[offset]) << 16 | Int(input[offset + 1]) << 8 | Int(input[offset + 2])
            guard input.count - offset - 9 >= length else { break }
            if input[offset + 3] == 0x4 && input[offset + 4] & 0x1 == 0 && length % 6 == 0 {
                for setting in stride(from: offset + 9, to: offset + 9 + length, by: 6) where input[setting] == 0 {
                    let value = input[(setting + 2)..<(setting + 6)].reduce(0) { $0 << 8 | Int($1) }
                    switch input[setting + 1] {
                    case 0x1: largestHeaderTableSize = max(largestHeaderTableSize, value)
                    case 0x5 where (16_384...16_777_215).contains(value): largestFrameSize = max(largestFrameSize, value)
                    default: break
                    }
                }
            }
            offset += 9 + length
        }
    }
}
