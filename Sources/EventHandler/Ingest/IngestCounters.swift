import EventRules
import Synchronization

/// Counts of what the ingest path did, by source, event kind and outcome. Lock-free: one relaxed
/// atomic add per event (received is the sum of the outcomes, not a second add). Read by the
/// shutdown summary, the tests and, at each scrape, the Prometheus counters.
final class IngestCounters: Sendable {
    /// One (source, kind)'s counts.
    struct Snapshot: Sendable, Equatable {
        var byOutcome: [CountedOutcome: Int] = [:]

        subscript(outcome: CountedOutcome) -> Int { byOutcome[outcome] ?? 0 }
        var received: Int { byOutcome.values.reduce(0, +) }
        var accepted: Int { self[.accepted] }
        var ignored: Int { IgnoreReason.allCases.reduce(0) { $0 + self[.ignored($1)] } }
        var rejected: Int { RejectReason.allCases.reduce(0) { $0 + self[.rejected($1)] } }
    }

    private final class Cell: Sendable {
        let value = Atomic<Int>(0)
    }

    private static let outcomes = CountedOutcome.allCases.count
    private let cells: [Cell]
    /// Back-pressure: set by the first refusal for a full buffer, cleared by the next event that
    /// created an entry; each set counts one activation.
    private let pushingBack = Atomic<Bool>(false)
    private let activations = Atomic<Int>(0)
    /// Told when back-pressure starts and ends, and of each refusal (its log lines).
    private let notices: IngestNotices?

    init(notices: IngestNotices? = nil) {
        self.notices = notices
        cells = (0..<(EventSource.allCases.count * EventKind.allCases.count * Self.outcomes)).map { _ in Cell() }
    }

    private static func base(_ source: EventSource, _ kind: EventKind) -> Int {
        let s = source == .grpc ? 0 : 1
        let k = kind == .login ? 0 : 1
        return (s * EventKind.allCases.count + k) * outcomes
    }

    func record(_ source: EventSource, _ kind: EventKind, _ outcome: IngestOutcome) {
        cells[Self.base(source, kind) + outcome.counted.index].value.add(1, ordering: .relaxed)
        if outcome == .overloaded {
            let started = !pushingBack.load(ordering: .relaxed) && !pushingBack.exchange(true, ordering: .relaxed)
            if started { activations.add(1, ordering: .relaxed) }
            notices?.refused(started: started)
        }
    }

    /// The buffer took an event that created entries: it has room again, and the next refusal
    /// starts a new back-pressure episode. (A pure merge proves nothing: it is taken when full.)
    func noteRoom() {
        if pushingBack.load(ordering: .relaxed), pushingBack.exchange(false, ordering: .relaxed) { notices?.roomAgain() }
    }

    func snapshot(_ source: EventSource, _ kind: EventKind) -> Snapshot {
        let base = Self.base(source, kind)
        var snapshot = Snapshot()
        for outcome in CountedOutcome.allCases {
            snapshot.byOutcome[outcome] = cells[base + outcome.index].value.load(ordering: .relaxed)
        }
        return snapshot
    }

    /// All sources and kinds added up (the shutdown summary).
    var total: Snapshot {
        var total = Snapshot()
        for source in EventSource.allCases {
            for kind in EventKind.allCases {
                for (outcome, count) in snapshot(source, kind).byOutcome {
                    total.byOutcome[outcome, default: 0] += count
                }
            }
        }
        return total
    }

    /// Times the buffer started refusing events for being full.
    var backPressureActivations: Int { activations.load(ordering: .relaxed) }
}
