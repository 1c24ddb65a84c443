import Foundation
import Kafka
import Synchronization
import TestSupport

/// A consumer delegate that records what it is told. `refuse` decides, per record, whether to
/// answer `.later` (asked again when it comes back); `room` whether to resume.
final class RecordingDelegate: KafkaConsumerDelegate {
    struct State {
        var records: [KafkaRecord] = []
        var assigned: [[TopicPartition]] = []
        var revoked: [[TopicPartition]] = []
        var refusals = 0
        var errors: [String] = []
    }

    let state = Mutex(State())
    let starts: [TopicPartition: Int64]
    let refuse: @Sendable (KafkaRecord, Int) -> Bool
    let room: @Sendable () -> Bool

    init(
        starts: [TopicPartition: Int64] = [:], refuse: @escaping @Sendable (KafkaRecord, Int) -> Bool = { _, _ in false },
        room: @escaping @Sendable () -> Bool = { true }
    ) {
        self.starts = starts
        self.refuse = refuse
        self.room = room
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        state.withLock { $0.assigned.append(partitions) }
        return starts
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        state.withLock { $0.revoked.append(partitions) }
    }

    func consume(_ record: KafkaRecord) -> KafkaConsumeDecision {
        state.withLock { state in
            if refuse(record, state.refusals) {
                state.refusals += 1
                return .later
            }
            state.records.append(record)
            return .taken
        }
    }

    func hasRoom() -> Bool { room() }

    func consumerError(_ message: String) {
        state.withLock { $0.errors.append(message) }
    }

    var records: [KafkaRecord] { state.withLock { $0.records } }

    /// Waits until `condition` holds for the state; throws with a summary on timeout.
    func wait(timeout: Duration = .seconds(60), until condition: (State) -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ condition($0) }) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let summary = state.withLock { "\($0.records.count) records, assigned \($0.assigned), revoked \($0.revoked), errors \($0.errors.suffix(5))" }
        throw TestFailure("condition not met within \(timeout): \(summary)")
    }
}
