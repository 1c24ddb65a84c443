import Foundation
import Kafka
import Testing

/// What librdkafka makes of the clients' configurations: checked without connecting, read back
/// as librdkafka holds them, and (against the mock cluster) what a SASL or an eager client does.
@Suite("Kafka configuration")
struct KafkaConfigurationTests {
    static let security = [
        "security.protocol": "sasl_ssl", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "handler",
        "sasl.password": "s3cret", "fetch.min.bytes": "1048576",
    ]

    @Test("extra properties reach librdkafka's configuration of both clients, after their own settings, which survive")
    func propertiesReachBothClients() throws {
        var consumer = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9", groupID: "g", topics: ["t"])
        consumer.properties = Self.security
        var producer = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        producer.properties = Self.security
        for (name, value) in Self.security {
            #expect(try consumer.librdkafkaValue(name) == value, "consumer \(name)")
            #expect(try producer.librdkafkaValue(name) == value, "producer \(name)")
        }
        #expect(try consumer.librdkafkaValue("enable.auto.commit") == "false")
        #expect(try consumer.librdkafkaValue("group.id") == "g")
        #expect(try producer.librdkafkaValue("enable.idempotence") == "true")
        #expect(try consumer.librdkafkaValue("no.such.thing") == nil)
        // Applied last: an allowed override wins over the client's own value.
        consumer.properties = ["heartbeat.interval.ms": "1234"]
        #expect(try consumer.librdkafkaValue("heartbeat.interval.ms") == "1234")
    }

    @Test("check() refuses an unknown property and a bad value naming the property, and what rd_kafka_new refuses, without connecting")
    func checkRefuses() throws {
        var consumer = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9", groupID: "g", topics: ["t"])
        try consumer.check()
        for (name, value, says) in [("no.such.thing", "1", "No such configuration property"), ("fetch.min.bytes", "abc", "Invalid value")] {
            consumer.properties = [name: value]
            let error = #expect(throws: KafkaConfigurationError.self) { try consumer.check() }
            #expect(error?.property == name)
            #expect(error?.message.contains(says) == true, "\(String(describing: error))")
            #expect(throws: KafkaConfigurationError.self) { try KafkaProperty.check(name, value) }
        }
        // Valid one by one, refused as a whole by rd_kafka_new: SASL/PLAIN with no username.
        consumer.properties = ["security.protocol": "sasl_plaintext", "sasl.mechanisms": "PLAIN"]
        let whole = #expect(throws: KafkaConfigurationError.self) { try consumer.check() }
        #expect(whole?.property == nil)
        #expect(whole?.message.contains("sasl.username") == true, "\(String(describing: whole))")
        var producer = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        producer.properties = ["security.protocol": "ssl", "ssl.ca.location": "/nonexistent/ca.pem"]
        let ca = #expect(throws: KafkaConfigurationError.self) { try producer.check() }
        #expect(ca?.message.contains("ssl.ca.location") == true, "\(String(describing: ca))")
    }

    @Test("the consumer's exactly-once settings are refused as overrides; the tuning guide's cooperative-sticky is accepted")
    func refusals() {
        for name in ["enable.auto.commit", "auto.commit.enable", "enable.auto.offset.store", "auto.offset.reset", "group.instance.id"] {
            #expect(KafkaConsumerConfiguration.refusal(name: name, value: "x") != nil, "\(name)")
        }
        #expect(KafkaConsumerConfiguration.refusal(name: "partition.assignment.strategy", value: "range") != nil)
        #expect(KafkaConsumerConfiguration.refusal(name: "partition.assignment.strategy", value: "cooperative-sticky") == nil)
        #expect(KafkaConsumerConfiguration.refusal(name: "isolation.level", value: "read_uncommitted") != nil)
        #expect(KafkaConsumerConfiguration.refusal(name: "fetch.min.bytes", value: "1048576") == nil)
        for name in ["enable.idempotence", "acks", "message.timeout.ms", "delivery.timeout.ms", "retries", "transactional.id"] {
            #expect(KafkaProducerConfiguration.refusal(name: name, value: "1") != nil, "\(name)")
        }
        #expect(KafkaProducerConfiguration.refusal(name: "linger.ms", value: "5") == nil)
    }

    @Test("SASL reaches the live consumer: the mock cluster, which has no SASL handshake, is asked for one", .timeLimit(.minutes(1)))
    func saslAgainstTheMock() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("events", partitions: 1)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "sasl", topics: ["events"])
        configuration.properties = ["security.protocol": "sasl_plaintext", "sasl.mechanisms": "PLAIN", "sasl.username": "u", "sasl.password": "p"]
        let delegate = RecordingDelegate()
        let consumer = try KafkaConsumer(configuration: configuration, delegate: delegate)
        try consumer.start()
        defer {
            consumer.stop()
            _ = consumer.waitUntilStopped(timeout: .seconds(10))
        }
        // librdkafka's own words: the mock broker lists no SaslHandshake API (rdkafka_mock_handlers.c
        // has none), so no credentials, right or wrong, can ever authenticate against it.
        try delegate.wait(timeout: .seconds(20)) { state in
            state.errors.contains { $0.contains("SASL Handshake not supported by broker") }
        }
        #expect(delegate.state.withLock { $0.assigned.isEmpty })
    }

    @Test("why an eager assignment strategy is refused: the consumer's incremental assignment fails under it", .timeLimit(.minutes(1)))
    func eagerStrategyCannotAssign() throws {
        let cluster = try MockKafkaCluster()
        defer { cluster.shutdown() }
        try cluster.createTopic("events", partitions: 2)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "eager", topics: ["events"])
        configuration.sessionTimeout = .seconds(6)
        configuration.properties = ["partition.assignment.strategy": "range"]
        let delegate = RecordingDelegate()
        let consumer = try KafkaConsumer(configuration: configuration, delegate: delegate)
        try consumer.start()
        defer {
            consumer.stop()
            _ = consumer.waitUntilStopped(timeout: .seconds(10))
        }
        try delegate.wait(timeout: .seconds(20)) { state in state.errors.contains { $0.hasPrefix("assign:") } }
        let errors = delegate.state.withLock { $0.errors }
        #expect(errors.contains { $0.contains("EAGER") }, "\(errors)")
    }
}
