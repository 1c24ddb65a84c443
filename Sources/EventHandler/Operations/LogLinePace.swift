import Synchronization

/// At most one log line of a kind per interval, decided without a lock: of the callers that find
/// the line due, one wins the compare-and-swap that moves the next one an interval on and writes
/// the line; the others skip it. Lines that say what a metric counts in full (accept errors,
/// events of another namespace, a memory limit refusing events) use one each.
struct LogLinePace: ~Copyable, Sendable {
    /// No line before this time (monotonic nanoseconds).
    private let next = Atomic<UInt64>(0)

    init() {}

    /// True for the one caller that finds a line due at `now`; the next is due `interval` later.
    func due(at now: UInt64, interval: UInt64) -> Bool {
        let at = next.load(ordering: .relaxed)
        guard now >= at else { return false }
        return next.compareExchange(expected: at, desired: now &+ interval, ordering: .relaxed).exchanged
    }
}
