import Foundation

/// A load profile of the tuning guide (`bench/profiles.json`): an arrival rate that starts at
/// `startEPS` events per second and moves linearly, stage by stage, to each stage's target
/// (equal targets hold the rate). The same file drives k6, so both tools run the same plan.
public struct Profile: Codable, Sendable, Equatable {
    /// One leg of the plan: over `seconds`, the rate moves linearly to `eps`.
    public struct Stage: Codable, Sendable, Equatable {
        public var seconds: Double
        public var eps: Double

        public init(seconds: Double, eps: Double) {
            self.seconds = seconds
            self.eps = eps
        }
    }

    public var about: String?
    public var startEPS: Double
    public var stages: [Stage]

    public init(about: String? = nil, startEPS: Double, stages: [Stage]) {
        self.about = about
        self.startEPS = startEPS
        self.stages = stages
    }

    enum CodingKeys: String, CodingKey {
        case about
        case startEPS = "start_eps"
        case stages
    }

    /// The plan's length in seconds.
    public var duration: Double { stages.reduce(0) { $0 + $1.seconds } }

    /// The highest rate the plan reaches.
    public var peakEPS: Double { stages.reduce(startEPS) { max($0, $1.eps) } }

    /// The same rates with every stage's duration multiplied by `factor` (`BENCH_SCALE`), at
    /// least 1 s per stage and rounded to the millisecond, as k6 rounds it (bench/k6/events.js),
    /// so a scaled run of either tool covers the same events.
    public func scaled(by factor: Double) -> Profile {
        precondition(factor > 0, "a profile scales by a positive factor")
        var copy = self
        copy.stages = stages.map { Stage(seconds: max(1, ($0.seconds * factor * 1000).rounded() / 1000), eps: $0.eps) }
        return copy
    }
}

/// The whole of `bench/profiles.json`: the named profiles and the stress profile's break
/// thresholds.
public struct ProfileFile: Codable, Sendable {
    public var profiles: [String: Profile]
    public var breakThresholds: BreakThresholds

    enum CodingKeys: String, CodingKey {
        case profiles
        case breakThresholds = "break_thresholds"
    }

    public init(profiles: [String: Profile], breakThresholds: BreakThresholds) {
        self.profiles = profiles
        self.breakThresholds = breakThresholds
    }

    /// Decodes the file's JSON; unknown keys (the `about` texts) are ignored.
    public static func decode(_ data: Data) throws -> ProfileFile {
        let file = try JSONDecoder().decode(ProfileFile.self, from: data)
        for (name, profile) in file.profiles {
            guard profile.startEPS >= 0, !profile.stages.isEmpty,
                profile.stages.allSatisfy({ $0.seconds > 0 && $0.eps >= 0 })
            else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: [], debugDescription: "profile \(name): rates must be >= 0, and there must be stages of positive length"))
            }
        }
        return file
    }

    /// Reads and decodes the file at `path`.
    public static func load(path: String) throws -> ProfileFile {
        try decode(Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
