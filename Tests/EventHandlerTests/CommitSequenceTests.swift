import Foundation
import Synchronization
import Testing

@testable import EventHandler

/// The flush workers' commit sequence, in process: what `ACK_MODE=durable` and the final flush
/// wait on. No database: drains are started and committed by hand, as a worker would.
@Suite("Commit sequence: waiting for a drain that started after now")
struct CommitSequenceTests {
    final class Answers: Sendable {
        let values = Mutex<[Bool]>([])
        func record(_ value: Bool) { values.withLock { $0.append(value) } }
        var all: [Bool] { values.withLock { $0 } }
    }

    @Test("a ticket is answered by the first drain started after it, or any later one; a drain already running does not answer it")
    func ticketsAndDrains() {
        let commits = CommitSequence()
        let running = commits.startDrain()  // drain 1 took its entries before the event arrived
        let ticket = commits.ticket()
        #expect(ticket == running + 1)
        let answers = Answers()
        #expect(commits.whenCommitted(ticket) { answers.record($0) } != nil)
        commits.committed(drain: running)
        #expect(answers.all.isEmpty, "drain 1 may have missed the event")
        #expect(commits.waiterCount == 1)
        // Drain 2 fails (its entries go back to the buffer); drain 3 takes them and commits.
        _ = commits.startDrain()
        let retry = commits.startDrain()
        commits.committed(drain: retry)
        #expect(answers.all == [true])
        #expect(commits.waiterCount == 0)
        // Already committed: answered at once, nothing registered.
        let late = Answers()
        #expect(commits.whenCommitted(ticket) { late.record($0) } == nil)
        #expect(late.all == [true])
    }

    @Test("a cancelled wait is never answered; stopping answers every waiter left, and every later one, false")
    func cancelAndStop() {
        let commits = CommitSequence()
        let cancelled = Answers(), stopped = Answers()
        let number = commits.whenCommitted(commits.ticket()) { cancelled.record($0) }
        commits.whenCommitted(commits.ticket()) { stopped.record($0) }
        #expect(commits.waiterCount == 2)
        if let number { commits.cancel(number) }
        #expect(commits.waiterCount == 1)
        commits.stop()
        #expect(cancelled.all.isEmpty)
        #expect(stopped.all == [false])
        let after = Answers()
        #expect(commits.whenCommitted(commits.ticket()) { after.record($0) } == nil)
        #expect(after.all == [false], "the worker is gone: nothing will commit")
        commits.committed(drain: commits.startDrain())
        #expect(cancelled.all.isEmpty && stopped.all == [false])
    }

    @Test(
        "a blocking wait: true when the drain commits on another thread; false at its deadline, and then forgotten; false when the worker stops",
        .timeLimit(.minutes(1))
    )
    func blockingWait() async {
        let commits = CommitSequence()
        #expect(!commits.waitUntilCommitted(commits.ticket(), deadline: .now + .milliseconds(20)))
        #expect(commits.waiterCount == 0, "a wait that timed out leaves nothing registered")

        let ticket = commits.ticket()
        let worker = Thread {
            while commits.waiterCount == 0 { Thread.sleep(forTimeInterval: 0.001) }
            commits.committed(drain: commits.startDrain())
        }
        worker.start()
        #expect(commits.waitUntilCommitted(ticket, deadline: .now + .seconds(60)))

        let stopping = Thread {
            while commits.waiterCount == 0 { Thread.sleep(forTimeInterval: 0.001) }
            commits.stop()
        }
        stopping.start()
        // The deadline is past the test's time limit: only the stop can answer in time.
        #expect(!commits.waitUntilCommitted(commits.ticket(), deadline: .now + .seconds(600)))
    }

    @Test("ACK_WAITING_LIMIT: a waiting call's place is given back once, whether it is answered, cancelled or stopped")
    func waitingPlaces() {
        let commits = CommitSequence()
        let limit = CommitWaitLimit(limit: 2)
        let answers = Answers()
        #expect(limit.take() && limit.take())
        #expect(!limit.take(), "at the limit")
        let first = CommitReceipt(commits: commits, ticket: commits.ticket()).holding(limit)
        let second = CommitReceipt(commits: commits, ticket: commits.ticket()).holding(limit)
        let answered = first.whenCommitted { answers.record($0) }
        let cancelled = second.whenCommitted { answers.record($0) }
        cancelled.cancel()
        cancelled.cancel()
        #expect(limit.count == 1, "the cancelled call gave its place back, once")
        commits.committed(drain: commits.startDrain())
        #expect(answers.all == [true])
        #expect(limit.count == 0)
        answered.cancel()
        #expect(limit.count == 0, "a cancel after the answer gives nothing back twice")
        // Already committed: answered at once, the place back at once.
        #expect(limit.take())
        CommitReceipt(commits: commits, ticket: 1).holding(limit).whenCommitted { answers.record($0) }
        #expect(limit.count == 0 && answers.all == [true, true])
        // The service stops: the waiter hears false and its place comes back.
        #expect(limit.take())
        CommitReceipt(commits: commits, ticket: commits.ticket()).holding(limit).whenCommitted { answers.record($0) }
        commits.stop()
        #expect(limit.count == 0 && answers.all == [true, true, false])
    }
}
