import Kafka
import Logging
import Synchronization

/// The dead-letter topic (`KAFKA_DLQ_TOPIC`): every record the service cannot apply (not
/// decodable, an unknown topic, an invalid event) is copied there as it was, key and value
/// untouched, with headers that say why and where it came from:
/// `dead-letter-reason`, `source-topic`, `source-partition`, `source-offset` (and its original
/// `content-type`).
///
/// Nothing is lost on the way: a record is handed over before its partition's position moves
/// past it, and `awaitDelivery` holds every checkpoint until what was handed over is delivered.
/// While the topic cannot take records, checkpoints wait, the buffer fills and consumption
/// pauses, as in a database outage. librdkafka retries for ever (`message.timeout.ms=0`); a
/// record refused for good (too large for the topic, say) is logged with its source
/// coordinates, so it can still be read from its partition, and counted.
final class KafkaDeadLetters: Sendable {
    let topic: String
    private let producer: KafkaProducer
    private let logger: Logger
    private let refused = Atomic<Int>(0)
    private let handedOver = Atomic<Int>(0)

    struct Backlog: Error, CustomStringConvertible {
        let outstanding: Int
        let topic: String
        var description: String { "\(outstanding) dead letters not yet delivered to \(topic)" }
    }

    /// The producer's configuration: its own client id, retries for ever (`message.timeout.ms=0`),
    /// then `properties` (the Kafka security settings and `KAFKA_PROPERTY_*`, as the consumer's).
    static func configuration(brokers: String, properties: [String: String], logger: Logger) -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrapServers: brokers)
        configuration.clientID = "event-handler-dlq"
        configuration.deliveryTimeout = .zero
        configuration.logger = logger
        configuration.properties = properties
        return configuration
    }

    init(topic: String, configuration: KafkaProducerConfiguration, logger: Logger) throws {
        self.topic = topic
        self.logger = logger
        producer = try KafkaProducer(configuration: configuration) { failure in
            logger.error(
                "dead letter refused by the broker; the record stays readable at its source",
                metadata: [
                    "error": "\(failure.error)", "topic": "\(failure.topic)",
                    "source": "\(failure.headers["source-topic"] ?? "?")[\(failure.headers["source-partition"] ?? "?")]@\(failure.headers["source-offset"] ?? "?")",
                ])
        }
    }

    /// Records handed to the topic, and records the broker refused for good (or that could not
    /// even be queued).
    var sent: Int { handedOver.load(ordering: .relaxed) }
    var failed: Int { producer.failed + refused.load(ordering: .relaxed) }

    /// Hands `record` over (queued: librdkafka delivers it). On the consumer's thread, before the
    /// record's position moves. Blocks while librdkafka's queue is full.
    func send(_ record: KafkaRecord, reason: String) {
        var headers: [(name: String, value: String)] = [
            ("dead-letter-reason", reason), ("source-topic", record.topic),
            ("source-partition", String(record.partition)), ("source-offset", String(record.offset)),
        ]
        if let contentType = record.contentType { headers.append(("content-type", contentType)) }
        do {
            try producer.send(
                KafkaOutgoingRecord(topic: topic, key: record.key, value: record.value, headers: headers),
                timeout: .seconds(3600))
            handedOver.add(1, ordering: .relaxed)
        } catch {
            refused.add(1, ordering: .relaxed)
            logger.error(
                "dead letter could not be queued; the record stays readable at its source",
                metadata: ["error": "\(error)", "source": "\(record.topic)[\(record.partition)]@\(record.offset)"])
        }
    }

    /// Returns once everything handed over is delivered (or refused for good). Throws after
    /// `timeout`: the caller's checkpoint must wait.
    func awaitDelivery(timeout: Duration = .seconds(2)) throws {
        if producer.outstanding == 0 { return }
        guard producer.flush(timeout: timeout) else {
            throw Backlog(outstanding: producer.outstanding, topic: topic)
        }
    }

    /// At shutdown, after the last checkpoint.
    func close(timeout: Duration) {
        producer.close(timeout: timeout)
    }
}
