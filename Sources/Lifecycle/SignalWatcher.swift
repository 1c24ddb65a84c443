import Dispatch
import Foundation
import Synchronization

/// Turns SIGTERM/SIGINT into something a task can await. The signals' default action is turned
/// off, so the process ends only when it has drained (the service, the naive peer).
public final class SignalWatcher: @unchecked Sendable {
    // @unchecked: `sources` is written once in init and only kept alive afterwards; all mutable
    // state is in the Mutex.
    private var sources: [any DispatchSourceSignal] = []

    private struct State {
        var received: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
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
        let waiters = state.withLock { state -> [CheckedContinuation<Int32, Never>] in
            if state.received == nil { state.received = number }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: number) }
    }

    /// The first signal received (at once if one came already).
    public func next() async -> Int32 {
        await withCheckedContinuation { continuation in
            let already = state.withLock { state -> Int32? in
                if let received = state.received { return received }
                state.waiters.append(continuation)
                return nil
            }
            if let already { continuation.resume(returning: already) }
        }
    }

    public var hasFired: Bool { state.withLock { $0.received != nil } }

    /// Sleeps up to `duration`; returns true early if a signal arrives.
    public func wait(for duration: Duration) async -> Bool {
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end {
            if hasFired { return true }
            try? await Task.sleep(for: min(.milliseconds(100), end - ContinuousClock.now))
        }
        return hasFired
    }
}
