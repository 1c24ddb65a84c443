/// When a stress run counts as broken (bench/profiles.json `break_thresholds`, from the guide's
/// alerts): errors over `errorRate`, p95 latency over `p95Ms`, or OK answers under
/// `achievedRatio` of the target.
public struct BreakThresholds: Codable, Sendable, Equatable {
    public var errorRate: Double
    public var p95Ms: Double
    public var achievedRatio: Double

    public init(errorRate: Double, p95Ms: Double, achievedRatio: Double) {
        self.errorRate = errorRate
        self.p95Ms = p95Ms
        self.achievedRatio = achievedRatio
    }

    enum CodingKeys: String, CodingKey {
        case errorRate = "error_rate"
        case p95Ms = "p95_ms"
        case achievedRatio = "achieved_ratio"
    }

    /// The limit of one threshold.
    public func limit(of threshold: BrokenThreshold.Threshold) -> Double {
        switch threshold {
        case .errorRate: errorRate
        case .p95Latency: p95Ms
        case .achievedRate: achievedRatio
        }
    }

    /// Below this many events due in a second the achieved rate is not judged: at a ramp's
    /// first few events/s, one event straddling a second's boundary is already 5% or more.
    public static var minimumRateJudged: Int { 50 }

    /// Which thresholds `second` breaks, with the measured values.
    public func broken(by second: SecondStats) -> [(threshold: BrokenThreshold.Threshold, measured: Double)] {
        var broken: [(BrokenThreshold.Threshold, Double)] = []
        if second.errorRate > errorRate { broken.append((.errorRate, second.errorRate)) }
        if second.p95Ms > p95Ms { broken.append((.p95Latency, second.p95Ms)) }
        if second.targetEps >= Self.minimumRateJudged, second.achievedRatio < achievedRatio {
            broken.append((.achievedRate, second.achievedRatio))
        }
        return broken
    }
}

/// One threshold a break crossed: its limit, and over the breaking seconds how many crossed it
/// and the worst value measured.
public struct BrokenThreshold: Codable, Sendable, Equatable {
    public enum Threshold: String, Codable, Sendable {
        case errorRate = "error_rate"
        case p95Latency = "p95_ms"
        case achievedRate = "achieved_ratio"
    }

    public var threshold: Threshold
    public var limit: Double
    public var worst: Double
    public var seconds: Int

    public init(threshold: Threshold, limit: Double, worst: Double, seconds: Int) {
        self.threshold = threshold
        self.limit = limit
        self.worst = worst
        self.seconds = seconds
    }
}

/// Where a stress run broke: the first of the consecutive breaking seconds, the target rate
/// then, the OK rate over the breaking seconds, and what broke.
public struct BreakReport: Codable, Sendable, Equatable {
    public var second: Int
    public var targetEps: Int
    public var achievedEps: Double
    public var thresholds: [BrokenThreshold]

    public init(second: Int, targetEps: Int, achievedEps: Double, thresholds: [BrokenThreshold]) {
        self.second = second
        self.targetEps = targetEps
        self.achievedEps = achievedEps
        self.thresholds = thresholds
    }
}

/// Watches the per-second series: a run breaks when `consecutiveSeconds` seconds in a row each
/// break at least one threshold (not necessarily the same one). A single slow second (a GC-like
/// pause, the connection's first calls) does not end a run. Seconds with nothing due (the drain
/// after the schedule) are not judged.
public struct BreakDetector: Sendable {
    public static var consecutiveSeconds: Int { 5 }

    public let thresholds: BreakThresholds
    private var streak: [SecondStats] = []

    public init(thresholds: BreakThresholds) {
        self.thresholds = thresholds
    }

    /// Judges the next second; returns the report on the second that completes a break.
    public mutating func observe(_ second: SecondStats) -> BreakReport? {
        guard second.targetEps > 0 else { return nil }
        guard !thresholds.broken(by: second).isEmpty else {
            streak.removeAll(keepingCapacity: true)
            return nil
        }
        streak.append(second)
        guard streak.count >= Self.consecutiveSeconds else { return nil }
        return report()
    }

    private func report() -> BreakReport {
        var crossed: [BrokenThreshold.Threshold: (worst: Double, seconds: Int)] = [:]
        for second in streak {
            for (threshold, measured) in thresholds.broken(by: second) {
                let before = crossed[threshold]
                // Worst: highest for errors and latency, lowest for the achieved ratio.
                let worse = threshold == .achievedRate ? min(before?.worst ?? measured, measured) : max(before?.worst ?? measured, measured)
                crossed[threshold] = (worse, (before?.seconds ?? 0) + 1)
            }
        }
        let order: [BrokenThreshold.Threshold] = [.errorRate, .p95Latency, .achievedRate]
        return BreakReport(
            second: streak[0].second,
            targetEps: streak[0].targetEps,
            achievedEps: Double(streak.reduce(0) { $0 + $1.ok }) / Double(streak.count),
            thresholds: order.compactMap { threshold in
                crossed[threshold].map { BrokenThreshold(threshold: threshold, limit: thresholds.limit(of: threshold), worst: $0.worst, seconds: $0.seconds) }
            })
    }
}
