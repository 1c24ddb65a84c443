import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A client socket on loopback with nothing between the test and the kernel, for clients no
/// HTTP library would be: one that stalls half-way through a request, one that pipelines without
/// reading. Blocking calls: run them on a thread of their own (`onOwnThread`), not on the
/// cooperative pool. Sends never raise SIGPIPE.
final class RawSocket: Sendable {
    let fd: Int32

    init(port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            Glibc.close(fd)
            throw TestFailure("connect to 127.0.0.1:\(port): errno \(error)")
        }
        self.fd = fd
    }

    deinit {
        Glibc.close(fd)
    }

    /// Sends all of `text`, blocking; throws when the connection is gone.
    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: errno \(errno)") }
            sent += n
        }
    }

    /// Sends what the kernel takes now: the bytes sent (0 when its buffer is full), nil when
    /// the connection is gone.
    func sendNow(_ bytes: ArraySlice<UInt8>) -> Int? {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        if n >= 0 { return n }
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : nil
    }

    /// Bytes written and not yet acknowledged by the peer (SIOCOUTQ): bytes that stay here
    /// mean the peer's receive window is shut, that is, the server is not reading.
    var unsentBytes: Int {
        var count: Int32 = 0
        _ = ioctl(fd, 0x5411 /* SIOCOUTQ */, &count)
        return Int(count)
    }

    /// What arrives within `timeout` (until the peer closes, or `until` holds for it).
    func read(timeout: Duration, until done: ([UInt8]) -> Bool = { _ in false }) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !done(received), let left = Self.milliseconds(until: deadline), wait(milliseconds: left) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += chunk[..<n]
        }
        return received
    }

    /// Waits (reading and dropping whatever arrives) until the peer closes the connection;
    /// returns when that was seen, or nil if it was still open after `timeout`.
    func waitForClose(timeout: Duration) -> ContinuousClock.Instant? {
        let deadline = ContinuousClock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while let left = Self.milliseconds(until: deadline) {
            guard wait(milliseconds: left) else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return .now }
        }
        return nil
    }

    /// Waits, without reading, until the peer resets or shuts the connection (with data still
    /// unread here); false if it had not after `timeout`.
    func waitForHangUp(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while let left = Self.milliseconds(until: deadline) {
            let peerShut: Int16 = 0x2000  // POLLRDHUP (Linux; not imported without _GNU_SOURCE)
            var descriptor = pollfd(fd: fd, events: peerShut, revents: 0)
            if poll(&descriptor, 1, left) > 0 && descriptor.revents & (peerShut | Int16(POLLHUP | POLLERR)) != 0 { return true }
        }
        return false
    }

    /// Shuts the connection (the descriptor itself goes with the object).
    func shutdown() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Whether the socket became readable (data, end of stream or error) within `milliseconds`.
    private func wait(milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    private static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32? {
        let left = deadline - .now
        guard left > .zero else { return nil }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: max(1, seconds * 1_000 + attoseconds / 1_000_000_000_000_000))
    }
}
