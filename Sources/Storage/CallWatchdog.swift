import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The client-side bound on a libpq call (`ConnectionSettings.callTimeout`): a call still
/// blocked at its deadline has its socket shut down from this watchdog's thread, so libpq's
/// read returns at once and the call fails, and its statement is cancelled on the server
/// (`StatementCanceller`), which would otherwise run on with its locks. Nothing else ends a call on a black-holed path (no
/// reset, no answer): `statement_timeout` acts only on a server that is reached, and the kernel
/// gives up on an unanswered connection after about 15 minutes.
///
/// One thread for the process, asleep until the earliest deadline; a call costs one lock to
/// begin and one to end, and wakes the thread only when its deadline is the new earliest.
final class CallWatchdog: @unchecked Sendable {
    // @unchecked: every field below is read and written under `condition`'s lock.
    static let shared = CallWatchdog()

    private struct Watch {
        let deadline: ContinuousClock.Instant
        let socket: Int32
        let cancelKey: CancelKey?
    }

    private let condition = NSCondition()
    private var watches: [Int: Watch] = [:]
    /// Watches whose deadline passed (their socket shut down), until their call ends.
    private var expired: Set<Int> = []
    private var nextID = 0
    /// The deadline the thread sleeps until; nil when it sleeps with nothing to watch.
    private var sleepingUntil: ContinuousClock.Instant?
    private var thread: Thread?

    /// Starts watching a call on `socket`, due by `timeout` from now; returns its ticket. Past
    /// the deadline, `cancelKey` (the connection's) cancels what its backend runs.
    func begin(socket: Int32, cancelKey: CancelKey?, timeout: Duration) -> Int {
        let deadline = ContinuousClock.now + timeout
        condition.lock()
        defer { condition.unlock() }
        if thread == nil {
            let thread = Thread { [self] in run() }
            thread.name = "postgres-call-watchdog"
            thread.start()
            self.thread = thread
        }
        nextID += 1
        watches[nextID] = Watch(deadline: deadline, socket: socket, cancelKey: cancelKey)
        if sleepingUntil.map({ deadline < $0 }) ?? true { condition.signal() }
        return nextID
    }

    /// Stops watching `ticket`; true if its deadline passed first (its socket was shut down).
    func end(_ ticket: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        watches[ticket] = nil
        return expired.remove(ticket) != nil
    }

    private func run() {
        condition.lock()
        while true {
            let now = ContinuousClock.now
            for (ticket, watch) in watches where watch.deadline <= now {
                // The call still holds its connection, so the descriptor is still its socket.
                shutdown(watch.socket, Int32(SHUT_RDWR))
                if let key = watch.cancelKey { StatementCanceller.shared.cancel(key) }
                watches[ticket] = nil
                expired.insert(ticket)
            }
            sleepingUntil = watches.values.lazy.map(\.deadline).min()
            if let until = sleepingUntil {
                let (seconds, attoseconds) = now.duration(to: until).components
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18))
            } else {
                condition.wait()
            }
        }
    }
}
