import Foundation
import Logging
import Redis
import TestSupport
import Testing

@testable import EventHandler

/// `EventDeduplicator.admitBatchBlocking` (issue 21): a poll's claims in one pipelined Redis
/// round trip give the same answers, in order, as admitting the ids one by one, against a real
/// Redis shared by two "replicas".
@Suite("Batch admission against a real Redis", .serialized)
struct BatchAdmissionTests {
    static func deduplicator(_ redis: RedisServer, failMode: EventDeduplicator.FailMode = .open) throws -> (EventDeduplicator, RedisClient) {
        let client = RedisClient(.init(url: try RedisURL(parsing: redis.url)))
        _ = client.waitUntilSettled(timeout: .seconds(2))
        let deduplicator = EventDeduplicator(
            configuration: .init(namespace: "batch-ns", ttl: .seconds(60), lease: .seconds(30), failMode: failMode, localCapacity: 1_000),
            redis: client, logger: Logger(label: "test"))
        return (deduplicator, client)
    }

    static func coordinate(_ offset: Int64) -> EventDeduplicator.KafkaCoordinate {
        .init(topic: "t", partition: 0, offset: offset)
    }

    @Test("each id's answer: new ids claimed, ids held here duplicates, ids another replica claimed held there, committed ids duplicates")
    func answersInOrder() throws {
        let redis = try RedisServer()
        defer { redis.shutdown() }
        let (first, firstClient) = try Self.deduplicator(redis)
        let (second, secondClient) = try Self.deduplicator(redis)
        defer {
            first.stop(timeout: .seconds(1))
            second.stop(timeout: .seconds(1))
            firstClient.close()
            secondClient.close()
        }
        let answers = first.admitBatchBlocking((0..<3).map { ("e\($0)", Self.coordinate(Int64($0))) })
        #expect(answers == [.admitted(claimed: true), .admitted(claimed: true), .admitted(claimed: true)])
        for n in 0..<3 { #expect(try redis.cli("GET", "eh:dedup:batch-ns:e\(n)").hasPrefix("p")) }
        first.buffered("e0")
        _ = try redis.cli("SET", "eh:dedup:batch-ns:done", "c")

        // e0 is in this process's buffer (memory decides), e1 is claimed by `first`, "done" has
        // committed, "new" is free: one round trip for the three Redis decides.
        let mine = first.admitBatchBlocking([("e0", Self.coordinate(10)), ("new", Self.coordinate(11))])
        #expect(mine == [.duplicate(.memory), .admitted(claimed: true)])
        let theirs = second.admitBatchBlocking([("e1", Self.coordinate(12)), ("done", Self.coordinate(13)), ("fresh", Self.coordinate(14))])
        guard theirs.count == 3 else { return }
        if case .heldElsewhere(let holder) = theirs[0] {
            #expect(holder.kafka == Self.coordinate(1), "the claim names the record that made it")
        } else {
            Issue.record("e1 is claimed by another replica: \(theirs[0])")
        }
        #expect(theirs[1] == .duplicate(.redis))
        #expect(theirs[2] == .admitted(claimed: true))
        #expect(second.duplicates(.redis) == 1)
        #expect(first.duplicates(.memory) == 1)
    }

    @Test("Redis away: every id of the batch falls back as one would (open: admitted unclaimed; closed: unavailable)")
    func redisAway() throws {
        let redis = try RedisServer()
        let (open, openClient) = try Self.deduplicator(redis, failMode: .open)
        let (closed, closedClient) = try Self.deduplicator(redis, failMode: .closed)
        defer {
            open.stop(timeout: .seconds(1))
            closed.stop(timeout: .seconds(1))
            openClient.close()
            closedClient.close()
        }
        redis.shutdown()
        #expect(open.admitBatchBlocking([("a", Self.coordinate(0)), ("b", Self.coordinate(1))]) == [.admitted(claimed: false), .admitted(claimed: false)])
        #expect(closed.admitBatchBlocking([("a", Self.coordinate(0)), ("b", Self.coordinate(1))]) == [.unavailable, .unavailable])
        // Closed mode let go of the ids: a later try is not told "another delivery is admitting it".
        #expect(closed.admitBatchBlocking([("a", Self.coordinate(0))]) == [.unavailable])
    }
}
