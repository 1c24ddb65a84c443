import Synchronization

/// Counts of what the ingest path did, per event kind. Lock-free; read by logs, tests and metrics.
final class IngestCounters: Sendable {
    struct Snapshot: Sendable, Equatable {
        var received = 0
        var accepted = 0
        var ignoredOtherNamespace = 0
        var ignoredNoGoal = 0
        var rejected = 0
        var overloaded = 0
        var unavailable = 0
    }

    private final class PerKind: Sendable {
        let received = Atomic<Int>(0)
        let accepted = Atomic<Int>(0)
        let ignoredOtherNamespace = Atomic<Int>(0)
        let ignoredNoGoal = Atomic<Int>(0)
        let rejected = Atomic<Int>(0)
        let overloaded = Atomic<Int>(0)
        let unavailable = Atomic<Int>(0)
    }

    private let login = PerKind()
    private let stat = PerKind()

    func record(_ kind: EventKind, _ outcome: IngestOutcome) {
        let c = kind == .login ? login : stat
        c.received.add(1, ordering: .relaxed)
        switch outcome {
        case .accepted: c.accepted.add(1, ordering: .relaxed)
        case .ignored(.otherNamespace): c.ignoredOtherNamespace.add(1, ordering: .relaxed)
        case .ignored(.noMatchingGoal): c.ignoredNoGoal.add(1, ordering: .relaxed)
        case .rejected: c.rejected.add(1, ordering: .relaxed)
        case .overloaded: c.overloaded.add(1, ordering: .relaxed)
        case .unavailable: c.unavailable.add(1, ordering: .relaxed)
        }
    }

    func snapshot(_ kind: EventKind) -> Snapshot {
        let c = kind == .login ? login : stat
        return Snapshot(
            received: c.received.load(ordering: .relaxed),
            accepted: c.accepted.load(ordering: .relaxed),
            ignoredOtherNamespace: c.ignoredOtherNamespace.load(ordering: .relaxed),
            ignoredNoGoal: c.ignoredNoGoal.load(ordering: .relaxed),
            rejected: c.rejected.load(ordering: .relaxed),
            overloaded: c.overloaded.load(ordering: .relaxed),
            unavailable: c.unavailable.load(ordering: .relaxed))
    }
}
