import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceTestSupport
import Synchronization
import TestSupport

/// gRPC load shaped like the platform's event bridge, for fault scenarios: `lanes` senders on
/// one HTTP/2 connection, each owning the events of a fixed set of users (so each user's events
/// keep their order), together keeping a fixed arrival rate. A call that is not answered OK
/// (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, the connection refused while the service
/// restarts) is sent again, same event, until it is, as the bridge does; the lane waits
/// meanwhile, then catches up with its schedule.
struct BridgeLoad: Sendable {
    let events: [TestEvent]
    let port: Int
    var lanes = 8
    var eventsPerSecond = 200.0
    /// Deadline of one attempt.
    var attemptTimeout: Duration = .seconds(2)
    /// Each event is delivered this many times (the copies race each other, each retried).
    var copies = 1

    struct Result: Sendable {
        /// Calls made, first tries and retries.
        var attempts = 0
        /// Calls answered OK (`events.count × copies` when the run completes).
        var acknowledged = 0
        /// Calls answered otherwise (each retried).
        var refused = 0
        /// When each OK came, since the run began.
        var acknowledgedAt: [Duration] = []

        /// The first OK at or after `instant` (since the run began), and how long after it.
        func firstAcknowledgement(after instant: Duration) -> Duration? {
            acknowledgedAt.filter { $0 >= instant }.min().map { $0 - instant }
        }
    }

    /// The lane of a user: stable across runs and processes.
    static func lane(of user: String, lanes: Int) -> Int {
        Int(user.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 } % UInt32(lanes))
    }

    /// Sends everything; returns when every copy of every event was answered OK (or throws
    /// after `giveUp`). `started` is the run's zero.
    func run(started: ContinuousClock.Instant, giveUp: Duration = .seconds(300)) async throws -> Result {
        let result = Tally()
        let deadline = started + giveUp
        let perLane = eventsPerSecond / Double(lanes)
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            let login = LoginClient(wrapping: client)
            let stat = StatClient(wrapping: client)
            var options = CallOptions.defaults
            options.timeout = attemptTimeout
            let callOptions = options
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<lanes {
                    let mine = events.filter { Self.lane(of: $0.user, lanes: lanes) == lane }
                    for _ in 0..<copies {
                        group.addTask {
                            for (n, event) in mine.enumerated() {
                                // Keep the schedule: event n of this lane is due at n / rate.
                                let due = started + .seconds(Double(n) / perLane)
                                if due > ContinuousClock.now { try await Task.sleep(until: due) }
                                while true {
                                    guard ContinuousClock.now < deadline else {
                                        throw TestFailure("event \(event) still not acknowledged after \(giveUp)")
                                    }
                                    do {
                                        if let message = event.loginMessage {
                                            _ = try await login.onMessage(message, options: callOptions)
                                        } else {
                                            _ = try await stat.onMessage(event.statMessage!, options: callOptions)
                                        }
                                        let at = ContinuousClock.now - started
                                        result.state.withLock {
                                            $0.attempts += 1
                                            $0.acknowledged += 1
                                            $0.acknowledgedAt.append(at)
                                        }
                                        break
                                    } catch let error as RPCError where error.code != .invalidArgument {
                                        result.state.withLock {
                                            $0.attempts += 1
                                            $0.refused += 1
                                        }
                                        try await Task.sleep(for: .milliseconds(50))
                                    }
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        return result.state.withLock { $0 }
    }
}

private final class Tally: Sendable {
    let state = Mutex(BridgeLoad.Result())
}
