import Redis
import Testing

@testable import EventHandler

/// The deduplication protocol's decisions and Redis values, in process: no Redis, no database.
/// (DeduplicationTests and the fault suite run the same protocol against real servers.)
@Suite("Deduplication policy and Redis values, without a server")
struct DedupPolicyTests {
    typealias Holder = DedupPolicy.Holder
    typealias Coordinate = DedupPolicy.KafkaCoordinate

    static func bulk(_ text: String) -> RedisReply { .string(Array(text.utf8)) }

    @Test("what a claim finds decides: nothing is ours, c a duplicate, k a flush-key lookup, p someone else's, no answer the fail mode")
    func claimReplies() {
        let cases: [(RedisReply?, DedupPolicy.AfterClaim)] = [
            (.null, .admit),
            (Self.bulk("c"), .settled(.duplicate(.redis))),
            (Self.bulk("k\tother/1/ab\t42"), .askFlushKey(.init(value: "k\tother/1/ab\t42", instance: "other/1/ab", flush: 42))),
            (Self.bulk("p\tother/1/ab"), .settled(.heldElsewhere(Holder(instance: "other/1/ab", kafka: nil)))),
            (
                Self.bulk("p\tother/1/ab\tgame.stat\t3\t1200"),
                .settled(.heldElsewhere(Holder(instance: "other/1/ab", kafka: Coordinate(topic: "game.stat", partition: 3, offset: 1200))))
            ),
            (nil, .fallBack),
            (.error("LOADING Redis is loading the dataset in memory"), .fallBack),
            (.status("OK"), .fallBack),
        ]
        for (reply, expected) in cases {
            #expect(DedupPolicy.afterClaim(RedisDedupStore.claimReply(reply)) == expected, "reply \(String(describing: reply))")
        }
    }

    @Test("a malformed value is never taken for a commit: a k without a numeric flush, or a p with a bad offset, is someone's claim")
    func malformedValues() {
        #expect(RedisDedupStore.committingMark(from: "k\tother\tnot-a-number") == nil)
        #expect(RedisDedupStore.committingMark(from: "k\tother") == nil)
        #expect(RedisDedupStore.claimReply(Self.bulk("k\tother\tx")) == .claimed(Holder(instance: "other", kafka: nil)))
        #expect(RedisDedupStore.holder(from: "p\tother\ttopic\t3\tx") == Holder(instance: "other", kafka: nil))
        #expect(RedisDedupStore.holder(from: "p") == Holder(instance: "", kafka: nil))
        #expect(!RedisDedupStore.saysCommitted(nil))
        #expect(!RedisDedupStore.saysCommitted(.null))
        #expect(!RedisDedupStore.saysCommitted(Self.bulk("k")))
        #expect(RedisDedupStore.saysCommitted(Self.bulk("c")))
    }

    @Test("Redis unreachable: open admits unclaimed, closed pushes back")
    func failModes() {
        #expect(DedupPolicy.fallback(.open) == .admitted(claimed: false))
        #expect(DedupPolicy.fallback(.closed) == .unavailable)
    }

    @Test(
        "a mark without its flush key: committed is a duplicate; unknown commit, a live or unknown holder, or our own flush wait; a dead holder's uncommitted flush is taken over"
    )
    func markResolution() {
        typealias R = DedupPolicy.MarkResolution
        let table: [(committed: Bool?, alive: Bool?, ours: Bool, expected: R)] = [
            (true, nil, false, .duplicate),
            (true, true, false, .duplicate),
            (true, nil, true, .duplicate),
            // The commit's outcome cannot be read (the database is away): never guess.
            (nil, false, false, .later),
            (nil, nil, true, .later),
            (false, true, false, .later),
            (false, nil, false, .later),  // Redis could not say whether the holder lives
            (false, false, true, .later),  // our own flush failed or is committing: its retry commits it
            (false, false, false, .takeOver),
        ]
        for row in table {
            #expect(
                DedupPolicy.resolveMark(flushCommitted: row.committed, holderAlive: row.alive, holderIsThisProcess: row.ours) == row.expected,
                "committed \(String(describing: row.committed)), alive \(String(describing: row.alive)), ours \(row.ours)")
        }
    }

    @Test("a Kafka claim of the same partition: a committed position is a duplicate, else the fenced holder's claim is taken over; any other stands")
    func kafkaClaims() {
        let record = Coordinate(topic: "game.stat", partition: 3, offset: 2_000)
        let committedUpTo: Int64 = 1_500
        func resolve(_ holder: Holder) -> DedupPolicy.KafkaClaimResolution {
            DedupPolicy.resolveKafkaClaim(heldBy: holder, record: record) { $0 < committedUpTo }
        }
        #expect(resolve(Holder(instance: "old", kafka: Coordinate(topic: "game.stat", partition: 3, offset: 1_200))) == .duplicate)
        #expect(resolve(Holder(instance: "old", kafka: Coordinate(topic: "game.stat", partition: 3, offset: 1_800))) == .takeOver)
        #expect(resolve(Holder(instance: "old", kafka: Coordinate(topic: "game.stat", partition: 4, offset: 1_200))) == .stands)
        #expect(resolve(Holder(instance: "old", kafka: Coordinate(topic: "game.login", partition: 3, offset: 1_200))) == .stands)
        #expect(resolve(Holder(instance: "grpc-replica", kafka: nil)) == .stands, "a gRPC delivery's claim")
    }
}
