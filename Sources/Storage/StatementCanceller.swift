import CLibPQ
import Foundation
import Synchronization

/// libpq's cancel request for one connection's backend (`PQgetCancel`: its PID and secret key),
/// freed when the last holder lets go: the connection, or the canceller still sending it after
/// the connection closed.
final class CancelKey: @unchecked Sendable {
    // @unchecked: libpq documents PQcancel as safe to call from any thread on a PGcancel that is
    // not freed meanwhile, and the object is freed only in deinit.
    fileprivate let pointer: OpaquePointer

    init?(_ connection: OpaquePointer) {
        guard let pointer = PQgetCancel(connection) else { return nil }
        self.pointer = pointer
    }

    deinit { PQfreeCancel(pointer) }
}

/// Sends cancel requests for statements that outlived `DB_CALL_TIMEOUT`. The watchdog shuts the
/// caller's socket down at the deadline, which frees the caller, but the backend does not see a
/// closed socket while it executes: it would run on, holding its row locks against the flush's
/// retry, until it finishes or `statement_timeout` ends it. A cancel request (a new connection
/// carrying the backend's key) ends it at once.
///
/// On a thread of its own, one request at a time: PostgreSQL 15's `PQcancel` has no timeout, and
/// on a black-holed path its connect waits for the kernel (about two minutes), so it must never
/// hold the watchdog. At most `limit` wait their turn; beyond that a request is dropped (counted):
/// its statement still ends by `statement_timeout`.
public final class StatementCanceller: Sendable {
    /// The process's (`db_statement_cancels_total`).
    public static let shared = StatementCanceller()

    static let limit = 64

    private struct Queue {
        var keys: [CancelKey] = []
        var started = false
    }

    private let queue = Mutex(Queue())
    private let ready = DispatchSemaphore(value: 0)
    private let sentCount = Atomic<Int>(0)
    private let failedCount = Atomic<Int>(0)
    private let droppedCount = Atomic<Int>(0)

    /// Requests sent (the server may still find nothing running to cancel), failed to send, and
    /// dropped with the queue full.
    public var counts: (sent: Int, failed: Int, dropped: Int) {
        (sentCount.load(ordering: .relaxed), failedCount.load(ordering: .relaxed), droppedCount.load(ordering: .relaxed))
    }

    /// Queues a cancel request for the backend of `key`; never blocks.
    func cancel(_ key: CancelKey) {
        let (queued, start) = queue.withLock { queue -> (Bool, Bool) in
            guard queue.keys.count < Self.limit else { return (false, false) }
            queue.keys.append(key)
            defer { queue.started = true }
            return (true, !queue.started)
        }
        guard queued else {
            droppedCount.add(1, ordering: .relaxed)
            return
        }
        if start {
            let thread = Thread { [self] in run() }
            thread.name = "postgres-cancel"
            thread.start()
        }
        ready.signal()
    }

    private func run() {
        var errors = [CChar](repeating: 0, count: 256)
        while true {
            ready.wait()
            guard let key = queue.withLock({ $0.keys.isEmpty ? nil : $0.keys.removeFirst() }) else { continue }
            if PQcancel(key.pointer, &errors, Int32(errors.count)) == 1 {
                sentCount.add(1, ordering: .relaxed)
            } else {
                failedCount.add(1, ordering: .relaxed)
            }
        }
    }
}
