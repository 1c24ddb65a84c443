/// The `kafka_checkpoints` table: per (consumer group, topic, partition, buffer shard), the
/// offset below which that shard's events of the partition are applied (migration 003).
public enum KafkaCheckpoints {
    /// One position to record.
    public struct Position: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var shard: Int16
        public var nextOffset: Int64

        public init(topic: String, partition: Int32, shard: Int16, nextOffset: Int64) {
            self.topic = topic
            self.partition = partition
            self.shard = shard
            self.nextOffset = nextOffset
        }
    }

    public static let upsertStatementName = "kafka_checkpoints_upsert_v1"

    /// Records positions (never moving one backwards). Meant to run inside the transaction that
    /// writes the rows the positions account for.
    public static let upsertSQL = """
        INSERT INTO kafka_checkpoints AS c (consumer_group, topic, kafka_partition, shard, next_offset, updated_at)
        SELECT $1::text, t.topic, t.kafka_partition, t.shard, t.next_offset, NOW() AT TIME ZONE 'UTC'
        FROM unnest($2::text[], $3::int4[], $4::int4[], $5::int8[]) AS t(topic, kafka_partition, shard, next_offset)
        ON CONFLICT (consumer_group, topic, kafka_partition, shard) DO UPDATE
            SET next_offset = GREATEST(c.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at
        """

    public static let preparedStatements = [PreparedStatement(name: upsertStatementName, sql: upsertSQL)]

    public static func record(_ positions: [Position], group: String, on connection: PostgresConnection) throws {
        if positions.isEmpty { return }
        var topics = BinaryArray(.text, capacity: positions.count * 48)
        var partitions = BinaryArray(.int4, capacity: positions.count * 8)
        var shards = BinaryArray(.int4, capacity: positions.count * 8)
        var offsets = BinaryArray(.int8, capacity: positions.count * 12)
        for position in positions {
            topics.append(position.topic)
            partitions.append(int4: position.partition)
            shards.append(int4: Int32(position.shard))
            offsets.append(int8: position.nextOffset)
        }
        try connection.executePrepared(
            upsertStatementName,
            [.text(group), topics.parameter(), partitions.parameter(), shards.parameter(), offsets.parameter()])
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
            FROM kafka_checkpoints AS c
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
