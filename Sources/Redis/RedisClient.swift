import Dispatch
import Foundation
import Synchronization

/// Pipelined Redis for many callers: a few connections, each on a thread of its own (hiredis
/// blocks), sharing one queue. A thread takes everything queued (up to `maxPipeline` commands)
/// and sends it as one pipeline, so concurrent callers share round trips: the more callers, the
/// bigger the pipelines, the fewer round trips per command.
///
/// Failure: a connection that breaks fails the commands it carried (their completion gets nil),
/// and its thread reconnects with capped exponential backoff. While no connection is up,
/// `submit` fails at once instead of queueing, so callers never wait on a dead server longer
/// than one command timeout. `onStateChange` hears each transition (up, or down with why).
public final class RedisClient: Sendable {
    public struct Configuration: Sendable {
        public var url: RedisURL
        public var connections: Int
        public var connectTimeout: Duration
        public var commandTimeout: Duration
        public var maxPipeline: Int
        public var maxBackoff: Duration

        public init(
            url: RedisURL, connections: Int = 2, connectTimeout: Duration = .seconds(1),
            commandTimeout: Duration = .seconds(1), maxPipeline: Int = 1_000, maxBackoff: Duration = .seconds(2)
        ) {
            self.url = url
            self.connections = connections
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.maxPipeline = maxPipeline
            self.maxBackoff = maxBackoff
        }
    }

    /// A batch of commands and what to do with their replies (nil: not sent, or the link broke).
    private struct Job: Sendable {
        let commands: [RedisCommand]
        let completion: @Sendable ([RedisReply]?) -> Void
    }

    public let configuration: Configuration
    private let queue = Mutex<[Job]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let closed = Atomic<Bool>(false)
    private let connectedThreads = Atomic<Int>(0)
    /// Set once the first connection attempt of every thread has finished (up or not).
    private let settled = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let onStateChange: @Sendable (_ up: Bool, _ reason: String?) -> Void
    private let stateLock = Mutex<Bool?>(nil)  // the last state announced
    private let finished = DispatchSemaphore(value: 0)

    public init(_ configuration: Configuration, onStateChange: @escaping @Sendable (_ up: Bool, _ reason: String?) -> Void = { _, _ in }) {
        precondition(configuration.connections > 0)
        self.configuration = configuration
        self.onStateChange = onStateChange
        for index in 0..<configuration.connections {
            let thread = Thread { [self] in
                self.run()
                self.finished.signal()
            }
            thread.name = "redis-\(index)"
            thread.start()
        }
    }

    /// True while at least one connection is up.
    public var isUp: Bool { connectedThreads.load(ordering: .acquiring) > 0 }

    /// Commands that failed because the link was down or broke.
    public var failedCommands: Int { failures.load(ordering: .relaxed) }

    /// Blocks until every connection thread has made its first attempt, or `timeout` passes.
    public func waitUntilSettled(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while settled.load(ordering: .acquiring) < configuration.connections {
            if ContinuousClock.now >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return true
    }

    /// Queues `commands` to go out in one pipeline; `completion` gets their replies in order, or
    /// nil when they could not be sent or answered. It runs on a Redis thread: keep it short.
    public func submit(_ commands: [RedisCommand], completion: @escaping @Sendable ([RedisReply]?) -> Void) {
        guard !commands.isEmpty else {
            completion([])
            return
        }
        // Checked under the queue lock, as `close` sets it: a job is either queued before the
        // close fails everything queued, or refused here.
        let queued = isUp && queue.withLock { queue -> Bool in
            if closed.load(ordering: .acquiring) { return false }
            queue.append(Job(commands: commands, completion: completion))
            return true
        }
        guard queued else {
            failures.add(commands.count, ordering: .relaxed)
            completion(nil)
            return
        }
        wake.signal()
    }

    /// Sends `commands` and waits for their replies (nil on failure). Blocking: for threads the
    /// caller owns.
    public func execute(_ commands: [RedisCommand]) -> [RedisReply]? {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<[RedisReply]?>(nil)
        submit(commands) { replies in
            result.withLock { $0 = replies }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 }
    }

    /// Fails what is queued, closes the connections and waits (bounded) for the threads.
    public func close() {
        guard !queue.withLock({ _ in closed.exchange(true, ordering: .acquiringAndReleasing) }) else { return }
        for _ in 0..<configuration.connections { wake.signal() }
        for _ in 0..<configuration.connections {
            _ = finished.wait(timeout: .now() + Self.seconds(configuration.commandTimeout) + 1)
        }
        failQueued()
    }

    // MARK: - Connection threads

    private func run() {
        var connection: RedisConnection?
        var backoff = Duration.milliseconds(50)
        var firstAttempt = true
        while !closed.load(ordering: .acquiring) {
            if connection == nil {
                do {
                    connection = try RedisConnection(
                        url: configuration.url, connectTimeout: configuration.connectTimeout,
                        commandTimeout: configuration.commandTimeout)
                    connectedThreads.add(1, ordering: .acquiringAndReleasing)
                    backoff = .milliseconds(50)
                    announce(up: true, reason: nil)
                } catch {
                    if !isUp { announce(up: false, reason: "\(error)") }
                }
                if firstAttempt {
                    firstAttempt = false
                    settled.add(1, ordering: .releasing)
                }
                if connection == nil {
                    failQueuedIfAllDown()
                    // Not on `wake`: its signals belong to the threads that can send.
                    sleepUnlessClosed(backoff)
                    backoff = min(backoff * 2, configuration.maxBackoff)
                    continue
                }
            }
            // Woken or not, take what is queued: a wake-up may have gone to a thread that could
            // not send.
            let woken = wake.wait(timeout: .now() + 1) == .success
            let jobs = takeJobs()
            if woken && jobs.isEmpty { continue }
            do {
                // Idle for a second: a PING finds out whether the server is still there, so
                // `isUp` is true to the second even without traffic.
                if jobs.isEmpty {
                    _ = try connection!.command(RedisCommand("PING"))
                    continue
                }
                let replies = try connection!.pipeline(jobs.flatMap(\.commands))
                var start = 0
                for job in jobs {
                    job.completion(Array(replies[start..<(start + job.commands.count)]))
                    start += job.commands.count
                }
            } catch {
                connection = nil
                connectedThreads.subtract(1, ordering: .acquiringAndReleasing)
                for job in jobs {
                    failures.add(job.commands.count, ordering: .relaxed)
                    job.completion(nil)
                }
                if !isUp { announce(up: false, reason: "\(error)") }
            }
        }
        if connection != nil { connectedThreads.subtract(1, ordering: .acquiringAndReleasing) }
    }

    /// Everything queued, up to `maxPipeline` commands (at least one job). Leaves a wake-up for
    /// another thread when jobs remain.
    private func takeJobs() -> [Job] {
        let (jobs, more) = queue.withLock { queue -> ([Job], Bool) in
            if queue.isEmpty { return ([], false) }
            var count = 0
            var taken = 0
            while taken < queue.count && (taken == 0 || count + queue[taken].commands.count <= configuration.maxPipeline) {
                count += queue[taken].commands.count
                taken += 1
            }
            let jobs = Array(queue.prefix(taken))
            queue.removeFirst(taken)
            return (jobs, !queue.isEmpty)
        }
        if more { wake.signal() }
        return jobs
    }

    private func sleepUnlessClosed(_ duration: Duration) {
        let until = ContinuousClock.now + duration
        while !closed.load(ordering: .acquiring) && ContinuousClock.now < until {
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    private func failQueuedIfAllDown() {
        if !isUp { failQueued() }
    }

    private func failQueued() {
        let jobs = queue.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
        for job in jobs {
            failures.add(job.commands.count, ordering: .relaxed)
            job.completion(nil)
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func announce(up: Bool, reason: String?) {
        let changed = stateLock.withLock { last -> Bool in
            if last == up { return false }
            last = up
            return true
        }
        if changed { onStateChange(up, reason) }
    }
}
