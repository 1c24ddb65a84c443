import Foundation
import LoadGenerator
import TestSupport
import Testing

@Suite("Profiles: bench/profiles.json and scaling")
struct ProfileTests {
    static let file = URL(fileURLWithPath: PostgresServer.repositoryRoot).appendingPathComponent("bench/profiles.json").path

    @Test("the repository's profiles decode, with the stress thresholds")
    func decodesTheRepositoryFile() throws {
        let file = try ProfileFile.load(path: Self.file)
        #expect(Set(file.profiles.keys) == ["smoke", "baseline", "scale", "target", "endurance", "stress", "spike", "soak"])
        let stress = try #require(file.profiles["stress"])
        #expect(stress.startEPS == 1)
        #expect(stress.stages == [.init(seconds: 600, eps: 1000), .init(seconds: 600, eps: 2000), .init(seconds: 600, eps: 5000), .init(seconds: 600, eps: 20000)])
        #expect(stress.duration == 2400)
        #expect(stress.peakEPS == 20000)
        #expect(file.profiles["target"]?.stages == [.init(seconds: 1800, eps: 1000)])
        #expect(file.breakThresholds == BreakThresholds(errorRate: 0.01, p95Ms: 100, achievedRatio: 0.95))
    }

    @Test("a profile without stages, or with a negative rate, is refused")
    func refusesBadProfiles() {
        let thresholds = #""break_thresholds": {"error_rate": 0.01, "p95_ms": 100, "achieved_ratio": 0.95}"#
        #expect(throws: (any Error).self) {
            try ProfileFile.decode(Data(#"{\#(thresholds), "profiles": {"x": {"start_eps": 1, "stages": []}}}"#.utf8))
        }
        #expect(throws: (any Error).self) {
            try ProfileFile.decode(Data(#"{\#(thresholds), "profiles": {"x": {"start_eps": -1, "stages": [{"seconds": 1, "eps": 1}]}}}"#.utf8))
        }
        #expect(throws: (any Error).self) {
            try ProfileFile.decode(Data(#"{"profiles": {}}"#.utf8))
        }
    }

    @Test("scaling multiplies durations, keeps rates, and floors each stage at 1 s")
    func scaling() throws {
        let spike = try #require(try ProfileFile.load(path: Self.file).profiles["spike"])
        let scaled = spike.scaled(by: 0.05)
        #expect(scaled.startEPS == spike.startEPS)
        #expect(scaled.stages.map(\.eps) == spike.stages.map(\.eps))
        #expect(scaled.stages.map(\.seconds) == [15, 1, 3, 1, 15])  // 0.5 s stages rise to 1 s
        #expect(spike.scaled(by: 0.0001).stages.map(\.seconds) == [1, 1, 1, 1, 1])
        #expect(spike.scaled(by: 2).duration == 2 * spike.duration)
        // Rounded to the millisecond, as k6 rounds it.
        #expect(Profile(startEPS: 1, stages: [.init(seconds: 10, eps: 1)]).scaled(by: 0.12345).stages[0].seconds == 1.235)
    }
}
