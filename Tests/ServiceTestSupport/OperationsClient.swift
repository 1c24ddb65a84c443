import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 client for the service's operations endpoints, on a real loopback socket:
/// one connection per request, `Connection: close`, the whole answer read to the end.
public struct OperationsClient: Sendable {
    public let port: Int

    public init(port: Int) { self.port = port }

    public struct Answer: Sendable {
        public var status: Int
        public var body: String
    }

    /// GET `path`. Throws if nothing listens (a test polls until it does).
    public func get(_ path: String) async throws -> Answer {
        let collected = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(into: collected))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "127.0.0.1:\(port)")
        headers.add(name: "connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        try await channel.closeFuture.get()
        guard let answer = collected.answer else { throw OperationsClientError("no complete answer for GET \(path)") }
        return answer
    }

    /// GET /metrics, parsed.
    public func metrics() async throws -> MetricsSample {
        let answer = try await get("/metrics")
        guard answer.status == 200 else { throw OperationsClientError("/metrics answered \(answer.status)") }
        return MetricsSample(text: answer.body)
    }

    /// Polls GET `path` until `accept` holds for the answer; returns it. Connection refusals
    /// count as "not yet".
    @discardableResult
    public func waitFor(
        _ path: String, timeout: Duration = .seconds(60), _ accept: (Answer) -> Bool
    ) async throws -> Answer {
        let deadline = ContinuousClock.now + timeout
        var last: String = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let answer = try await get(path)
                if accept(answer) { return answer }
                last = "\(answer.status) \(answer.body.prefix(200))"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw OperationsClientError("GET \(path): condition not met within \(timeout); last: \(last)")
    }

    /// Polls /metrics until `accept` holds; returns that sample.
    @discardableResult
    public func waitForMetrics(timeout: Duration = .seconds(60), _ accept: (MetricsSample) -> Bool) async throws -> MetricsSample {
        let answer = try await waitFor("/metrics", timeout: timeout) { accept(MetricsSample(text: $0.body)) }
        return MetricsSample(text: answer.body)
    }
}

public struct OperationsClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Gathers one response: written on the channel's event loop, read after the channel closed.
private final class Collector: Sendable {
    struct Parts {
        var status: Int?
        var body = ""
        var complete = false
    }

    let parts = Mutex(Parts())

    var answer: OperationsClient.Answer? {
        parts.withLock { parts in
            guard parts.complete, let status = parts.status else { return nil }
            return .init(status: status, body: parts.body)
        }
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let collected: Collector

    init(into collected: Collector) {
        self.collected = collected
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            collected.parts.withLock { $0.status = Int(head.status.code) }
        case .body(let buffer):
            collected.parts.withLock { $0.body += String(buffer: buffer) }
        case .end:
            collected.parts.withLock { $0.complete = true }
            context.close(promise: nil)
        }
    }
}

/// One scrape in the Prometheus text format: every sample by name and labels.
public struct MetricsSample: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public let series: [Series]
    /// `# TYPE` lines: metric family → counter, gauge or histogram.
    public let types: [String: String]

    public init(text: String) {
        var series: [Series] = []
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count >= 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let key = line[..<space]
            var labels: [String: String] = [:]
            let name: Substring
            if let brace = key.firstIndex(of: "{") {
                name = key[..<brace]
                let inner = key[key.index(after: brace)..<(key.lastIndex(of: "}") ?? key.endIndex)]
                // Label values here never contain commas or quotes.
                for pair in inner.split(separator: ",") {
                    guard let eq = pair.firstIndex(of: "=") else { continue }
                    labels[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
            } else {
                name = key
            }
            series.append(Series(name: String(name), labels: labels, value: value))
        }
        self.series = series
        self.types = types
    }

    /// The value of the one series `name` with exactly these labels, or nil.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        series.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The sum of every series `name` whose labels include `matching`.
    public func sum(_ name: String, matching: [String: String] = [:]) -> Double {
        series.filter { s in s.name == name && matching.allSatisfy { s.labels[$0.key] == $0.value } }
            .reduce(0) { $0 + $1.value }
    }
}
