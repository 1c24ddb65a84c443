import Buffer
import Dispatch
import Foundation
import Logging
import Storage
import Synchronization

/// The peer's database side: N threads, each owning one libpq connection for its whole life,
/// taking events from one shared queue and writing them with `SingleRowWriter`. A gRPC handler
/// enqueues its event and suspends on a continuation the thread resumes once every row is
/// written, so the cooperative pool never blocks on libpq and at most N events are being
/// written at a time (the rest wait in the queue, as they waited for a pooled connection in the
/// incumbent).
///
/// A thread whose connection breaks fails the event it was writing (UNAVAILABLE: the caller
/// retries), closes the connection and opens a new one; if that fails too it tries again before
/// its next event, and fails that event if the database is still unreachable.
final class WriterPool: Sendable {
    /// One event to write, and who waits for it.
    private struct Job: Sendable {
        let userID: String
        let changes: [GoalUpdate]
        let done: @Sendable ((any Error)?) -> Void
    }

    private struct Queue {
        /// Waiting jobs from `head` on; the consumed prefix is dropped once it is half the array.
        var jobs: [Job] = []
        var head = 0
        var stopping = false
        /// Start-up: connections still to open, and who waits for them (see `start`).
        var opening = 0
        var started: CheckedContinuation<Void, any Error>?
    }

    let size: Int
    private let settings: ConnectionSettings
    private let writer: SingleRowWriter
    private let logger: Logger
    private let queue = Mutex(Queue())
    /// One signal per enqueued job, plus one per thread at `stop`: a thread waits on it, then
    /// takes a job, or finds none and the pool stopping, and ends.
    private let ready = DispatchSemaphore(value: 0)
    /// Signalled by each thread as it ends, so `stop` can wait for them all.
    private let ended = DispatchSemaphore(value: 0)

    init(size: Int, settings: ConnectionSettings, writer: SingleRowWriter, logger: Logger) {
        self.size = size
        self.settings = settings
        self.writer = writer
        self.logger = logger
    }

    /// Starts the threads; returns once each has opened its connection and prepared its
    /// statements, or throws the first failure (the threads that did connect keep running until
    /// `stop`).
    func start() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.withLock {
                $0.opening = size
                $0.started = continuation
            }
            for index in 0..<size {
                let thread = Thread { [self] in runWorker() }
                thread.name = "naive-writer-\(index)"
                thread.start()
            }
        }
    }

    /// Queues one event's rows; `done` runs on a writer thread once all are written, with nil,
    /// the `PostgresError` that stopped it, or `PoolStopped` after `stop`.
    func write(userID: String, changes: [GoalUpdate], done: @escaping @Sendable ((any Error)?) -> Void) {
        let accepted = queue.withLock { queue -> Bool in
            if queue.stopping { return false }
            queue.jobs.append(Job(userID: userID, changes: changes, done: done))
            return true
        }
        if accepted {
            ready.signal()
        } else {
            done(PoolStopped())
        }
    }

    /// Lets the threads finish the queued jobs, then ends them and closes their connections.
    /// Blocking: call it from a thread of your own, after the server stopped sending work.
    func stop() {
        queue.withLock { $0.stopping = true }
        for _ in 0..<size { ready.signal() }
        for _ in 0..<size { ended.wait() }
    }

    // MARK: - Worker threads

    private func runWorker() {
        defer { ended.signal() }
        var connection: PostgresConnection?
        do {
            connection = try openConnection()
            reportStarted(nil)
        } catch {
            reportStarted(error)
        }
        while true {
            ready.wait()
            guard let job = takeJob() else { break }
            do {
                let open = try connection ?? openConnection()
                connection = open
                try writer.write(userID: job.userID, changes: job.changes, on: open)
                job.done(nil)
            } catch {
                job.done(error)
                // A broken connection is replaced at once; a refused statement leaves it usable.
                if let broken = connection, !broken.isHealthy || (error as? PostgresError)?.isConnectionFailure == true {
                    broken.close()
                    connection = try? openConnection()
                    logger.warning(
                        "connection lost; \(connection == nil ? "could not reconnect yet, will retry before the next event" : "reconnected")",
                        metadata: ["error": "\(error)"])
                }
            }
        }
        connection?.close()
    }

    private func openConnection() throws -> PostgresConnection {
        let connection = try PostgresConnection(settings: settings)
        do {
            try SingleRowWriter.prepare(on: connection)
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private func takeJob() -> Job? {
        queue.withLock { queue -> Job? in
            guard queue.head < queue.jobs.count else { return nil }
            let job = queue.jobs[queue.head]
            queue.head += 1
            if queue.head == queue.jobs.count {
                queue.jobs.removeAll(keepingCapacity: true)
                queue.head = 0
            } else if queue.head >= 1_024 && queue.head * 2 >= queue.jobs.count {
                queue.jobs.removeFirst(queue.head)
                queue.head = 0
            }
            return job
        }
    }

    /// Counts one opened (or failed) connection; resumes `start` on the last one or the first failure.
    private func reportStarted(_ failure: (any Error)?) {
        let waiter = queue.withLock { queue -> CheckedContinuation<Void, any Error>? in
            queue.opening -= 1
            guard failure != nil || queue.opening == 0 else { return nil }
            defer { queue.started = nil }
            return queue.started
        }
        if let failure {
            waiter?.resume(throwing: failure)
        } else {
            waiter?.resume()
        }
    }
}

/// The pool was stopped: the event was not written.
struct PoolStopped: Error, CustomStringConvertible {
    var description: String { "the naive peer is shutting down" }
}
