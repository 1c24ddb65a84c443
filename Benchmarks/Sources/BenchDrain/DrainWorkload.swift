import BenchSupport
import Foundation
import GameEvents
import Kafka
import SwiftProtobuf
import TestSupport

/// The events of one drain scenario, as Kafka records, and the table they leave behind.
///
/// The catalog (`DrainWorkload.catalogJSON`) is the benchmark table's: goal `goal-j` in
/// `challenge-(j / 50)`, but each goal with a statistic code of its own (`s-j`), so one stat
/// event moves exactly one row. Progress is absolute: the k-th event of a (user, goal) carries
/// `latestValue` k, so a row's final progress is the number of its events, and the table's sum
/// shows that every event landed once.
struct DrainWorkload {
    enum Shape: String {
        /// 10,000 users, 5 goals each: 50,000 keys, about 20 events per key (heavy merging).
        case merging
        /// 20,000 users x their 50 goals: 1,000,000 keys, each once (no merging).
        case distinct
    }

    let shape: Shape
    /// (user, goal index) per event, in production order.
    let events: [(user: Int32, goal: Int32)]
    /// Distinct (user, goal) keys among the events.
    var keyCount: Int { Set(events.map(Self.key)).count }

    /// One integer per (user, goal).
    static func key(_ event: (user: Int32, goal: Int32)) -> Int64 { Int64(event.user) << 16 | Int64(event.goal) }

    init(shape: Shape, count: Int, seed: UInt64) {
        self.shape = shape
        var generator = SeededGenerator(seed: seed)
        switch shape {
        case .merging:
            events = (0..<count).map { _ in
                let user = Int32(generator.next() % 10_000)
                let goal = BenchCatalog.goals(ofUser: Int(user)).lowerBound + Int32(generator.next() % 5)
                return (user, goal)
            }
        case .distinct:
            var keys: [(user: Int32, goal: Int32)] = []
            keys.reserveCapacity(1_000_000)
            for user in 0..<20_000 {
                for goal in BenchCatalog.goals(ofUser: user) { keys.append((Int32(user), goal)) }
            }
            var shuffled = keys
            shuffled.shuffle(using: &generator)
            events = Array(shuffled.prefix(count))
        }
    }

    /// The records: key the user id, value the platform's StatItemUpdated (binary protobuf with
    /// its content-type header, or proto3 JSON).
    func records(topic: String, json: Bool) throws -> [KafkaOutgoingRecord] {
        var seen: [Int64: Int] = [:]
        seen.reserveCapacity(events.count)
        var records: [KafkaOutgoingRecord] = []
        records.reserveCapacity(events.count)
        for (i, event) in events.enumerated() {
            let key = Self.key(event)
            let k = (seen[key] ?? 0) + 1
            seen[key] = k
            let userID = BenchCatalog.userID(Int(event.user))
            var message = Accelbyte_Social_Statistic_V1_StatItemUpdated()
            message.id = String(format: "%08x-0000-4000-8000-%012x", i >> 32, i & 0xffff_ffff)
            message.namespace = "bench"
            message.userID = userID
            message.payload.statCode = "s-\(event.goal)"
            message.payload.userID = userID
            message.payload.latestValue = Double(k)
            message.payload.inc = 1
            let value: [UInt8] = json ? try message.jsonUTF8Bytes() : try message.serializedBytes()
            records.append(
                KafkaOutgoingRecord(
                    topic: topic, key: Array(userID.utf8), value: value,
                    headers: json ? [] : [("content-type", "application/x-protobuf")]))
        }
        return records
    }

    /// Sum of progress over the table once these events have landed on `before` (row index
    /// user * 50 + goal % 50 → progress).
    func apply(to table: inout [Int32]) {
        var counts: [Int64: Int32] = [:]
        for event in events {
            counts[Self.key(event), default: 0] += 1
        }
        for (key, count) in counts {
            table[Int(key >> 16) * 50 + Int(key & 0xffff) % 50] = count
        }
    }

    /// The benchmark table's catalog with one statistic code per goal.
    static var catalogJSON: String { BenchCatalog.json(statCode: { "s-\($0)" }) }
}
