import Foundation
import Logging
import Redis
import TestSupport
import Synchronization
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

    @Test("a flush's ids: marked before its COMMIT, one flush key after it; a repeat finding the mark and the key is a duplicate without asking PostgreSQL, on every path")
    func flushKeyRecordsTheCommit() throws {
        let redis = try RedisServer()
        defer { redis.shutdown() }
        let lookups = Mutex(0)
        let client = RedisClient(.init(url: try RedisURL(parsing: redis.url)))
        _ = client.waitUntilSettled(timeout: .seconds(2))
        let holder = EventDeduplicator(
            configuration: .init(namespace: "batch-ns", ttl: .seconds(60), lease: .seconds(30), failMode: .open, localCapacity: 1_000),
            redis: client, logger: Logger(label: "test"))
        let other = EventDeduplicator(
            configuration: .init(namespace: "batch-ns", ttl: .seconds(60), lease: .seconds(30), failMode: .open, localCapacity: 1_000),
            redis: client, isFlushCommitted: { _ in lookups.withLock { $0 += 1 }; return false }, logger: Logger(label: "test"))
        defer {
            holder.stop(timeout: .seconds(1))
            other.stop(timeout: .seconds(1))
            client.close()
        }
        let ids = (0..<4).map { "f\($0)" }
        #expect(holder.admitBatchBlocking(ids.map { ($0, Self.coordinate(0)) }).allSatisfy { $0 == .admitted(claimed: true) })
        for id in ids { holder.buffered(id) }
        #expect(holder.markCommitting(ids, flush: 77))
        #expect(try redis.cli("GET", "eh:dedup:batch-ns:f0") == "k\t\(holder.instance)\t77")
        holder.committed(ids, flush: 77, marked: true)
        try waitUntil("the flush key") { try redis.cli("GET", "eh:flush:batch-ns:\(holder.instance):77") == "c" }
        try waitUntil("the ids recorded") { holder.held.recorded == 4 && holder.held.committed == 0 }
        #expect(try redis.cli("GET", "eh:dedup:batch-ns:f1").hasPrefix("k\t"), "no `c` per id")

        // Another replica's repeats: in a batch, one by one, and without blocking.
        #expect(other.admitBatchBlocking([("f0", Self.coordinate(5)), ("f1", Self.coordinate(6))]) == [.duplicate(.redis), .duplicate(.redis)])
        #expect(other.admitBlocking("f2") == .duplicate(.redis))
        let answered = DispatchSemaphore(value: 0)
        let answer = Mutex<EventDeduplicator.Admission?>(nil)
        other.admit("f3") { admission in
            answer.withLock { $0 = admission }
            answered.signal()
        }
        #expect(answered.wait(timeout: .now() + 5) == .success)
        #expect(answer.withLock { $0 } == .duplicate(.redis))
        #expect(lookups.withLock { $0 } == 0, "the flush key answered: no commit record lookup")
        #expect(other.duplicates(.redis) == 4)

        // A mark whose flush key is missing (its process died between COMMIT and the key): the
        // commit record decides.
        _ = try redis.cli("DEL", "eh:flush:batch-ns:\(holder.instance):77")
        _ = try redis.cli("SET", "eh:dedup:batch-ns:orphan", "k\tghost/1/x\t78")
        #expect(other.admitBlocking("orphan") != .duplicate(.redis))
        #expect(lookups.withLock { $0 } == 1)
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
