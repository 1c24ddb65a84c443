import Foundation
import NIOCore
import NIOPosix

// bench-floor: what SwiftNIO's event loop alone costs per request when each request is its own
// wake-up (one request per millisecond on one connection, as the gRPC path sees the bridge at
// 1,000 events/s): a NIO TCP server answering each 200-byte request with 40 bytes, no HTTP/2, no
// work. Beside bench/floor/wakeup_floor.c (the kernel alone) and bench/floor/grpc_floor.py (the
// gRPC server answering Health/Check), it splits the gRPC path's CPU per call into kernel, event
// loop, and HTTP/2 + gRPC.
//
//   bench-floor [REQUESTS=20000] [INTERVAL_US=1000]

final class Answer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply = ByteBuffer(repeating: 0, count: 40)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytes
        for _ in 0..<(bytes / 200) { context.write(wrapOutboundOut(reply), promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let requests = arguments.first ?? 20_000
let interval = arguments.dropFirst().first ?? 1_000

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { $0.pipeline.addHandler(Answer()) }
    .bind(host: "127.0.0.1", port: 0).wait()
let port = server.localAddress!.port!

// The client: a blocking socket on this thread, its own CPU subtracted from the process's.
let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_port = in_port_t(UInt16(port).bigEndian)
address.sin_addr.s_addr = inet_addr("127.0.0.1")
var one: Int32 = 1
setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
_ = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
let request = [UInt8](repeating: 0, count: 200)
var answer = [UInt8](repeating: 0, count: 40)
let processStart = processCPUSeconds()
let clientStart = threadCPUSeconds()
var next = timespec()
clock_gettime(CLOCK_MONOTONIC, &next)
for _ in 0..<requests {
    next.tv_nsec += interval * 1_000
    while next.tv_nsec >= 1_000_000_000 {
        next.tv_nsec -= 1_000_000_000
        next.tv_sec += 1
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nil)
    _ = request.withUnsafeBytes { write(client, $0.baseAddress, 200) }
    var got = 0
    while got < 40 {
        let n = answer.withUnsafeMutableBytes { read(client, $0.baseAddress! + got, 40 - got) }
        guard n > 0 else { fatalError("the server closed the connection") }
        got += n
    }
}
let serverCPU = (processCPUSeconds() - processStart) - (threadCPUSeconds() - clientStart)
close(client)
try server.close().wait()
try group.syncShutdownGracefully()
print(String(format: "NIO floor: %d requests, one per %d us: server CPU %.1f us per request", requests, interval, serverCPU / Double(requests) * 1e6))
