import GRPCCore
import Synchronization

/// Everything a run counts, behind one lock: the mix (whose users are in flight), the proof of
/// writes, the overall and per-second histograms, and break detection. The scheduling loop
/// takes the lock once per tick for a whole batch; each answer takes it once. At 20,000
/// events/s that is ~21,000 short critical sections a second; the longest is closing a second
/// (three percentile walks and a reset over ~17k counts), once a second.
final class RunTally: Sendable {
    struct State {
        var mix: EventMix<SystemRandomNumberGenerator>
        var ledger: WriteLedger
        var overall = LatencyRecorder()
        var current = SecondAccumulator()
        var series: [SecondStats] = []
        var detector: BreakDetector?
        var brokeAt: BreakReport?
        var sent = 0
        var ok = 0
        var failed = 0
        var failedByCode: [String: Int] = [:]
        var slotWaits = 0
        var peakInFlight = 0
        /// Where the schedule ends: its length, or the instant break detection stopped it.
        var scheduleEnd: Double
    }

    private let state: Mutex<State>
    private let schedule: ArrivalSchedule
    private let maxInFlight: Int

    init(schedule: ArrivalSchedule, users: Int, maxInFlight: Int, breakThresholds: BreakThresholds?) {
        self.schedule = schedule
        self.maxInFlight = min(maxInFlight, users)
        state = Mutex(
            State(
                mix: EventMix(users: users, random: SystemRandomNumberGenerator()),
                ledger: WriteLedger(users: users, statCodes: EventMix<SystemRandomNumberGenerator>.statCodes),
                detector: breakThresholds.map(BreakDetector.init(thresholds:)),
                scheduleEnd: schedule.duration))
    }

    /// Draws up to `count` events for sending now, as many as there are free slots; their users
    /// are in flight from here on.
    func begin(upTo count: Int) -> [PlannedEvent] {
        state.withLock { state in
            let n = min(count, maxInFlight - state.mix.inFlight)
            guard n > 0 else { return [] }
            var events: [PlannedEvent] = []
            events.reserveCapacity(n)
            for _ in 0..<n {
                guard let event = state.mix.next() else { break }
                events.append(event)
            }
            state.sent += events.count
            state.current.sent += events.count
            state.peakInFlight = max(state.peakInFlight, state.mix.inFlight)
            return events
        }
    }

    /// `count` more events found every slot taken when they were due.
    func slotsWaited(_ count: Int) {
        state.withLock {
            $0.slotWaits += count
            $0.current.slotWaits += count
        }
    }

    /// `event` was answered (`failure` nil for OK) `latencyMicroseconds` after its intended start.
    func finish(_ event: PlannedEvent, latencyMicroseconds: Int64, failure: RPCError.Code?) {
        state.withLock { state in
            state.mix.finish(event)
            state.overall.record(microseconds: latencyMicroseconds)
            state.current.latency.record(microseconds: latencyMicroseconds)
            if let failure {
                state.failed += 1
                state.current.failed += 1
                state.failedByCode[failure.canonicalName, default: 0] += 1
            } else {
                state.ok += 1
                state.current.ok += 1
                state.ledger.answeredOK(event)
            }
        }
    }

    var inFlight: Int { state.withLock { $0.mix.inFlight } }

    /// Closes every second before `second`; returns them, and the break report if one of them
    /// completed a break (the first time only).
    func advance(to second: Int) -> (closed: [SecondStats], broke: BreakReport?) {
        state.withLock { state in
            var closed: [SecondStats] = []
            var broke: BreakReport?
            while state.current.second < second {
                let s = state.current.second
                let stats = state.current.close(target: target(ofSecond: s, end: state.scheduleEnd), next: s + 1)
                state.series.append(stats)
                closed.append(stats)
                if state.brokeAt == nil, let report = state.detector?.observe(stats) {
                    state.brokeAt = report
                    broke = report
                }
            }
            return (closed, broke)
        }
    }

    /// The schedule stopped early at `elapsed` seconds: later seconds have nothing due.
    func stopSchedule(at elapsed: Double) {
        state.withLock { $0.scheduleEnd = min($0.scheduleEnd, elapsed) }
    }

    /// Closes the second in progress (when anything happened in it) and returns the result.
    func result(runID: String, intended: Int, durationSeconds: Double, wallSeconds: Double) -> LoadResult {
        state.withLock { state in
            let s = state.current.second
            let target = target(ofSecond: s, end: state.scheduleEnd)
            if target > 0 || state.current.sent > 0 || state.current.ok + state.current.failed > 0 {
                state.series.append(state.current.close(target: target, next: s + 1))
            }
            return LoadResult(
                runId: runID, intended: intended, sent: state.sent, unsent: max(0, intended - state.sent), ok: state.ok, failed: state.failed,
                failedByCode: state.failedByCode, slotWaits: state.slotWaits, peakInFlight: state.peakInFlight,
                durationSeconds: durationSeconds, wallSeconds: wallSeconds,
                intendedEps: durationSeconds > 0 ? Double(intended) / durationSeconds : 0,
                achievedEps: durationSeconds > 0 ? Double(state.ok) / durationSeconds : 0,
                latency: state.overall.summary, seconds: state.series,
                loginsOk: state.ledger.loginsOK, statsOk: state.ledger.statsOK, statValueSumOk: state.ledger.statValueSumOK,
                brokeAt: state.brokeAt)
        }
    }

    /// Events due in second `s` of a schedule that ends at `end`.
    private func target(ofSecond s: Int, end: Double) -> Int {
        let from = min(Double(s), end)
        let to = min(Double(s + 1), end)
        return schedule.eventsDue(by: to) - schedule.eventsDue(by: from)
    }
}

extension RPCError.Code {
    /// The status's canonical name, as gRPC documents and logs it (`DEADLINE_EXCEEDED`).
    var canonicalName: String {
        switch self {
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internalError: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        default: "CODE_\(rawValue)"
        }
    }
}
