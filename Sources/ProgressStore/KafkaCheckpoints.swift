import Storage

/// The `kafka_checkpoints` table: per (consumer group, topic, partition, set of buffer shards),
/// the offset below which those shards' events of the partition are applied (migrations 003 and
/// 007: a set is the shards s with s % `shardModulus` = `shard`, a flush worker's shards; read
/// per shard through the view `kafka_shard_positions`); and
/// `kafka_partition_owners`, the owner epoch of each partition that fences a member which lost
/// a partition from committing it (migration 004).
public enum KafkaCheckpoints {
    /// A partition's owner epoch, as claimed at assignment.
    public struct Ownership: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var epoch: Int64

        public init(topic: String, partition: Int32, epoch: Int64) {
            self.topic = topic
            self.partition = partition
            self.epoch = epoch
        }
    }

    /// What a member finds when it is assigned partitions.
    public struct Claim: Sendable {
        /// The new owner epoch of each partition.
        public var epochs: [Ownership]
        /// Stored positions: topic → partition → shard → next offset.
        public var positions: [String: [Int32: [Int16: Int64]]]
    }

    /// One position to record, for the shards s with s % `shardModulus` = `shard` (a flush
    /// worker's shards: its index and the number of workers).
    public struct Position: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var shard: Int16
        public var shardModulus: Int16
        public var nextOffset: Int64

        public init(topic: String, partition: Int32, shard: Int16, shardModulus: Int16, nextOffset: Int64) {
            self.topic = topic
            self.partition = partition
            self.shard = shard
            self.shardModulus = shardModulus
            self.nextOffset = nextOffset
        }
    }

    public static let upsertStatementName = "kafka_checkpoints_upsert_v2"

    /// Records positions (never moving one backwards). Meant to run inside the transaction that
    /// writes the rows the positions account for.
    public static let upsertSQL = """
        INSERT INTO kafka_checkpoints AS c (consumer_group, topic, kafka_partition, shard_modulus, shard, next_offset, updated_at)
        SELECT $1::text, t.topic, t.kafka_partition, t.shard_modulus, t.shard, t.next_offset, NOW() AT TIME ZONE 'UTC'
        FROM unnest($2::text[], $3::int4[], $4::int4[], $5::int4[], $6::int8[]) AS t(topic, kafka_partition, shard_modulus, shard, next_offset)
        ON CONFLICT (consumer_group, topic, kafka_partition, shard_modulus, shard) DO UPDATE
            SET next_offset = GREATEST(c.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at
        """

    public static let verifyStatementName = "kafka_owners_verify_v1"

    /// The current epochs of the given partitions, share-locked until the end of the
    /// transaction: an assignee's claim (an UPDATE of the same rows) waits for the commit.
    public static let verifySQL = """
        SELECT o.topic, o.kafka_partition, o.epoch
        FROM kafka_partition_owners AS o
        JOIN unnest($2::text[], $3::int4[]) AS t(topic, kafka_partition)
          ON o.topic = t.topic AND o.kafka_partition = t.kafka_partition
        WHERE o.consumer_group = $1
        ORDER BY o.topic, o.kafka_partition
        FOR SHARE OF o
        """

    public static let preparedStatements = [
        PreparedStatement(name: upsertStatementName, sql: upsertSQL),
        PreparedStatement(name: verifyStatementName, sql: verifySQL),
    ]

    /// Claims `partitions` for a new owner (each epoch grows by one) and reads their stored
    /// positions, in one transaction. The claim waits for any flush of the previous owner that
    /// holds the partitions' share locks, so the positions read include what it committed.
    public static func claim(
        group: String, partitions: [(topic: String, partition: Int32)], owner: String, on connection: PostgresConnection
    ) throws -> Claim {
        if partitions.isEmpty { return Claim(epochs: [], positions: [:]) }
        let sorted = partitions.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        var topics = BinaryArray(.text, capacity: sorted.count * 48)
        var numbers = BinaryArray(.int4, capacity: sorted.count * 8)
        for p in sorted {
            topics.append(p.topic)
            numbers.append(int4: p.partition)
        }
        _ = try connection.execute("BEGIN")
        do {
            let claimed = try connection.execute(
                """
                INSERT INTO kafka_partition_owners AS o (consumer_group, topic, kafka_partition, epoch, owner, claimed_at)
                SELECT $1, t.topic, t.kafka_partition, 1, $4, NOW() AT TIME ZONE 'UTC'
                FROM unnest($2::text[], $3::int4[]) AS t(topic, kafka_partition)
                ORDER BY t.topic, t.kafka_partition
                ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
                    SET epoch = o.epoch + 1, owner = EXCLUDED.owner, claimed_at = EXCLUDED.claimed_at
                RETURNING o.topic, o.kafka_partition, o.epoch
                """,
                [.text(group), topics.parameter(), numbers.parameter(), .text(owner)])
            var epochs: [Ownership] = []
            for row in 0..<claimed.rows.count {
                guard let topic = claimed[row, 0], let partition = claimed[row, 1].flatMap({ Int32($0) }),
                    let epoch = claimed[row, 2].flatMap({ Int64($0) })
                else { continue }
                epochs.append(Ownership(topic: topic, partition: partition, epoch: epoch))
            }
            let positions = try load(group: group, partitions: sorted, on: connection)
            _ = try connection.execute("COMMIT")
            return Claim(epochs: epochs, positions: positions)
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Inside a flush transaction, before its checkpoint: checks that this member still owns
    /// every partition with the epoch it claimed, and holds their share locks until the commit.
    /// Throws `KafkaFencedError` otherwise (roll the transaction back: it must not commit).
    public static func verifyOwnership(_ owned: [Ownership], group: String, on connection: PostgresConnection) throws {
        if owned.isEmpty { return }
        var topics = BinaryArray(.text, capacity: owned.count * 48)
        var numbers = BinaryArray(.int4, capacity: owned.count * 8)
        for o in owned {
            topics.append(o.topic)
            numbers.append(int4: o.partition)
        }
        let result = try connection.executePrepared(
            verifyStatementName, [.text(group), topics.parameter(), numbers.parameter()])
        var current: [String: [Int32: Int64]] = [:]
        for row in 0..<result.rows.count {
            guard let topic = result[row, 0], let partition = result[row, 1].flatMap({ Int32($0) }),
                let epoch = result[row, 2].flatMap({ Int64($0) })
            else { continue }
            current[topic, default: [:]][partition] = epoch
        }
        let lost = owned.filter { current[$0.topic]?[$0.partition] != $0.epoch }
        if !lost.isEmpty {
            throw KafkaFencedError(
                lost: lost.map { o in (o, current[o.topic]?[o.partition]) })
        }
    }

    public static func record(_ positions: [Position], group: String, on connection: PostgresConnection) throws {
        if positions.isEmpty { return }
        var topics = BinaryArray(.text, capacity: positions.count * 48)
        var partitions = BinaryArray(.int4, capacity: positions.count * 8)
        var moduli = BinaryArray(.int4, capacity: positions.count * 8)
        var shards = BinaryArray(.int4, capacity: positions.count * 8)
        var offsets = BinaryArray(.int8, capacity: positions.count * 12)
        for position in positions {
            topics.append(position.topic)
            partitions.append(int4: position.partition)
            moduli.append(int4: Int32(position.shardModulus))
            shards.append(int4: Int32(position.shard))
            offsets.append(int8: position.nextOffset)
        }
        try connection.executePrepared(
            upsertStatementName,
            [.text(group), topics.parameter(), partitions.parameter(), moduli.parameter(), shards.parameter(), offsets.parameter()])
    }

    /// Every stored position of `group` on these partitions: (topic, partition) → shard → offset.
    public static func load(
        group: String, partitions: [(topic: String, partition: Int32)], on connection: PostgresConnection
    ) throws -> [String: [Int32: [Int16: Int64]]] {
        if partitions.isEmpty { return [:] }
        var topics = BinaryArray(.text, capacity: partitions.count * 48)
        var numbers = BinaryArray(.int4, capacity: partitions.count * 8)
        for p in partitions {
            topics.append(p.topic)
            numbers.append(int4: p.partition)
        }
        let result = try connection.execute(
            """
            SELECT c.topic, c.kafka_partition, c.shard, c.next_offset
            FROM kafka_shard_positions AS c
            JOIN unnest($2::text[], $3::int4[]) AS t(topic, kafka_partition)
              ON c.topic = t.topic AND c.kafka_partition = t.kafka_partition
            WHERE c.consumer_group = $1
            """,
            [.text(group), topics.parameter(), numbers.parameter()])
        var positions: [String: [Int32: [Int16: Int64]]] = [:]
        for row in 0..<result.rows.count {
            guard let topic = result[row, 0], let partition = result[row, 1].flatMap({ Int32($0) }),
                let shard = result[row, 2].flatMap({ Int16($0) }), let offset = result[row, 3].flatMap({ Int64($0) })
            else { continue }
            positions[topic, default: [:]][partition, default: [:]][shard] = offset
        }
        return positions
    }
}

/// A flush refused because another member has claimed a partition since this one did.
public struct KafkaFencedError: Error, CustomStringConvertible, Sendable {
    /// The partitions lost: the epoch this member holds, and the one stored now (nil: no row).
    public let lost: [(owned: KafkaCheckpoints.Ownership, current: Int64?)]

    public var description: String {
        "fenced: " + lost.map { "\($0.owned.topic)[\($0.owned.partition)] epoch \($0.owned.epoch), now \($0.current.map(String.init) ?? "unowned")" }
            .joined(separator: ", ")
    }
}
