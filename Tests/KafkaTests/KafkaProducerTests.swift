import Foundation
import Kafka
import Logging
import Synchronization
import TestSupport
import Testing

/// The producer against librdkafka's mock cluster, read back by kcat; and librdkafka's own log
/// lines arriving through swift-log.
@Suite("Kafka producer", .serialized)
struct KafkaProducerTests {
    @Test("records arrive with their keys and headers; flush waits for every delivery", .timeLimit(.minutes(2)))
    func producesWithHeaders() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("letters", partitions: 2)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
        defer { producer.close(timeout: .seconds(1)) }
        for i in 0..<100 {
            try producer.send(
                KafkaOutgoingRecord(
                    topic: "letters", key: Array("key-\(i % 7)".utf8), value: Array("value-\(i)".utf8),
                    headers: [("why", "test \(i)"), ("n", String(i))]))
        }
        #expect(producer.flush(timeout: .seconds(30)))
        #expect(producer.delivered == 100)
        #expect(producer.failed == 0)
        #expect(producer.outstanding == 0)
        let lines = try Kcat.consume(topic: "letters", bootstrap: cluster.bootstrapServers)
        #expect(Set(lines) == Set((0..<100).map { "key-\($0 % 7)\tvalue-\($0)\twhy=test \($0),n=\($0)" }), "\(lines.prefix(3))")
    }

    @Test("a broker that never answers: librdkafka's complaint comes through swift-log, and the record is reported failed with its headers", .timeLimit(.minutes(2)))
    func unreachableBroker() throws {
        let port = try PostgresServer.freeLoopbackPort()  // nothing listens there
        let captured = CapturedLogs()
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:\(port)")
        configuration.deliveryTimeout = .seconds(2)
        configuration.logger = Logger(label: "kafka-test") { _ in captured.handler() }
        let failures = Mutex<[KafkaDeliveryFailure]>([])
        let producer = try KafkaProducer(configuration: configuration) { failure in failures.withLock { $0.append(failure) } }
        defer { producer.close(timeout: .zero) }
        try producer.send(KafkaOutgoingRecord(topic: "nowhere", key: nil, value: [1, 2, 3], headers: [("source-offset", "42")]))
        #expect(producer.flush(timeout: .seconds(30)), "a record timed out by message.timeout.ms is done with")
        #expect(producer.failed == 1)
        #expect(producer.delivered == 0)
        let failure = failures.withLock { $0.first }
        #expect(failure?.topic == "nowhere")
        #expect(failure?.headers["source-offset"] == "42")
        #expect(failure?.error.contains("TIMED_OUT") == true, "\(String(describing: failure))")
        let lines = captured.lines
        #expect(
            lines.contains { $0.level >= .warning && $0.message.hasPrefix("librdkafka: ") && $0.message.contains("127.0.0.1:\(port)") },
            "\(lines)")
    }
}

/// Keeps what a logger was given, for tests.
final class CapturedLogs: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let store = Mutex<[Line]>([])
    var lines: [Line] { store.withLock { $0 } }

    func handler() -> some LogHandler { Handler(logs: self) }

    private struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let line = Line(
                level: event.level, message: "\(event.message)",
                metadata: (event.metadata ?? [:]).mapValues { "\($0)" })
            logs.store.withLock { $0.append(line) }
        }
    }
}
