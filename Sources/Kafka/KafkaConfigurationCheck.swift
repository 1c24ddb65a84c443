import CRdKafka
import Foundation

/// A configuration librdkafka refused: one property (`rd_kafka_conf_set`: an unknown name, a bad
/// value), or the whole (`rd_kafka_new`: missing SASL credentials, an unreadable CA file,
/// settings that contradict each other), with librdkafka's own message.
public struct KafkaConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The property refused; nil when the configuration as a whole was.
    public let property: String?
    public let message: String

    public var description: String { property.map { "\($0): \(message)" } ?? message }
}

/// One librdkafka property on its own.
public enum KafkaProperty {
    /// Sets `name` to `value` on a new configuration, as `rd_kafka_conf_set` checks it: an
    /// unknown name or a bad value throws `KafkaConfigurationError` with librdkafka's message.
    public static func check(_ name: String, _ value: String) throws {
        rd_kafka_conf_destroy(try KafkaClientHandle.configuration([(name, value)]))
    }
}

/// Checking a configuration without connecting anything, and reading back what librdkafka holds.
extension KafkaConsumerConfiguration {
    /// Everything librdkafka checks, before anything connects: each property through
    /// `rd_kafka_conf_set`, then a consumer handle made with no broker to reach and destroyed at
    /// once (`rd_kafka_new`'s own checks). Throws `KafkaConfigurationError`.
    public func check() throws {
        try KafkaClientHandle.check(RD_KAFKA_CONSUMER, properties: librdkafkaProperties)
    }

    /// The value librdkafka holds for `name` in the configuration the consumer is made from (its
    /// own settings and `properties`, exactly as `init` sets them); nil for an unknown name.
    /// Secrets come back as they are: for tests and diagnostics, never for logs.
    public func librdkafkaValue(_ name: String) throws -> String? {
        try KafkaClientHandle.value(of: name, properties: librdkafkaProperties)
    }

    /// Why `properties` must not set `name` to `value`, or nil. These are the settings the
    /// consumer's exactly-once rests on: librdkafka neither commits nor stores offsets (each
    /// partition's position lives in PostgreSQL with the rows it produced, and the delegate
    /// says where it starts); a partition with none starts at its earliest record; the rebalance
    /// callback assigns and revokes incrementally; only committed transactions are read.
    /// `name` is librdkafka's, aliases included.
    public static func refusal(name: String, value: String) -> String? {
        switch name {
        case "enable.auto.commit", "auto.commit.enable", "enable.auto.offset.store", "offset.store.method":
            return "the consumer never commits or stores offsets through librdkafka: each partition's position is stored in PostgreSQL in the transaction of the rows it produced"
        case "auto.offset.reset":
            return "a partition with no stored or committed position starts at its earliest record; another reset would skip records"
        case "partition.assignment.strategy":
            // The consumer's own value: harmless to repeat (the tuning guide's setting).
            if value.trimmingCharacters(in: .whitespaces).lowercased() == "cooperative-sticky" { return nil }
            return "only cooperative-sticky (the consumer's own): its rebalance callback assigns and revokes partitions incrementally, which an eager strategy (range, roundrobin) refuses, leaving partitions unassigned"
        case "isolation.level":
            if value.trimmingCharacters(in: .whitespaces) == "read_committed" { return nil }
            return "only read_committed (the default): a record of an aborted transaction must never be applied"
        case "group.instance.id":
            return "every replica reads the same settings, so a static member id would be shared and the replicas would fence each other out of the group"
        default:
            return nil
        }
    }
}

extension KafkaProducerConfiguration {
    /// As `KafkaConsumerConfiguration.check()`, for a producer.
    public func check() throws {
        try KafkaClientHandle.check(RD_KAFKA_PRODUCER, properties: librdkafkaProperties)
    }

    /// As `KafkaConsumerConfiguration.librdkafkaValue(_:)`, for a producer.
    public func librdkafkaValue(_ name: String) throws -> String? {
        try KafkaClientHandle.value(of: name, properties: librdkafkaProperties)
    }

    /// Why `properties` must not set `name`, or nil: the producer is idempotent (a retry never
    /// duplicates or reorders a record), which needs acknowledgement by every in-sync replica,
    /// and the service's dead letters are retried for ever (`deliveryTimeout` zero), which a
    /// retry limit or a message timeout would end by dropping them.
    public static func refusal(name: String, value: String) -> String? {
        switch name {
        case "enable.idempotence", "acks", "request.required.acks":
            return "the producer is idempotent (a retry never duplicates or reorders a record): which needs acks=all"
        case "message.timeout.ms", "delivery.timeout.ms", "retries", "message.send.max.retries":
            return "dead letters are retried until delivered; a time or retry limit would drop them"
        case "transactional.id":
            return "the producer is not transactional"
        default:
            return nil
        }
    }
}

extension KafkaClientHandle {
    /// `properties` set one by one, then a handle of `type` made and destroyed: with no
    /// bootstrap servers it has no broker to connect to, and its log lines (the missing
    /// bootstrap servers, above all) are dropped.
    static func check(_ type: rd_kafka_type_t, properties: [(String, String)]) throws {
        let conf = try configuration(properties.filter { !["bootstrap.servers", "metadata.broker.list"].contains($0.0) })
        rd_kafka_conf_set_log_cb(conf) { _, _, _, _ in }
        var error = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &error, error.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaConfigurationError(property: nil, message: KafkaError.text(error))
        }
        rd_kafka_destroy(rk)
    }

    static func value(of name: String, properties: [(String, String)]) throws -> String? {
        let conf = try configuration(properties)
        defer { rd_kafka_conf_destroy(conf) }
        var size = 0
        guard rd_kafka_conf_get(conf, name, nil, &size) == RD_KAFKA_CONF_OK else { return nil }
        var buffer = [CChar](repeating: 0, count: max(size, 1))
        guard rd_kafka_conf_get(conf, name, &buffer, &size) == RD_KAFKA_CONF_OK else { return nil }
        return KafkaError.text(buffer)
    }
}
