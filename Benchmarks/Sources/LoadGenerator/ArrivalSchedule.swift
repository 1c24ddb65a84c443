/// When each event of a profile is due. The rate r(t) is piecewise linear, so the number of
/// events due by time t is Λ(t) = ∫₀ᵗ r, a quadratic per stage; event n (0-based) is due at the
/// instant Λ reaches n + 1. So a constant 1,000/s for 10 s schedules exactly 10,000 events, the
/// first at 1 ms, and `eventsDue(by:)` and `intendedTime(ofEvent:)` are each other's inverse.
///
/// Cost: `eventsDue` is a walk over the stages (a handful); `intendedTime` is a square root, and
/// the generator asks for events in increasing order, which `Cursor` makes O(1) per event.
public struct ArrivalSchedule: Sendable {
    /// A stage with its start time and the events due before it.
    struct Segment: Sendable {
        var start: Double
        var duration: Double
        var fromRate: Double
        var toRate: Double
        var eventsBefore: Double

        /// Rate change per second.
        var slope: Double { (toRate - fromRate) / duration }
        var events: Double { (fromRate + toRate) / 2 * duration }

        /// Events due within the segment `t` seconds into it.
        func events(at t: Double) -> Double { fromRate * t + slope * t * t / 2 }

        /// Seconds into the segment at which `count` of its events are due. The form
        /// 2c / (a + √(a² + 2kc)) is the quadratic's root without the cancellation of
        /// (-a + √…) / k, and holds for a flat rate (k = 0) and a falling one alike.
        func time(ofEvents count: Double) -> Double {
            let a = fromRate
            let discriminant = max(0, a * a + 2 * slope * count)
            let denominator = a + discriminant.squareRoot()
            return denominator > 0 ? min(duration, 2 * count / denominator) : duration
        }
    }

    let segments: [Segment]
    /// The plan's length in seconds.
    public let duration: Double
    /// Every event of the plan: Λ(duration), rounded down.
    public let totalEvents: Int

    /// A rounding guard: Λ computed at an event's own intended time must count that event.
    static let epsilon = 1e-7

    public init(_ profile: Profile) {
        var segments: [Segment] = []
        var start = 0.0
        var before = 0.0
        var rate = profile.startEPS
        for stage in profile.stages where stage.seconds > 0 {
            let segment = Segment(start: start, duration: stage.seconds, fromRate: rate, toRate: stage.eps, eventsBefore: before)
            segments.append(segment)
            start += stage.seconds
            before += segment.events
            rate = stage.eps
        }
        self.segments = segments
        duration = start
        totalEvents = Int((before + Self.epsilon).rounded(.down))
    }

    /// The target rate (events/s) at `t` seconds.
    public func rate(at t: Double) -> Double {
        guard let segment = segment(containing: t) else { return 0 }
        return segment.fromRate + segment.slope * (t - segment.start)
    }

    /// Λ(t): how many events are due by `t` seconds, as a real number.
    public func cumulative(at t: Double) -> Double {
        guard t > 0 else { return 0 }
        guard let segment = segment(containing: t) else { return segments.last.map { $0.eventsBefore + $0.events } ?? 0 }
        return segment.eventsBefore + segment.events(at: t - segment.start)
    }

    /// How many events are due by `t` seconds (events 0..<result).
    public func eventsDue(by t: Double) -> Int {
        min(totalEvents, Int((cumulative(at: t) + Self.epsilon).rounded(.down)))
    }

    /// How many events are due within second `s`, i.e. in [s, s + 1): the second's target.
    public func eventsDue(inSecond s: Int) -> Int {
        eventsDue(by: Double(s + 1)) - eventsDue(by: Double(s))
    }

    /// The instant, in seconds from the start, at which event `n` (0-based) is due.
    public func intendedTime(ofEvent n: Int) -> Double {
        var cursor = Cursor()
        return cursor.intendedTime(ofEvent: n, in: self)
    }

    /// Remembers the segment of the last event asked for, so that asking in increasing order
    /// costs no search.
    public struct Cursor: Sendable {
        var index = 0

        public init() {}

        public mutating func intendedTime(ofEvent n: Int, in schedule: ArrivalSchedule) -> Double {
            let target = Double(n + 1)
            let segments = schedule.segments
            guard !segments.isEmpty else { return 0 }
            if index >= segments.count || segments[index].eventsBefore > target { index = 0 }
            while index + 1 < segments.count, segments[index + 1].eventsBefore < target { index += 1 }
            let segment = segments[index]
            return segment.start + segment.time(ofEvents: target - segment.eventsBefore)
        }
    }

    private func segment(containing t: Double) -> Segment? {
        guard t >= 0, t <= duration else { return nil }
        // The last segment whose start is at or before t.
        var chosen = segments.first
        for segment in segments where segment.start <= t { chosen = segment }
        return chosen
    }
}
