import Foundation
@testable import Lifecycle
import Testing

/// Real signals, sent to this process (kill, not raise: libdispatch reads a signal sent to the
/// process, not one directed at a thread of its pool): each test uses a signal of its own (a watcher keeps the
/// first it receives for good). A wait that is not woken hangs until the time limit: the tests
/// fail rather than pass slowly.
@Suite("Signal watcher: a signal wakes every waiter, nothing polls", .serialized)
struct SignalWatcherTests {
    @Test("a wait times out without a signal; a signal wakes a wait in progress and every later one at once", .timeLimit(.minutes(1)))
    func wakes() async throws {
        let watcher = SignalWatcher(SIGUSR1)
        #expect(await watcher.wait(for: .milliseconds(20)) == false)
        #expect(!watcher.hasFired)
        let waiting = Task { await watcher.wait(for: .seconds(3_600)) }
        let next = Task { await watcher.next() }
        // Both registered: the signal then reaches waits in progress.
        while watcher.waiterCount < 2 { try await Task.sleep(for: .milliseconds(1)) }
        kill(getpid(), SIGUSR1)
        #expect(await waiting.value)
        #expect(await next.value == SIGUSR1)
        #expect(watcher.hasFired)
        #expect(await watcher.wait(for: .seconds(3_600)))
        #expect(await watcher.next() == SIGUSR1)
    }

    @Test("a cancelled wait ends at once, answering false; the watcher still hears the next signal", .timeLimit(.minutes(1)))
    func cancelled() async throws {
        let watcher = SignalWatcher(SIGUSR2)
        let waiting = Task { await watcher.wait(for: .seconds(3_600)) }
        try await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        #expect(await waiting.value == false)
        // Cancelled before it starts: no continuation is left behind.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await watcher.wait(for: .seconds(3_600))
        }
        #expect(await early.value == false)
        kill(getpid(), SIGUSR2)
        #expect(await watcher.next() == SIGUSR2)
    }
}
