import Foundation
import Kafka
import Logging

extension Settings {
    struct KafkaSettings: Sendable {
        /// `KAFKA_BROKERS`: bootstrap servers, `host:port[,host:port…]`.
        var brokers: String
        /// `KAFKA_GROUP_ID`: instances of one group share the partitions.
        var groupID: String
        /// `KAFKA_TOPICS`: comma-separated; default the platform's two for `AB_NAMESPACE`.
        var topics: [String]
        /// `KAFKA_SESSION_TIMEOUT`: how long a member that died holds its partitions.
        var sessionTimeout: Duration
        /// `KAFKA_DLQ_TOPIC`: where records that cannot be applied are copied; nil: skipped
        /// (counted and logged) only.
        var deadLetterTopic: String?
        /// `KAFKA_GDPR_TOPIC`: the topic of the platform's GDPR data-deletion events; nil: off.
        var gdprTopic: String?
        /// librdkafka properties both clients (the consumer and the dead-letter producer) get on
        /// top of their own: the security settings (`KAFKA_SECURITY_PROTOCOL`,
        /// `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD_FILE`,
        /// `KAFKA_SSL_CA_FILE`) and every `KAFKA_PROPERTY_<NAME>`. Holds the SASL password.
        var properties: [String: String] = [:]
        /// The variable each of `properties` came from, for messages.
        var origins: [String: String] = [:]

        /// Every topic the consumer subscribes to.
        var subscribed: [String] { topics + (gdprTopic.map { [$0] } ?? []) }

        /// What the consumer is made from (the service's own settings, then `properties`).
        func consumerConfiguration(logger: Logger) -> KafkaConsumerConfiguration {
            var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: groupID, topics: subscribed)
            configuration.sessionTimeout = sessionTimeout
            configuration.logger = logger
            configuration.properties = properties
            return configuration
        }

        /// What the dead-letter producer is made from, when `KAFKA_DLQ_TOPIC` is set.
        func deadLetterConfiguration(logger: Logger) -> KafkaProducerConfiguration {
            KafkaDeadLetters.configuration(brokers: brokers, properties: properties, logger: logger)
        }
    }
}

extension Settings.KafkaSettings {
    /// `KAFKA_*`: nil when `KAFKA_BROKERS` is empty (gRPC only).
    init?(_ reader: SettingsReader, namespace: String) throws {
        guard let brokers = try reader.string("KAFKA_BROKERS") else { return nil }
        let topics = try reader.string("KAFKA_TOPICS").map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        } ?? ["\(namespace).iam.account.v1.userLoggedIn", "\(namespace).social.statistic.v1.statItemUpdated"]
        guard !topics.isEmpty else {
            throw ConfigurationError(variable: "KAFKA_TOPICS", message: "names no topic")
        }
        let session = try reader.duration("KAFKA_SESSION_TIMEOUT", positive: true) ?? .seconds(10)
        guard session >= .seconds(1) && session <= .seconds(300) else {
            throw ConfigurationError(variable: "KAFKA_SESSION_TIMEOUT", message: "must be between 1s and 5m")
        }
        let deadLetterTopic = try reader.string("KAFKA_DLQ_TOPIC")
        if let deadLetterTopic, topics.contains(deadLetterTopic) {
            throw ConfigurationError(
                variable: "KAFKA_DLQ_TOPIC", message: "\"\(deadLetterTopic)\" is also in KAFKA_TOPICS: its records would come back")
        }
        let gdprTopic = try reader.string("KAFKA_GDPR_TOPIC")
        if let gdprTopic, topics.contains(gdprTopic) || gdprTopic == deadLetterTopic {
            throw ConfigurationError(
                variable: "KAFKA_GDPR_TOPIC", message: "\"\(gdprTopic)\" is also in KAFKA_TOPICS or KAFKA_DLQ_TOPIC")
        }
        self.init(
            brokers: brokers, groupID: try reader.string("KAFKA_GROUP_ID") ?? "event-handler", topics: topics,
            sessionTimeout: session, deadLetterTopic: deadLetterTopic, gdprTopic: gdprTopic)
        try readSecurity(reader)
        try readProperties(reader)
        try check()
    }

    /// `KAFKA_SECURITY_PROTOCOL` and what it needs: SASL credentials (the password only from a
    /// file), the CA that signed the brokers' certificates. A setting the protocol would ignore
    /// is refused, so no operator believes in a protection that is not there.
    private mutating func readSecurity(_ reader: SettingsReader) throws {
        let protocolName = try reader.string("KAFKA_SECURITY_PROTOCOL").map { $0.lowercased() } ?? "plaintext"
        guard ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(protocolName) else {
            throw ConfigurationError(
                variable: "KAFKA_SECURITY_PROTOCOL", message: "must be plaintext, ssl, sasl_plaintext or sasl_ssl, got \"\(protocolName)\"")
        }
        set("security.protocol", protocolName, from: "KAFKA_SECURITY_PROTOCOL")
        let sasl = protocolName.hasPrefix("sasl_")
        let ssl = protocolName.hasSuffix("ssl")
        func needed(_ variable: String, _ value: String?, when applies: Bool) throws -> String? {
            if applies && value == nil {
                throw ConfigurationError(variable: variable, message: "is required with KAFKA_SECURITY_PROTOCOL=\(protocolName)")
            }
            if !applies && value != nil {
                throw ConfigurationError(
                    variable: variable, message: "is set, but KAFKA_SECURITY_PROTOCOL=\(protocolName) does not use it")
            }
            return value
        }
        if let mechanism = try needed("KAFKA_SASL_MECHANISM", reader.string("KAFKA_SASL_MECHANISM")?.uppercased(), when: sasl) {
            guard ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(mechanism) else {
                throw ConfigurationError(
                    variable: "KAFKA_SASL_MECHANISM", message: "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got \"\(mechanism)\"")
            }
            set("sasl.mechanisms", mechanism, from: "KAFKA_SASL_MECHANISM")
        }
        if let username = try needed("KAFKA_SASL_USERNAME", reader.string("KAFKA_SASL_USERNAME"), when: sasl) {
            set("sasl.username", username, from: "KAFKA_SASL_USERNAME")
        }
        if let password = try needed("KAFKA_SASL_PASSWORD_FILE", reader.file("KAFKA_SASL_PASSWORD_FILE"), when: sasl) {
            guard !password.isEmpty else {
                throw ConfigurationError(variable: "KAFKA_SASL_PASSWORD_FILE", message: "names an empty file")
            }
            set("sasl.password", password, from: "KAFKA_SASL_PASSWORD_FILE")
        }
        // Optional with TLS (unset: the system's CA certificates verify the brokers); read here
        // so that an unreadable file stops start-up naming it.
        if try reader.file("KAFKA_SSL_CA_FILE") != nil, let path = try reader.string("KAFKA_SSL_CA_FILE") {
            _ = try needed("KAFKA_SSL_CA_FILE", path, when: ssl)
            set("ssl.ca.location", path, from: "KAFKA_SSL_CA_FILE")
        }
    }

    /// The prefix `readProperties` lists (spelled out there for scripts/check-docs.sh).
    static let propertyPrefix = "KAFKA_PROPERTY_"

    /// librdkafka's name for `KAFKA_PROPERTY_<NAME>`: `<NAME>` lowercased, each `_` a `.`
    /// (`KAFKA_PROPERTY_FETCH_MIN_BYTES` is `fetch.min.bytes`), and `__` a literal `_`, for the
    /// few names that have one (`KAFKA_PROPERTY_LOG__LEVEL` is `log_level`; the others,
    /// callbacks and pointers such as `rebalance_cb` or `ssl_ca`, cannot be set from text at all).
    /// Nil if `<NAME>` is empty or has characters other than letters, digits and `_`.
    static func propertyName(variable: String) -> String? {
        guard variable.hasPrefix(propertyPrefix) else { return nil }
        let name = variable.dropFirst(propertyPrefix.count)
        guard !name.isEmpty, name.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" }) else { return nil }
        return name.lowercased().components(separatedBy: "__").map { $0.replacingOccurrences(of: "_", with: ".") }
            .joined(separator: "_")
    }

    /// The variables with a setting of their own: their properties are refused as
    /// `KAFKA_PROPERTY_`, so one thing is never set in two places (nor a secret in plain text).
    private static let dedicated: [String: String] = [
        "bootstrap.servers": "KAFKA_BROKERS", "metadata.broker.list": "KAFKA_BROKERS", "group.id": "KAFKA_GROUP_ID",
        "session.timeout.ms": "KAFKA_SESSION_TIMEOUT", "security.protocol": "KAFKA_SECURITY_PROTOCOL",
        "sasl.mechanisms": "KAFKA_SASL_MECHANISM", "sasl.mechanism": "KAFKA_SASL_MECHANISM",
        "sasl.username": "KAFKA_SASL_USERNAME", "sasl.password": "KAFKA_SASL_PASSWORD_FILE", "ssl.ca.location": "KAFKA_SSL_CA_FILE",
    ]

    /// Every `KAFKA_PROPERTY_<NAME>` (in `.env` or the environment; empty is unset), each
    /// through `rd_kafka_conf_set` on its own so a refusal names its variable.
    private mutating func readProperties(_ reader: SettingsReader) throws {
        for variable in reader.source.keys(withPrefix: "KAFKA_PROPERTY_") {
            guard let value = try reader.string(variable) else { continue }
            guard let name = Self.propertyName(variable: variable) else {
                throw ConfigurationError(
                    variable: variable, message: "names no librdkafka property (KAFKA_PROPERTY_ and the name in letters, digits and _, e.g. KAFKA_PROPERTY_FETCH_MIN_BYTES for fetch.min.bytes)")
            }
            if let owner = Self.dedicated[name] {
                throw ConfigurationError(variable: variable, message: "\(name) is set by \(owner); use that instead")
            }
            if name.contains("password") || name.contains("secret") {
                throw ConfigurationError(
                    variable: variable, message: "\(name) is a secret, and a KAFKA_PROPERTY_ value is plain text in the environment; not supported")
            }
            if let why = KafkaConsumerConfiguration.refusal(name: name, value: value)
                ?? KafkaProducerConfiguration.refusal(name: name, value: value)
            {
                throw ConfigurationError(variable: variable, message: "\(name) cannot be changed: \(why)")
            }
            if let origin = origins[name] {
                throw ConfigurationError(variable: variable, message: "\(name) is also set by \(origin)")
            }
            do {
                try KafkaProperty.check(name, value)
            } catch {
                throw ConfigurationError(variable: variable, message: "librdkafka refuses \(name)=\(value): \(Self.librdkafkaMessage(error))")
            }
            set(name, value, from: variable)
        }
    }

    /// The clients' whole configurations, as librdkafka checks them when it makes a handle,
    /// without connecting anything (no SASL credentials, an unreadable CA file, a conflict).
    private func check() throws {
        // librdkafka (2.0.2) takes a heartbeat interval at or above the session timeout, with
        // which the group would keep dropping the member.
        if let heartbeat = properties["heartbeat.interval.ms"].flatMap({ Double($0) }),
            heartbeat >= sessionTimeout / .milliseconds(1), let variable = origins["heartbeat.interval.ms"]
        {
            throw ConfigurationError(
                variable: variable, message: "heartbeat.interval.ms must be below KAFKA_SESSION_TIMEOUT (\(sessionTimeout))")
        }
        let logger = Logger(label: "kafka")
        do {
            try consumerConfiguration(logger: logger).check()
            if deadLetterTopic != nil { try deadLetterConfiguration(logger: logger).check() }
        } catch {
            let message = Self.librdkafkaMessage(error)
            // The variable whose property the message names first, if any.
            let named = (error as? KafkaConfigurationError)?.property
                ?? origins.keys.compactMap { name in message.range(of: name).map { (name, $0.lowerBound) } }
                .min { ($0.1, -$0.0.count) < ($1.1, -$1.0.count) }?.0
            throw ConfigurationError(
                variable: named.flatMap { origins[$0] },
                message: "librdkafka refuses the Kafka settings\(named.map { " (\($0))" } ?? ""): \(message)")
        }
    }

    private mutating func set(_ name: String, _ value: String, from variable: String) {
        properties[name] = value
        origins[name] = variable
    }

    private static func librdkafkaMessage(_ error: any Error) -> String {
        (error as? KafkaConfigurationError)?.message ?? "\(error)"
    }
}
