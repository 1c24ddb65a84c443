import Foundation
import Kafka
import TestSupport
import Testing

@testable import EventHandler

/// The Kafka security settings and `KAFKA_PROPERTY_<NAME>`: checked by librdkafka at start-up
/// (a refusal stops it naming the variable, exit 2, before anything connects), and reaching the
/// configurations of both the consumer and the dead-letter producer. Against a SASL broker the
/// mock cluster cannot stand in (it has no SASL handshake: KafkaConfigurationTests shows the
/// consumer asking it for one), so what reaches librdkafka is read back from librdkafka itself.
@Suite("Kafka security and librdkafka properties")
struct KafkaSecurityTests {
    static let base = ["AB_NAMESPACE": "ns", "KAFKA_BROKERS": "127.0.0.1:9"]

    static func settings(_ environment: [String: String], envFile: String? = nil) throws -> Settings {
        let source = try EnvironmentSource.load(envFile: envFile ?? "/nonexistent/.env", environment: base.merging(environment) { $1 })
        return try Settings(source: source)
    }

    static func checkConfig(_ environment: [String: String], command: String = "check-config") throws -> (status: Int32, log: String) {
        var env = base
        env["CONFIG_PATH"] = PostgresServer.repositoryRoot + "/config/challenges.json"
        env.merge(environment) { $1 }
        let process = try ServiceProcess(arguments: [command], environment: env.filter { !$0.value.isEmpty })
        return (try process.waitForExit(timeout: .seconds(30)), process.log)
    }

    static let notACertificate = PostgresServer.repositoryRoot + "/.env.example"

    @Test("a refused Kafka setting stops start-up naming the variable and why (exit 2)", arguments: [
        ("KAFKA_PROPERTY_NO_SUCH_THING", "1", [:], "No such configuration property"),
        ("KAFKA_PROPERTY_FETCH_MIN_BYTES", "abc", [:], "Invalid value"),
        ("KAFKA_PROPERTY_FETCH-MIN-BYTES", "1", [:], "names no librdkafka property"),
        ("KAFKA_PROPERTY_ENABLE_AUTO_COMMIT", "true", [:], "stored in PostgreSQL"),
        ("KAFKA_PROPERTY_AUTO_OFFSET_RESET", "latest", [:], "skip records"),
        ("KAFKA_PROPERTY_PARTITION_ASSIGNMENT_STRATEGY", "range", [:], "cooperative-sticky"),
        ("KAFKA_PROPERTY_GROUP_ID", "other", [:], "KAFKA_GROUP_ID"),
        ("KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "30000", [:], "KAFKA_SESSION_TIMEOUT"),
        ("KAFKA_PROPERTY_SASL_PASSWORD", "hunter2", [:], "KAFKA_SASL_PASSWORD_FILE"),
        ("KAFKA_PROPERTY_SSL_KEY_PASSWORD", "hunter2", [:], "secret"),
        ("KAFKA_PROPERTY_ENABLE_IDEMPOTENCE", "false", [:], "idempotent"),
        ("KAFKA_PROPERTY_MESSAGE_TIMEOUT_MS", "5000", ["KAFKA_DLQ_TOPIC": "dlq"], "dead letters"),
        ("KAFKA_PROPERTY_HEARTBEAT_INTERVAL_MS", "20000", [:], "below KAFKA_SESSION_TIMEOUT"),
        ("KAFKA_SECURITY_PROTOCOL", "tls", [:], "sasl_ssl"),
        ("KAFKA_SASL_MECHANISM", "GSSAPI", ["KAFKA_SECURITY_PROTOCOL": "sasl_ssl"], "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", "", ["KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM": "PLAIN"], "is required"),
        ("KAFKA_SASL_PASSWORD_FILE", "/nonexistent/password",
         ["KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"], "cannot read"),
        ("KAFKA_SASL_USERNAME", "u", [:], "does not use it"),
        ("KAFKA_SSL_CA_FILE", "/nonexistent/ca.pem", ["KAFKA_SECURITY_PROTOCOL": "ssl"], "cannot read"),
        // Readable, not a certificate: only rd_kafka_new finds out, and the message still names it.
        ("KAFKA_SSL_CA_FILE", notACertificate, ["KAFKA_SECURITY_PROTOCOL": "ssl"], "ssl.ca.location"),
    ] as [(String, String, [String: String], String)])
    func refused(variable: String, value: String, others: [String: String], why: String) throws {
        let (status, log) = try Self.checkConfig(others.merging([variable: value]) { $1 })
        #expect(status == 2, "\(variable)=\(value): \(log)")
        #expect(log.contains("configuration error: \(variable): "), "\(variable)=\(value): \(log)")
        #expect(log.contains(why), "\(variable)=\(value): \(log)")
        #expect(!log.contains("hunter2"), "a secret in the message: \(log)")
    }

    @Test("serve stops on a refused property before connecting anything")
    func serveStopsFirst() throws {
        let port = try PostgresServer.freeLoopbackPort()  // nothing listens there
        let (status, log) = try Self.checkConfig(
            ["KAFKA_PROPERTY_NO_SUCH_THING": "1", "DB_HOST": "127.0.0.1", "DB_PORT": String(port)], command: "serve")
        #expect(status == 2, "\(log)")
        #expect(log.contains("configuration error: KAFKA_PROPERTY_NO_SUCH_THING: librdkafka refuses no.such.thing"), "\(log)")
        #expect(!log.contains("starting") && !log.contains("database"), "\(log)")
    }

    @Test("KAFKA_PROPERTY_<NAME>: lowercased, _ is ., __ is _; other characters name nothing")
    func propertyNames() throws {
        let name = Settings.KafkaSettings.propertyName(variable:)
        #expect(name("KAFKA_PROPERTY_FETCH_MIN_BYTES") == "fetch.min.bytes")
        #expect(name("KAFKA_PROPERTY_fetch_min_bytes") == "fetch.min.bytes")
        #expect(name("KAFKA_PROPERTY_LOG__LEVEL") == "log_level")
        #expect(name("KAFKA_PROPERTY_DEBUG") == "debug")
        #expect(name("KAFKA_PROPERTY_") == nil)
        #expect(name("KAFKA_PROPERTY_A.B") == nil)
        #expect(try Self.settings(["KAFKA_PROPERTY_LOG__LEVEL": "6"]).kafka?.properties["log_level"] == "6")
        // Empty is unset; without KAFKA_BROKERS no KAFKA_ setting is read at all.
        #expect(try Self.settings(["KAFKA_PROPERTY_NO_SUCH_THING": ""]).kafka?.properties["no.such.thing"] == nil)
        #expect(try Self.settings(["KAFKA_BROKERS": "", "KAFKA_PROPERTY_NO_SUCH_THING": "1"]).kafka == nil)
    }

    @Test("from .env and the environment, the security settings and the properties reach the consumer's and the dead-letter producer's configurations")
    func reachBothClients() throws {
        let certificates = try TestCertificates.make(name: "kafka-ca")
        defer { certificates.remove() }
        let passwordFile = certificates.directory + "/kafka-password"
        try "s3cret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let envFile = certificates.directory + "/.env"
        try "KAFKA_PROPERTY_FETCH_MIN_BYTES=1048576\nKAFKA_SECURITY_PROTOCOL=sasl_ssl\nKAFKA_SASL_MECHANISM=SCRAM-SHA-512\n"
            .write(toFile: envFile, atomically: true, encoding: .utf8)
        let settings = try Self.settings(
            [
                "KAFKA_PROPERTY_MAX_PARTITION_FETCH_BYTES": "2097152", "KAFKA_PROPERTY_PARTITION_ASSIGNMENT_STRATEGY": "cooperative-sticky",
                "KAFKA_SASL_USERNAME": "handler", "KAFKA_SASL_PASSWORD_FILE": passwordFile,
                "KAFKA_SSL_CA_FILE": certificates.caCertificate, "KAFKA_DLQ_TOPIC": "dlq", "KAFKA_GROUP_ID": "mine",
            ], envFile: envFile)
        let kafka = try #require(settings.kafka)
        let consumer = kafka.consumerConfiguration(logger: .init(label: "test"))
        let producer = kafka.deadLetterConfiguration(logger: .init(label: "test"))
        let expected = [
            "fetch.min.bytes": "1048576", "max.partition.fetch.bytes": "2097152", "security.protocol": "sasl_ssl",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "handler", "sasl.password": "s3cret",
            "ssl.ca.location": certificates.caCertificate,
        ]
        for (name, value) in expected {
            #expect(try consumer.librdkafkaValue(name) == value, "consumer \(name)")
            #expect(try producer.librdkafkaValue(name) == value, "dead-letter producer \(name)")
        }
        // The clients' own settings are untouched.
        #expect(try consumer.librdkafkaValue("group.id") == "mine")
        #expect(try consumer.librdkafkaValue("enable.auto.commit") == "false")
        #expect(try consumer.librdkafkaValue("partition.assignment.strategy") == "cooperative-sticky")
        #expect(try producer.librdkafkaValue("message.timeout.ms") == "0")
        #expect(try producer.librdkafkaValue("client.id") == "event-handler-dlq")
        // And librdkafka takes both as a whole (the CA file loads), without a broker.
        try consumer.check()
        try producer.check()
    }

    @Test(".env.example's commented librdkafka examples (the Kafka tuning guide's consumer settings) are accepted when uncommented")
    func examplesAreValid() throws {
        let text = try String(contentsOfFile: PostgresServer.repositoryRoot + "/.env.example", encoding: .utf8)
        var examples: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# KAFKA_PROPERTY_") {
            let pair = line.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { examples[pair[0]] = pair[1] }
        }
        #expect(examples.count >= 4, "\(examples)")
        let kafka = try #require(try Self.settings(examples.merging(["KAFKA_DLQ_TOPIC": "dlq"]) { $1 }).kafka)
        for (variable, value) in examples {
            let name = try #require(Settings.KafkaSettings.propertyName(variable: variable))
            #expect(try kafka.consumerConfiguration(logger: .init(label: "test")).librdkafkaValue(name) == value, "\(variable)")
        }
    }
}
