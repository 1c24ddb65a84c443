import Foundation
import NIOCore
import ServiceTestSupport
import Synchronization
import TestSupport
import Testing

@testable import EventHandler

/// The operations port (`/metrics`, `/healthz`, `/readyz`) against clients that are not a
/// scraper: one that stalls half-way through a request, one that pipelines without reading, one
/// too many, one that stays idle. Against the running service with its own limits where a test
/// fits in seconds (the 10 s request timeout, the 64-connection cap), and against an
/// `OperationsServer` in this process with short timeouts for the rest.
@Suite("Operations port under hostile clients", .serialized)
struct OperationsHardeningTests {
    static let defaults = OperationsServer.Limits()

    // MARK: - The running service

    @Test("slowloris: a request head trickled a byte at a time is closed 10 s after its first byte; others are served meanwhile", .timeLimit(.minutes(2)))
    func slowloris() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: TestCatalog().json)
        let socket = try RawSocket(port: harness.metricsPort)
        let started = ContinuousClock.now
        try socket.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        // A byte every half second: a timer that restarts on every read would never fire.
        async let closed = onOwnThread("slowloris") { () -> ContinuousClock.Instant? in
            let deadline = ContinuousClock.now + .seconds(14)
            while ContinuousClock.now < deadline {
                if let at = socket.waitForClose(timeout: .milliseconds(500)) { return at }
                if socket.sendNow([UInt8(ascii: "a")]) == nil { return .now }
            }
            return nil
        }
        #expect(try await harness.http.get("/healthz").status == 200)
        let closedAt = try #require(try await closed, "still open after 14 s")
        let after = closedAt - started
        print("slowloris: closed by the server after \(after)")
        #expect(after >= Self.defaults.requestTimeout - .milliseconds(100) && after < Self.defaults.requestTimeout + .seconds(2), "\(after)")
        let metrics = try await harness.http.metrics()
        #expect(metrics.value("operations_http_connections_timed_out_total", ["timeout": "request"]) == 1)
        #expect(metrics.value("operations_http_connections_timed_out_total", ["timeout": "idle"]) == 0)
        #expect(try harness.stop() == 0)
    }

    @Test("50,000 pipelined GET /metrics never read: the server stops reading and its memory stays flat", .timeLimit(.minutes(2)))
    func pipelinedFlood() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: TestCatalog().json)
        let pid = harness.process.process.processIdentifier
        let oneAnswer = try await harness.http.get("/metrics").body.utf8.count
        let baseline = try Self.residentKiB(pid)
        let socket = try RawSocket(port: harness.metricsPort)
        let requests = Array(String(repeating: "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", count: 50_000).utf8)
        // Sends what the kernel takes (all of it, or until nothing more goes for a second), then
        // watches for 3 s: how much of it the server reads meanwhile, and its memory. Stops at once
        // if the service grows past the bound (as it does, one /metrics rendered and queued per
        // request read, without one response outstanding at most).
        let bound = 32 * 1_024
        async let watched = onOwnThread("flood") { () -> (sent: Int, unreadBefore: Int, unreadAfter: Int, peakKiB: Int) in
            var sent = 0
            var peak = baseline
            var lastProgress = ContinuousClock.now
            func sample() -> Bool {
                peak = max(peak, (try? Self.residentKiB(pid)) ?? 0)
                return peak - baseline <= bound
            }
            while sent < requests.count, ContinuousClock.now - lastProgress < .seconds(1), sample() {
                guard let n = socket.sendNow(requests[sent...]) else { break }
                if n > 0 { lastProgress = .now }
                sent += n
                Thread.sleep(forTimeInterval: 0.005)
            }
            Thread.sleep(forTimeInterval: 0.3)
            let unreadBefore = socket.unsentBytes
            let watchUntil = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < watchUntil, sample() { Thread.sleep(forTimeInterval: 0.01) }
            let unreadAfter = socket.unsentBytes
            socket.shutdown()
            return (sent, unreadBefore, unreadAfter, peak)
        }
        // Served meanwhile, on another connection.
        try await Task.sleep(for: .seconds(2))
        #expect(try await harness.http.get("/healthz").status == 200)
        let flood = try await watched
        print(
            "pipelined flood: /metrics is \(oneAnswer) bytes; sent \(flood.sent) of \(requests.count) bytes;"
                + " unread by the server: \(flood.unreadBefore) bytes, 3 s later \(flood.unreadAfter); RSS \(baseline) KiB before, peak \(flood.peakKiB) KiB")
        // The server stopped reading: what was sent stays in this socket's queue, unacknowledged.
        #expect(flood.unreadBefore > 0 && flood.unreadAfter == flood.unreadBefore, "the server went on reading")
        #expect(flood.peakKiB - baseline <= bound, "RSS grew from \(baseline) KiB to \(flood.peakKiB) KiB")
        #expect(try await harness.http.get("/readyz").status == 200)
        #expect(try harness.stop() == 0)
    }

    @Test("64 connections open: the 65th is closed as it is accepted, the 64 are still served, and the refusal is counted", .timeLimit(.minutes(2)))
    func connectionCap() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: TestCatalog().json)
        let cap = Self.defaults.maxConnections
        let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        let answered: @Sendable ([UInt8]) -> Bool = { String(decoding: $0, as: UTF8.self).hasSuffix("ok\n") }
        let (held, extraClosed, heldAfter) = try await onOwnThread("cap") { () -> ([RawSocket], Bool, String) in
            var held: [RawSocket] = []
            // Each one answered before the next opens: all of them admitted, in order.
            for i in 0..<cap {
                let socket = try RawSocket(port: harness.metricsPort)
                try socket.send(request)
                let answer = String(decoding: socket.read(timeout: .seconds(5), until: answered), as: UTF8.self)
                guard answer.hasPrefix("HTTP/1.1 200") else { throw TestFailure("connection \(i): \(answer)") }
                held.append(socket)
            }
            let extra = try RawSocket(port: harness.metricsPort)
            let extraClosed = extra.waitForClose(timeout: .seconds(3)) != nil
            // Keep-alive: the first of the 64 is still open and served.
            try held[0].send(request)
            let again = String(decoding: held[0].read(timeout: .seconds(5), until: answered), as: UTF8.self)
            return (held, extraClosed, again)
        }
        #expect(extraClosed, "connection \(cap + 1) was not closed by the server")
        #expect(heldAfter.hasPrefix("HTTP/1.1 200"), "\(heldAfter)")
        for socket in held { socket.shutdown() }
        // Once the server has seen them go, /metrics has a slot, and says one was refused.
        let metrics = try await harness.http.waitForMetrics(timeout: .seconds(10)) { $0.value("operations_http_connections_refused_total") != nil }
        #expect(metrics.value("operations_http_connections_refused_total") == 1)
        #expect(try harness.stop() == 0)
    }

    // MARK: - A server in this process, with short timeouts

    static func start(
        _ limits: OperationsServer.Limits, metrics: OperationsServer.Metrics, route: @escaping OperationsServer.Route
    ) async throws -> (OperationsServer, Int) {
        let server = try await OperationsServer.start(host: "127.0.0.1", port: 0, limits: limits, metrics: metrics, route: route)
        return (server, try #require(server.localAddress?.port))
    }

    @Test("idle timeout: a connection with no request is closed, one that keeps asking is not, and closes once it stops", .timeLimit(.minutes(1)))
    func idleTimeout() async throws {
        let metrics = OperationsServer.Metrics()
        // 1 s against a request every 150 ms: room for a loaded machine's scheduling delays.
        let limits = OperationsServer.Limits(idleTimeout: .seconds(1), requestTimeout: .seconds(5), responseTimeout: .seconds(5))
        let (server, port) = try await Self.start(limits, metrics: metrics) { _ in .text(.ok, "ok\n") }
        defer { server.close() }
        let (silentAfter, busyAnswers, busyAfter) = try await onOwnThread("idle") { () -> (Duration?, Int, Duration?) in
            let silent = try RawSocket(port: port)
            let started = ContinuousClock.now
            let silentClosed = silent.waitForClose(timeout: .seconds(5))
            let busy = try RawSocket(port: port)
            // A request every 150 ms for 1.5 s, longer than the idle timeout: each one restarts its clock.
            var answers = 0
            for _ in 0..<10 {
                try busy.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                let answer = busy.read(timeout: .seconds(2)) { String(decoding: $0, as: UTF8.self).hasSuffix("ok\n") }
                if String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200") { answers += 1 }
                Thread.sleep(forTimeInterval: 0.15)
            }
            let stopped = ContinuousClock.now
            let busyClosed = busy.waitForClose(timeout: .seconds(5))
            return (silentClosed.map { $0 - started }, answers, busyClosed.map { $0 - stopped })
        }
        let silent = try #require(silentAfter, "a silent connection was left open")
        #expect(silent >= .milliseconds(900) && silent < .seconds(4), "\(silent)")
        #expect(busyAnswers == 10)
        let busy = try #require(busyAfter, "a connection that stopped asking was left open")
        #expect(busy < .seconds(4), "\(busy)")
        #expect(metrics.timeouts(.idle) == 2)
        #expect(metrics.timeouts(.request) == 0 && metrics.timeouts(.response) == 0)
    }

    @Test("one response outstanding: 10,000 pipelined requests never read render a few answers, not 10,000, and the response timeout closes the connection", .timeLimit(.minutes(1)))
    func oneResponseOutstanding() async throws {
        let metrics = OperationsServer.Metrics()
        let limits = OperationsServer.Limits(idleTimeout: .seconds(5), requestTimeout: .seconds(5), responseTimeout: .seconds(2))
        let rendered = Atomic<Int>(0)
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 32 * 1_024)
        let (server, port) = try await Self.start(limits, metrics: metrics) { _ in
            rendered.add(1, ordering: .relaxed)
            return .init(status: .ok, contentType: "text/plain", body: body)
        }
        defer { server.close() }
        let socket = try RawSocket(port: port)
        let requests = Array(String(repeating: "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", count: 10_000).utf8)
        let sent = try await onOwnThread("pipeline") { () -> Int in
            var sent = 0
            var lastProgress = ContinuousClock.now
            while sent < requests.count, ContinuousClock.now - lastProgress < .milliseconds(500) {
                guard let n = socket.sendNow(requests[sent...]) else { break }
                if n > 0 { lastProgress = .now }
                sent += n
                Thread.sleep(forTimeInterval: 0.002)
            }
            Thread.sleep(forTimeInterval: 0.5)
            return sent
        }
        let answers = rendered.load(ordering: .relaxed)
        print("one response outstanding: sent \(sent) of \(requests.count) bytes; \(answers) answers rendered; \(socket.unsentBytes) bytes unread by the server")
        // What the two sockets' buffers hold (a few MiB of 32 KiB answers), not one per request.
        #expect(answers < 500, "\(answers) answers rendered for a client that reads none")
        // Nothing taken for the response timeout: closed (reset: requests were left unread),
        // and counted. Watched without reading, which would let the server go on.
        let hungUp = try await onOwnThread("wait") { socket.waitForHangUp(timeout: .seconds(5)) }
        #expect(hungUp, "the connection outlived the response timeout")
        #expect(metrics.timeouts(.response) == 1)
        #expect(try await Self.eventually { metrics.openConnections == 0 }, "\(metrics.openConnections) connections still open")
        #expect(metrics.timeouts(.idle) == 0 && metrics.timeouts(.request) == 0)
        // The kernel's buffers may still take an answer or two after the sample above; what must
        // not happen is rendering on towards the 10,000 asked for.
        #expect(rendered.load(ordering: .relaxed) < 500, "\(rendered.load(ordering: .relaxed)) answers rendered in all for a client that reads none")
    }

    @Test("a pipelining client that reads gets every answer, in order", .timeLimit(.minutes(1)))
    func pipeliningServedInOrder() async throws {
        let (server, port) = try await Self.start(.init(), metrics: OperationsServer.Metrics()) { path in .text(.ok, "\(path)\n") }
        defer { server.close() }
        let count = 2_000
        let answers = try await onOwnThread("reader") { () -> [String] in
            let socket = try RawSocket(port: port)
            var requests = ""
            for i in 0..<count { requests += "GET /r/\(i) HTTP/1.1\r\nHost: x\r\n\r\n" }
            try socket.send(requests)
            let text = String(decoding: socket.read(timeout: .seconds(10)) { bytes in
                bytes.count > 10 && String(decoding: bytes.suffix(12), as: UTF8.self).hasSuffix("/r/\(count - 1)\n")
            }, as: UTF8.self)
            // By scalars: "\r\n" is one Character.
            return text.unicodeScalars.split(separator: "\n").map(String.init).filter { $0.hasPrefix("/r/") }
        }
        #expect(answers.count == count && answers == (0..<count).map { "/r/\($0)" }, "\(answers.count) answers, first \(answers.prefix(3)), last \(answers.suffix(3))")
    }

    /// Whether `condition` held within `timeout` (polled).
    static func eventually(timeout: Duration = .seconds(2), _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// VmRSS of `pid`, in KiB.
    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { throw TestFailure("no VmRSS for \(pid)") }
        return kib
    }
}
