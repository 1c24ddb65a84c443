import Buffer
import Kafka
import Logging
import Storage
import Synchronization
import Testing

@testable import EventHandler

/// The collector in process, with no server behind its sources (the pool is never opened).
@Suite("Metrics collector")
struct MetricsCollectorTests {
    @Test("kafka_consumer_lag has a series for each partition held now, and none for one given up")
    func lagOfHeldPartitionsOnly() {
        let held = Mutex<[TopicPartition: Int64]>([
            TopicPartition(topic: "t", partition: 0): 5, TopicPartition(topic: "t", partition: 1): 7,
        ])
        let logger = Logger(label: "metrics-collector-test") { _ in SwiftLogNoOpLogHandler() }
        let sources = MetricsCollector.Sources(
            buffer: EventBuffer(limit: 10),
            pool: ConnectionPool(
                settings: ConnectionSettings(database: "unused"), limits: PoolLimits(maxOpen: 1, maxIdle: 0), statements: [],
                logger: logger),
            flush: FlushStats(), ingest: IngestCounters(), health: HealthState(),
            kafka: MetricsCollector.KafkaSource(lag: { held.withLock { $0 } }, skipped: { _ in 0 }, deadLetters: nil))
        let collector = MetricsCollector(metrics: ServiceMetrics(), sources: sources)
        let lagLines = { () -> [String] in
            String(decoding: collector.exposition(), as: UTF8.self).split(separator: "\n")
                .filter { $0.hasPrefix("kafka_consumer_lag{") }.map(String.init).sorted()
        }
        #expect(lagLines() == [#"kafka_consumer_lag{topic="t",partition="0"} 5.0"#, #"kafka_consumer_lag{topic="t",partition="1"} 7.0"#])
        // Partition 1 goes to another member: its series goes too (a 0 would read as drained).
        held.withLock { $0 = [TopicPartition(topic: "t", partition: 0): 0] }
        #expect(lagLines() == [#"kafka_consumer_lag{topic="t",partition="0"} 0.0"#])
        // And comes back: a series again.
        held.withLock { $0[TopicPartition(topic: "t", partition: 1)] = 3 }
        #expect(lagLines() == [#"kafka_consumer_lag{topic="t",partition="0"} 0.0"#, #"kafka_consumer_lag{topic="t",partition="1"} 3.0"#])
    }
}
