import Foundation

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

        /// Every topic the consumer subscribes to.
        var subscribed: [String] { topics + (gdprTopic.map { [$0] } ?? []) }
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
    }
}
