import Foundation
import ProgressStore
import Storage
import TestSupport
import Testing

/// Fencing (migration 004) against a real PostgreSQL: the share locks order a member's last
/// checkpoint and the next owner's claim, and a stale epoch is refused.
@Suite("Kafka checkpoints and owner epochs")
struct KafkaCheckpointsTests {
    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("migrations").path

    @Test("a claim waits for the previous owner's checkpoint, reads it, and fences the previous owner")
    func claimWaitsThenFences() async throws {
        try await onThread {
            let server = PostgresServer.shared
            let database = try server.makeDatabase()
            let old = try PostgresConnection(settings: server.settings(database: database, applicationName: "old-owner"))
            defer { old.close() }
            _ = try Migrator(directory: Self.migrations, logger: testLogger).migrate(on: old)
            for statement in KafkaCheckpoints.preparedStatements { try old.prepare(statement.name, statement.sql) }

            let first = try KafkaCheckpoints.claim(group: "g", partitions: [("t", 0), ("t", 1)], owner: "old", on: old)
            #expect(first.epochs == [.init(topic: "t", partition: 0, epoch: 1), .init(topic: "t", partition: 1, epoch: 1)])
            #expect(first.positions.isEmpty)

            // The old owner's flush transaction: ownership checked (share locks held), checkpoint written.
            _ = try old.execute("BEGIN")
            try KafkaCheckpoints.verifyOwnership(first.epochs, group: "g", on: old)
            try KafkaCheckpoints.record(
                [
                    .init(topic: "t", partition: 0, shard: 0, shardModulus: 256, nextOffset: 50),
                    .init(topic: "t", partition: 0, shard: 1, shardModulus: 256, nextOffset: 40),
                ],
                group: "g", on: old)

            // The new owner's claim waits on those locks (seen from the server: it waits on a lock)...
            let claim = TestThread("new-owner") {
                let new = try PostgresConnection(settings: server.settings(database: database, applicationName: "new-owner"))
                defer { new.close() }
                return try KafkaCheckpoints.claim(group: "g", partitions: [("t", 0)], owner: "new", on: new)
            }
            try waitUntil("the new owner's claim to wait on a lock") {
                try server.psql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'new-owner' AND wait_event_type = 'Lock'",
                    database: database) == "1"
            }
            _ = try old.execute("COMMIT")

            // ...and, once the old commit is in, reads the checkpoint it wrote.
            let second = try claim.join()
            #expect(second.epochs == [.init(topic: "t", partition: 0, epoch: 2)])
            #expect(second.positions["t"]?[0] == [0: 50, 1: 40])

            // The old owner's next checkpoint is refused: partition 0 is not its any more.
            _ = try old.execute("BEGIN")
            let fenced = #expect(throws: KafkaFencedError.self) {
                try KafkaCheckpoints.verifyOwnership(first.epochs, group: "g", on: old)
            }
            _ = try old.execute("ROLLBACK")
            #expect(fenced?.lost.count == 1)
            #expect(fenced?.lost.first?.owned == .init(topic: "t", partition: 0, epoch: 1))
            #expect(fenced?.lost.first?.current == 2)
            #expect(fenced?.description == "fenced: t[0] epoch 1, now 2")
            #expect(try server.psql("SELECT owner FROM kafka_partition_owners WHERE kafka_partition = 0", database: database) == "new")
        }
    }

    @Test("a row per flush worker covers its shards; each shard reads the greatest row covering it, whatever FLUSH_WORKERS was")
    func rowsPerWorker() async throws {
        try await onThread {
            let server = PostgresServer.shared
            let database = try server.makeDatabase()
            let connection = try PostgresConnection(settings: server.settings(database: database))
            defer { connection.close() }
            _ = try Migrator(directory: Self.migrations, logger: testLogger).migrate(on: connection)
            for statement in KafkaCheckpoints.preparedStatements { try connection.prepare(statement.name, statement.sql) }
            try KafkaCheckpoints.record(
                [
                    // Two workers: worker 0 has the even shards, worker 1 the odd ones.
                    .init(topic: "t", partition: 0, shard: 0, shardModulus: 2, nextOffset: 100),
                    .init(topic: "t", partition: 0, shard: 1, shardModulus: 2, nextOffset: 70),
                    // Rows of an earlier layout (one per shard, as before migration 007).
                    .init(topic: "t", partition: 0, shard: 3, shardModulus: 256, nextOffset: 90),
                    .init(topic: "t", partition: 0, shard: 4, shardModulus: 256, nextOffset: 120),
                ], group: "g", on: connection)
            // A position never moves back.
            try KafkaCheckpoints.record([.init(topic: "t", partition: 0, shard: 1, shardModulus: 2, nextOffset: 60)], group: "g", on: connection)
            let positions = try #require(KafkaCheckpoints.load(group: "g", partitions: [("t", 0)], on: connection)["t"]?[0])
            #expect(positions.count == 256)
            #expect(positions[0] == 100 && positions[1] == 70 && positions[2] == 100 && positions[255] == 70)
            #expect(positions[3] == 90 && positions[4] == 120, "the greatest of the rows covering the shard")
            #expect(throws: PostgresError.self, "a shard outside its modulus is refused") {
                try KafkaCheckpoints.record([.init(topic: "t", partition: 1, shard: 2, shardModulus: 2, nextOffset: 1)], group: "g", on: connection)
            }
        }
    }
}
