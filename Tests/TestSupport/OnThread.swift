import Foundation
import Synchronization

/// Runs blocking work (libpq, the pool, a server script, a child process) on a thread of its
/// own, never on the Swift cooperative pool. The test's task runs there (a task executor
/// preference), so its task-locals come along and `#expect` inside `body` is attributed to the
/// right test.
public func onThread<T: Sendable>(_ name: String = "test-thread", _ body: () throws -> T) async throws -> T {
    let executor = ThreadExecutor(name: name)
    defer { executor.shutdown() }
    return try await withTaskExecutorPreference(executor) { try body() }
}

/// A task executor with one dedicated thread, which runs the jobs enqueued on it in order.
public final class ThreadExecutor: TaskExecutor, Sendable {
    private let jobs = Mutex<(queue: [UnownedJob], stopped: Bool)>(([], false))
    private let wakeUp = DispatchSemaphore(value: 0)

    public init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.queue.append(job) }
        wakeUp.signal()
    }

    public func shutdown() {
        jobs.withLock { $0.stopped = true }
        wakeUp.signal()
    }

    private func run() {
        while true {
            wakeUp.wait()
            let next: UnownedJob?? = jobs.withLock { state in
                if !state.queue.isEmpty { return state.queue.removeFirst() }
                return state.stopped ? .some(nil) : nil
            }
            switch next {
            case .some(.some(let job)): job.runSynchronously(on: asUnownedTaskExecutor())
            case .some(.none): return
            case .none: continue
            }
        }
    }
}
