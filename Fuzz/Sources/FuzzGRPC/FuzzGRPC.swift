import Buffer
@testable import EventHandler
import EventRules
import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
import UnaryGRPC

/// Bytes from a gRPC client → the server's connection pipeline, exactly as `UnaryGRPCServer`
/// builds it (`ConnectionPipeline`: NIOHTTP2Handler, the connection management handler,
/// GRPCConnectionHandler) → the service's methods (the two event methods, GDPR deletion, health)
/// over an in-process ingest: validation, goal matching and a real buffer whose flusher is never
/// started, so nothing needs PostgreSQL or Redis. One `EmbeddedChannel` per input: connect, the
/// input as one read, the event loop's timers run an hour past every deadline (idle, age,
/// keepalive, grpc-timeout), then the connection closes.
///
/// Beyond not crashing: everything the server wrote is a well-formed HTTP/2 response stream
/// (`ResponseChecker`): its SETTINGS first, whole frames, header blocks that decode, a `:status`
/// on each response, a `grpc-status` 0…16 on each end of stream, no control character in any
/// header value, gRPC-framed messages.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGRPC(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let methods = serviceMethods()
    let pipeline = UnaryGRPCServer.ConnectionPipeline(
        configuration: configuration, methods: methods, metrics: GRPCServerMetrics(methods: methods), security: nil)
    let channel = EmbeddedChannel()
    var written: [UInt8] = []
    do {
        try pipeline.install(on: channel)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 50_051), promise: nil)
        written += try outbound(channel)
        try channel.writeInbound(ByteBuffer(bytes: input))
        channel.embeddedEventLoop.run()
        written += try outbound(channel)
        // Every timer the connection set: deadlines are taken from the real clock, the embedded
        // loop's starts at zero.
        channel.embeddedEventLoop.advanceTime(by: .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)) + .hours(1))
        written += try outbound(channel)
        _ = try channel.finish(acceptAlreadyClosed: true)
        written += try outbound(channel)
    } catch {
        FuzzSupport.fail(target, "the embedded connection failed: \(error)")
    }
    var checker = ResponseChecker(input: input)
    checker.check(written)
    return 0
}

private let target = "fuzz-grpc"

private let configuration: UnaryGRPCServer.Configuration = {
    var configuration = UnaryGRPCServer.Configuration(host: "127.0.0.1", port: 50_051)
    configuration.maxConcurrentStreams = 100
    configuration.maxMessageBytes = 4_096
    return configuration
}()

private let metrics = ServiceMetrics()
private let matcher = GoalMatcher(catalog: FuzzSupport.catalog)
private let logger = Logger(label: "fuzz-grpc") { _ in SwiftLogNoOpLogHandler() }

/// The service's gRPC methods over a fresh ingest (a buffer per input, so each input is judged alone).
private func serviceMethods() -> [GRPCMethod] {
    let buffer = EventBuffer(shardCount: 16, limit: 1_000)
    let flusher = Flusher(
        buffer: buffer, store: NoStore(), workerCount: 1,
        configuration: FlushWorker.Configuration(interval: .seconds(1), batchSize: 100), metrics: metrics, logger: logger)
    let ingestor = EventIngestor(
        namespace: FuzzSupport.namespace, matcher: matcher, buffer: buffer, flusher: flusher, durable: false, logger: logger,
        onFlushDue: {})
    let health = HealthState()
    health.set(.ready)
    return EventMethods.methods(ingestor: ingestor) + [UserDeletionMethod.method(ingestor: ingestor)]
        + HealthMethods.methods(state: health)
}

/// The flusher's store; its workers never start, so it is never written to.
private struct NoStore: FlushStore {
    let namespace = FuzzSupport.namespace

    func write(
        _ drained: FlushTransaction.Drained, flushID: Int64, parts: [any CommitPart], logger: Logger
    ) throws -> FlushTransaction.Written {
        FuzzSupport.fail(target, "a flush ran")
    }

    func resolveCommit(
        _ flushID: Int64, _ unknown: FlushTransaction.CommitOutcomeUnknown, deadline: () -> ContinuousClock.Instant?,
        logger: Logger
    ) -> Bool {
        FuzzSupport.fail(target, "a flush ran")
    }

    func pruneCommitRecords(olderThan age: Duration) throws -> Int { 0 }

    func reapIdleConnections() {}
}

private func outbound(_ channel: EmbeddedChannel) throws -> [UInt8] {
    var bytes: [UInt8] = []
    while let data = try channel.readOutbound(as: IOData.self) {
        guard case .byteBuffer(let buffer) = data else { FuzzSupport.fail(target, "a file region written") }
        bytes += buffer.readableBytesView
    }
    return bytes
}
