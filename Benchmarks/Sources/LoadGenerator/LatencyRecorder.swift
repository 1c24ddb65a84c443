import Histogram

/// Latencies in an HdrHistogram: microseconds from 1 µs to 60 s at 3 significant digits (so a
/// reported value is within 0.1% of a recorded one). Recording is an index computation and an
/// increment; the counts array is ~17k entries, so `reset()` and each percentile walk it once:
/// cheap at once a second, not per event.
public struct LatencyRecorder: Sendable {
    public static let highestMicroseconds: UInt64 = 60_000_000

    private var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: LatencyRecorder.highestMicroseconds, numberOfSignificantValueDigits: .three)

    public init() {}

    public var count: Int { Int(histogram.totalCount) }

    /// Records one latency; anything past 60 s counts as 60 s, and anything under 1 µs as 1 µs.
    public mutating func record(microseconds: Int64) {
        histogram.record(UInt64(min(max(microseconds, 1), Int64(Self.highestMicroseconds))))
    }

    /// The value at `percentile` (0...100) in milliseconds; 0 when nothing was recorded.
    public func milliseconds(atPercentile percentile: Double) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    /// The largest value recorded, in milliseconds; 0 when nothing was.
    public var maxMilliseconds: Double { histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000 }

    public mutating func reset() { histogram.reset() }

    public var summary: LatencySummary {
        LatencySummary(
            count: count,
            p50Ms: milliseconds(atPercentile: 50), p90Ms: milliseconds(atPercentile: 90),
            p95Ms: milliseconds(atPercentile: 95), p99Ms: milliseconds(atPercentile: 99),
            p999Ms: milliseconds(atPercentile: 99.9), maxMs: maxMilliseconds)
    }
}

/// Latency percentiles in milliseconds, from each call's intended start to its answer.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: Int
    public var p50Ms: Double
    public var p90Ms: Double
    public var p95Ms: Double
    public var p99Ms: Double
    public var p999Ms: Double
    public var maxMs: Double

    public init(count: Int, p50Ms: Double, p90Ms: Double, p95Ms: Double, p99Ms: Double, p999Ms: Double, maxMs: Double) {
        self.count = count
        self.p50Ms = p50Ms
        self.p90Ms = p90Ms
        self.p95Ms = p95Ms
        self.p99Ms = p99Ms
        self.p999Ms = p999Ms
        self.maxMs = maxMs
    }
}
