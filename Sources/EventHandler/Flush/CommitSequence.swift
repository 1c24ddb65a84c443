import Dispatch
import Synchronization

/// A flush worker's drains, numbered, and who waits for one to commit: the one way to wait for
/// "a flush that started after now", by a callback (`ACK_MODE=durable`'s calls, on an event
/// loop) or blocking (the final flush at shutdown, a Kafka revocation).
///
/// `ticket()` read after an event went into one of the worker's shards names the first drain
/// certain to hold it (a drain that started earlier may have missed it); once that drain, or any
/// later one, has committed, so has the event: a drain that fails gives its entries back, and
/// the next one, numbered higher, takes them.
final class CommitSequence: Sendable {
    private struct State {
        /// By registration number, so a waiter whose call ended can be removed.
        var waiting: [Int: (target: Int, done: @Sendable (Bool) -> Void)] = [:]
        var nextNumber = 0
        var stopped = false
    }

    /// Drains started, and the number of the last one that committed.
    private let started = Atomic<Int>(0)
    private let committedDrain = Atomic<Int>(0)
    private let state = Mutex(State())

    /// Callers waiting for a drain to commit now (the `commit_waiters` gauge).
    var waiterCount: Int { state.withLock { $0.waiting.count } }

    /// The number of the last drain that committed.
    var lastCommitted: Int { committedDrain.load(ordering: .acquiring) }

    /// The first drain certain to hold an event added before this call.
    func ticket() -> Int {
        started.load(ordering: .acquiring) + 1
    }

    /// Numbers a drain about to take entries from the shards; call it before draining any.
    func startDrain() -> Int {
        started.add(1, ordering: .acquiringAndReleasing).newValue
    }

    /// Calls `done(true)` once drain `ticket` (or a later one) has committed, `done(false)` if
    /// the sequence stopped first. At once when already decided; otherwise on the thread that
    /// reports the commit: keep it short. Returns the registration's number for `cancel` (nil
    /// when `done` already ran).
    @discardableResult
    func whenCommitted(_ ticket: Int, _ done: @escaping @Sendable (Bool) -> Void) -> Int? {
        if committedDrain.load(ordering: .acquiring) >= ticket {
            done(true)
            return nil
        }
        let decided: (now: Bool?, number: Int?) = state.withLock { state in
            if committedDrain.load(ordering: .acquiring) >= ticket { return (true, nil) }
            if state.stopped { return (false, nil) }
            state.nextNumber += 1
            state.waiting[state.nextNumber] = (ticket, done)
            return (nil, state.nextNumber)
        }
        if let now = decided.now { done(now) }
        return decided.number
    }

    /// Blocks until drain `ticket` (or a later one) has committed: true; false if the sequence
    /// stopped first or `deadline` came (the wait is then forgotten).
    func waitUntilCommitted(_ ticket: Int, deadline: ContinuousClock.Instant) -> Bool {
        let answer = Mutex<Bool?>(nil)
        let decided = DispatchSemaphore(value: 0)
        let number = whenCommitted(ticket) { committed in
            answer.withLock { $0 = committed }
            decided.signal()
        }
        let timeout = max(.zero, deadline - ContinuousClock.now)
        if decided.wait(timeout: .now() + timeout.seconds) == .timedOut, let number {
            cancel(number)
        }
        return answer.withLock { $0 } ?? false
    }

    /// Forgets waiter `number` without calling it: its call ended (deadline, reset, disconnect),
    /// so nothing is left waiting for a commit that may be far off (a database outage).
    /// True when it was still waiting (false: it was answered already, or is being answered).
    @discardableResult
    func cancel(_ number: Int) -> Bool {
        state.withLock { $0.waiting.removeValue(forKey: number) } != nil
    }

    /// Drain `drain` committed: so did every event of the tickets up to it.
    func committed(drain: Int) {
        let ready = state.withLock { state in
            if drain > committedDrain.load(ordering: .relaxed) { committedDrain.store(drain, ordering: .releasing) }
            let ready = state.waiting.filter { $0.value.target <= drain }
            for number in ready.keys { state.waiting.removeValue(forKey: number) }
            return ready.sorted { $0.key < $1.key }.map(\.value)
        }
        for waiter in ready { waiter.done(true) }
    }

    /// The worker stopped: every waiter left, and every later one, hears `false`.
    func stop() {
        let left = state.withLock { state in
            state.stopped = true
            defer { state.waiting.removeAll() }
            return state.waiting.sorted { $0.key < $1.key }.map(\.value)
        }
        for waiter in left { waiter.done(false) }
    }
}
