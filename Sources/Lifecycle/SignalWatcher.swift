import Dispatch
import Foundation
import Synchronization

/// Turns SIGTERM/SIGINT into something a task can await. The signals' default action is turned
/// off, so the process ends only when it has drained (the service, the naive peer).
///
/// Nothing polls: a signal resumes every task waiting for one, and a wait that ends first (its
/// time is up, or its task is cancelled) takes its continuation back.
public final class SignalWatcher: @unchecked Sendable {
    // @unchecked: `sources` is written once in init and only kept alive afterwards; all mutable
    // state is in the Mutex.
    private var sources: [any DispatchSourceSignal] = []

    private struct State {
        var received: Int32?
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Int32?, Never>] = [:]
        /// Waits cancelled before they registered their continuation.
        var cancelled: Set<Int> = []
    }

    private let state = Mutex(State())

    public init(_ signals: Int32...) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
            sources.append(source)
        }
    }

    private func deliver(_ number: Int32) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int32?, Never>] in
            if state.received == nil { state.received = number }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: number) }
    }

    /// The first signal received (at once if one came already). Waits through cancellation: a
    /// signal is what it waits for.
    public func next() async -> Int32 {
        let id = newWaiter()
        return await withCheckedContinuation { continuation in
            register(id, continuation)
        }!
    }

    public var hasFired: Bool { state.withLock { $0.received != nil } }

    /// Waits registered and not yet answered (for tests: a signal sent once this counts them
    /// reaches waits in progress, not waits that would find it already received).
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Sleeps up to `duration`; returns true as soon as a signal arrives (at once if one came
    /// already).
    public func wait(for duration: Duration) async -> Bool {
        if hasFired { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.signalOrCancellation() != nil }
            group.addTask {
                try? await Task.sleep(for: duration)
                return false
            }
            _ = await group.next()
            group.cancelAll()
            await group.waitForAll()
            return hasFired
        }
    }

    /// The first signal, or nil once the calling task is cancelled.
    private func signalOrCancellation() async -> Int32? {
        let id = newWaiter()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in register(id, continuation) }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Int32?, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                if state.received == nil { state.cancelled.insert(id) }
                return nil
            }
            waiter?.resume(returning: nil)
        }
    }

    private func newWaiter() -> Int {
        state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
    }

    /// Keeps `continuation` until a signal, or answers it at once: the signal already received,
    /// or nil if its wait was cancelled before it got here.
    private func register(_ id: Int, _ continuation: CheckedContinuation<Int32?, Never>) {
        let answer = state.withLock { state -> Int32?? in
            if let received = state.received { return .some(received) }
            if state.cancelled.remove(id) != nil { return .some(nil) }
            state.waiters[id] = continuation
            return .none
        }
        if let answer { continuation.resume(returning: answer) }
    }
}
