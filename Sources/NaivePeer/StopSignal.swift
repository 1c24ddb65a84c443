import Dispatch
import Foundation
import Synchronization

/// SIGTERM / SIGINT as something main can await. The signals' default action is turned off
/// (the process would die mid-write otherwise); a Dispatch source observes them instead, so the
/// peer stops its server, lets the writes under way finish, and exits 0.
final class StopSignal: Sendable {
    private struct State {
        var received: Int32?
        var waiter: CheckedContinuation<Int32, Never>?
    }

    private let state = Mutex(State())
    /// Kept only so the sources stay alive: set once in init, never read or changed afterwards,
    /// so no thread shares it (Dispatch's source types are not marked Sendable).
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]

    init(_ numbers: Int32...) {
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: .global())
        }
        for (number, source) in zip(numbers, sources) {
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
        }
    }

    private func deliver(_ number: Int32) {
        let waiter = state.withLock { state -> CheckedContinuation<Int32, Never>? in
            if state.received == nil { state.received = number }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: number)
    }

    /// The first signal (at once if it came already). One caller only.
    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let already = state.withLock { state -> Int32? in
                if let received = state.received { return received }
                state.waiter = continuation
                return nil
            }
            if let already { continuation.resume(returning: already) }
        }
    }
}
