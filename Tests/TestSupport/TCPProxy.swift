import Foundation
import Synchronization

/// A loopback TCP proxy for network faults: forwards every connection to `upstreamPort`, and
/// `dropConnections()` cuts all of them at once (both directions, as a network partition or a
/// reset would), whatever the client is in the middle of. New connections keep being accepted.
///
/// `replyDelay` (settable at any time): what comes back from upstream is held that long before
/// it is passed on (added latency, not less bandwidth: each chunk waits its own delay from the
/// moment it arrived, so a stream of replies is late, not throttled).
///
/// Blocking sockets on threads of its own: two pump threads per connection, one accept thread.
public final class TCPProxy: Sendable {
    public let port: Int
    public let upstreamPort: Int
    private let delayNanoseconds = Atomic<Int64>(0)
    private let delayed = Atomic<Int>(0)

    public var replyDelay: Duration {
        get { .nanoseconds(delayNanoseconds.load(ordering: .relaxed)) }
        set {
            let (seconds, attoseconds) = newValue.components
            delayNanoseconds.store(seconds * 1_000_000_000 + attoseconds / 1_000_000_000, ordering: .relaxed)
        }
    }

    /// Chunks of replies held for `replyDelay` so far.
    public var delayedReplies: Int { delayed.load(ordering: .relaxed) }
    private let listener: Int32
    private let open = Mutex<Set<Int32>>([])
    private let closed = Atomic<Bool>(false)

    public init(upstreamPort: Int, replyDelay: Duration = .zero) throws {
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            Glibc.close(fd)
            throw TestFailure("bind/listen: \(errno)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: actual.sin_port))
        self.replyDelay = replyDelay
        let thread = Thread { [self] in self.acceptLoop() }
        thread.name = "tcp-proxy-accept"
        thread.start()
    }

    /// Cuts every open connection (new ones are still accepted). Returns how many were cut.
    @discardableResult
    public func dropConnections() -> Int {
        let fds = open.withLock { fds in
            defer { fds.removeAll() }
            return fds
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        return fds.count / 2
    }

    /// Stops accepting and cuts everything.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        dropConnections()
    }

    deinit { close() }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while !closed.load(ordering: .acquiring) {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: UInt16(upstreamPort))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(client)
                Glibc.close(upstream)
                continue
            }
            open.withLock { $0.formUnion([client, upstream]) }
            let pumps = PumpCount()
            for (from, to) in [(client, upstream), (upstream, client)] {
                let thread = Thread { [self] in
                    if from == upstream {
                        self.delayingPump(from: from, to: to)
                    } else {
                        Self.pump(from: from, to: to)
                    }
                    shutdown(from, Int32(SHUT_RDWR))
                    shutdown(to, Int32(SHUT_RDWR))
                    // The second pump to finish closes both sockets.
                    if pumps.left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                        self.open.withLock { $0.subtract([from, to]) }
                        Glibc.close(from)
                        Glibc.close(to)
                    }
                }
                thread.name = "tcp-proxy-pump"
                thread.start()
            }
        }
    }

    /// `pump` with each chunk held for `replyDelay` after it arrived: a reader queues what it
    /// reads with its due time, this thread sends each chunk when it is due.
    private func delayingPump(from: Int32, to: Int32) {
        let queue = DelayQueue()
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                queue.push(Array(buffer[0..<n]), due: ContinuousClock.now + self.replyDelay)
            }
            queue.finish()
        }
        reader.name = "tcp-proxy-delay-read"
        reader.start()
        while let (chunk, due) = queue.pop() {
            let wait = due - ContinuousClock.now
            if wait > .zero {
                Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18)
                delayed.add(1, ordering: .relaxed)
            }
            var sent = 0
            while sent < chunk.count {
                let m = chunk.withUnsafeBytes { send(to, $0.baseAddress! + sent, chunk.count - sent, Int32(MSG_NOSIGNAL)) }
                if m < 0 && errno == EINTR { continue }
                guard m > 0 else { return }
                sent += m
            }
        }
    }

    private static func pump(from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            var sent = 0
            while sent < n {
                // send, not write: a peer gone must be an error here, not a SIGPIPE for the test process.
                let m = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m < 0 && errno == EINTR { continue }
                guard m > 0 else { return }
                sent += m
            }
        }
    }
}

/// The pumps of one connection still running: the last one closes its sockets.
private final class PumpCount: Sendable {
    let left = Atomic<Int>(2)
}

/// Chunks waiting for their due time, in arrival order (so in due order: one delay for all).
private final class DelayQueue: Sendable {
    private let state = Mutex<(chunks: [(bytes: [UInt8], due: ContinuousClock.Instant)], finished: Bool)>(([], false))
    private let ready = DispatchSemaphore(value: 0)

    func push(_ bytes: [UInt8], due: ContinuousClock.Instant) {
        state.withLock { $0.chunks.append((bytes, due)) }
        ready.signal()
    }

    func finish() {
        state.withLock { $0.finished = true }
        ready.signal()
    }

    /// The next chunk, waiting for one; nil once the reader has finished and all were taken.
    func pop() -> ([UInt8], ContinuousClock.Instant)? {
        while true {
            ready.wait()
            let next = state.withLock { state -> (chunk: ([UInt8], ContinuousClock.Instant)?, done: Bool) in
                if !state.chunks.isEmpty {
                    let first = state.chunks.removeFirst()
                    return ((first.bytes, first.due), false)
                }
                return (nil, state.finished)
            }
            if let chunk = next.chunk { return chunk }
            if next.done { return nil }
        }
    }
}
