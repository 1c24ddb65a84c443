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

    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private static let outcomes = CountedOutcome.allCases.count
    private let cells: [Cell]
    /// Back-pressure, one episode per limit (`Pushback`, by its index): set by the first refusal
    /// for that limit, cleared when the limit has room again (`noteRoom`); each set counts one
    /// activation. Apart per limit: under a full buffer, merges with ids keep being taken, and
    /// would otherwise end and restart the episode at every refusal.
    private let pushingBack: [Flag] = Pushback.allCases.map { _ in Flag() }
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
        if case .overloaded(let limit) = outcome {
            let flag = pushingBack[limit.index]
            let started = !flag.value.load(ordering: .relaxed) && !flag.value.exchange(true, ordering: .relaxed)
            if started { activations.add(1, ordering: .relaxed) }
            notices?.refused(started: started, limit: limit)
        }
    }

    /// `limit` has room again (the buffer took an event that created entries, or an event id,
    /// or a call that waits for its commit), and its next refusal starts a new back-pressure
    /// episode. (A pure merge proves nothing of the entries: it is taken when the buffer is full.)
    func noteRoom(_ limit: Pushback = .bufferFull) {
        let flag = pushingBack[limit.index]
        if flag.value.load(ordering: .relaxed), flag.value.exchange(false, ordering: .relaxed) { notices?.roomAgain(limit) }
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

    /// Times a memory limit (`Pushback`) started refusing events.
    var backPressureActivations: Int { activations.load(ordering: .relaxed) }
}
