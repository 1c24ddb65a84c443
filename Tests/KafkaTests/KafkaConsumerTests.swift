import Foundation
import Kafka
import TestSupport
import Synchronization
import Testing

/// The consumer against librdkafka's mock cluster (real Kafka protocol on loopback), fed by kcat.
@Suite("Kafka consumer", .serialized)
struct KafkaConsumerTests {
    /// `count` records over `users` keys; each value is "user:sequence", so order per key shows.
    static func workload(users: Int, count: Int) -> [String] {
        (0..<count).map { i in "user-\(i % users)\tuser-\(i % users):\(i / users)" }
    }

    static func configuration(_ cluster: MockKafkaCluster, group: String, topics: [String]) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group, topics: topics)
        configuration.sessionTimeout = .seconds(6)
        return configuration
    }

    /// Every record once, and each key's records in the order they were produced.
    static func checkExactlyOnceInOrder(_ records: [KafkaRecord], expected lines: [String]) {
        let values = records.map { String(decoding: $0.value, as: UTF8.self) }
        #expect(values.count == lines.count, "\(values.count) records for \(lines.count) produced")
        #expect(Set(values).count == values.count, "a record was delivered twice")
        #expect(Set(values) == Set(lines.map { String($0.split(separator: "\t")[1]) }))
        var lastSequence: [Substring: Int] = [:]
        var partitionOfKey: [Substring: Int32] = [:]
        for (record, value) in zip(records, values) {
            let parts = value.split(separator: ":")
            let sequence = Int(parts[1])!
            #expect(sequence > lastSequence[parts[0], default: -1], "\(parts[0]) out of order at \(sequence)")
            lastSequence[parts[0]] = sequence
            #expect(partitionOfKey[parts[0], default: record.partition] == record.partition, "a key spans partitions")
            partitionOfKey[parts[0]] = record.partition
        }
    }

    @Test("records produced by kcat arrive once each, in order per key; lag drops to zero", .timeLimit(.minutes(2)))
    func consumesEverything() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("events", partitions: 4)
        let lines = Self.workload(users: 50, count: 2_000)
        try Kcat.produce(lines, topic: "events", bootstrap: cluster.bootstrapServers)

        let delegate = RecordingDelegate()
        let consumer = try KafkaConsumer(configuration: Self.configuration(cluster, group: "g1", topics: ["events"]), delegate: delegate)
        try consumer.start()
        try delegate.wait { $0.records.count >= lines.count }
        Self.checkExactlyOnceInOrder(delegate.records, expected: lines)
        #expect(Set(delegate.records.map(\.partition)).count == 4)
        #expect(delegate.records.allSatisfy { $0.key.map { String(decoding: $0, as: UTF8.self) } == String(decoding: $0.value, as: UTF8.self).split(separator: ":").first.map(String.init) })

        // Lag is refreshed every second: once everything is consumed it reads zero everywhere.
        let deadline = ContinuousClock.now + .seconds(10)
        while (consumer.lag.count != 4 || consumer.lag.values.contains { $0 != 0 }) && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(consumer.lag.count == 4 && consumer.lag.values.allSatisfy { $0 == 0 }, "lag \(consumer.lag)")

        consumer.stop()
        #expect(consumer.waitUntilStopped(timeout: .seconds(20)))
        // Leaving the group revokes what it held, through the delegate.
        #expect(Set(delegate.state.withLock { $0.revoked.last ?? [] }.map(\.partition)) == [0, 1, 2, 3])
    }

    @Test("back-pressure: a record answered 'later' comes back first once there is room; nothing lost, nothing twice", .timeLimit(.minutes(2)))
    func laterMeansAgain() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("events", partitions: 3)
        let lines = Self.workload(users: 30, count: 1_500)
        try Kcat.produce(lines, topic: "events", bootstrap: cluster.bootstrapServers)

        // Every 100th record taken is refused once; room comes back 50 ms after each refusal.
        let refusedAt = Mutex<ContinuousClock.Instant?>(nil)
        let refusedOffsets = Mutex<Set<String>>([])
        let delegate = RecordingDelegate(
            refuse: { record, _ in
                let key = "\(record.partition)/\(record.offset)"
                guard record.offset % 100 == 7 else { return false }
                return refusedOffsets.withLock { seen in
                    guard !seen.contains(key) else { return false }
                    seen.insert(key)
                    refusedAt.withLock { $0 = .now }
                    return true
                }
            },
            room: { refusedAt.withLock { $0.map { ContinuousClock.now - $0 > .milliseconds(50) } ?? true } })
        let consumer = try KafkaConsumer(configuration: Self.configuration(cluster, group: "g2", topics: ["events"]), delegate: delegate)
        try consumer.start()
        try delegate.wait { $0.records.count >= lines.count }
        // A little longer: nothing more (no duplicate) may arrive.
        Thread.sleep(forTimeInterval: 0.5)
        let refusals = delegate.state.withLock { $0.refusals }
        #expect(refusals >= 10, "the test refused \(refusals) records")
        Self.checkExactlyOnceInOrder(delegate.records, expected: lines)
        consumer.stop()
        #expect(consumer.waitUntilStopped(timeout: .seconds(20)))
    }

    @Test("each partition starts where the delegate says; a content-type header is read", .timeLimit(.minutes(2)))
    func startsWhereTold() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("events", partitions: 2)
        let lines = Self.workload(users: 10, count: 400)
        try Kcat.produce(lines, topic: "events", bootstrap: cluster.bootstrapServers, headers: ["content-type=application/x-protobuf"])

        let starts = [TopicPartition(topic: "events", partition: 0): Int64(50)]
        let delegate = RecordingDelegate(starts: starts)
        let consumer = try KafkaConsumer(configuration: Self.configuration(cluster, group: "g3", topics: ["events"]), delegate: delegate)
        try consumer.start()
        // Partition 1 has no stored position: it starts at its beginning.
        try delegate.wait { state in
            let p0 = state.records.filter { $0.partition == 0 }
            return !p0.isEmpty && state.records.count == lines.count - 50
        }
        let records = delegate.records
        #expect(records.filter { $0.partition == 0 }.map(\.offset).min() == 50)
        #expect(records.filter { $0.partition == 1 }.map(\.offset).min() == 0)
        #expect(records.allSatisfy { $0.contentType == "application/x-protobuf" })
        consumer.stop()
        #expect(consumer.waitUntilStopped(timeout: .seconds(20)))
    }

    @Test("two members of a group share the partitions; when one leaves, the other takes them all", .timeLimit(.minutes(3)))
    func groupSharesAndHandsOver() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("events", partitions: 4)
        let a = RecordingDelegate(), b = RecordingDelegate()
        let first = try KafkaConsumer(configuration: Self.configuration(cluster, group: "g4", topics: ["events"]), delegate: a)
        let second = try KafkaConsumer(configuration: Self.configuration(cluster, group: "g4", topics: ["events"]), delegate: b)
        try first.start()
        try second.start()
        let deadline = ContinuousClock.now + .seconds(60)
        while !(first.assignment.count == 2 && second.assignment.count == 2) && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(Set(first.assignment).isDisjoint(with: second.assignment))
        #expect(Set(first.assignment + second.assignment).map(\.partition).sorted() == [0, 1, 2, 3])

        second.stop()
        #expect(second.waitUntilStopped(timeout: .seconds(30)))
        #expect(b.state.withLock { $0.revoked.last?.count } == 2)
        while first.assignment.count != 4 && ContinuousClock.now < deadline + .seconds(30) {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(first.assignment.count == 4)
        first.stop()
        #expect(first.waitUntilStopped(timeout: .seconds(30)))
    }
}
