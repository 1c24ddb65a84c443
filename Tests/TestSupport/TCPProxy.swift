import Foundation
import Synchronization

/// A loopback TCP proxy for network faults: forwards every connection to `upstreamPort`, and
/// `dropConnections()` cuts all of them at once (both directions, as a network partition or a
/// reset would), whatever the client is in the middle of. New connections keep being accepted.
///
/// Blocking sockets on threads of its own: two pump threads per connection, one accept thread.
public final class TCPProxy: Sendable {
    public let port: Int
    public let upstreamPort: Int
    private let listener: Int32
    private let open = Mutex<Set<Int32>>([])
    private let closed = Atomic<Bool>(false)

    public init(upstreamPort: Int) throws {
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
                    Self.pump(from: from, to: to)
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
