import Logging

/// What a `KafkaConsumer` connects to and how it behaves in its group.
public struct KafkaConsumerConfiguration: Sendable {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    public var bootstrapServers: String
    /// `group.id`: consumers of one group share the partitions.
    public var groupID: String
    public var topics: [String]
    /// `session.timeout.ms`: how long a member that stopped answering holds its partitions.
    public var sessionTimeout: Duration = .seconds(10)
    public var clientID = "event-handler"
    /// The most records handed to the delegate at once (`consume(batch:)`): what one poll finds
    /// already fetched, without waiting for more.
    public var maxBatchSize = 500
    /// Where librdkafka's own log lines go.
    public var logger = Logger(label: "kafka")
    /// More librdkafka properties (name → value), applied last.
    public var properties: [String: String] = [:]

    public init(bootstrapServers: String, groupID: String, topics: [String]) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topics = topics
    }

    /// Every property the consumer sets, in order. Offsets are never committed to Kafka and
    /// never stored automatically: where a partition was left is the owner's business
    /// (`KafkaConsumerDelegate.partitionsAssigned`).
    var librdkafkaProperties: [(String, String)] {
        var properties: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", groupID),
            ("client.id", clientID),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("heartbeat.interval.ms", String(max(100, sessionTimeout.milliseconds / 5))),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            // librdkafka backs off reconnecting up to 10 s by default, so a broker back after an
            // outage waited up to 10 s more for its consumers (12.9 s recovery measured after a
            // 15 s outage; 3.8 s with these, faults-2026-11-25T075901Z.jsonl). Retry every second at
            // most: cheap, and the backlog starts draining soon after the broker is back.
            ("reconnect.backoff.ms", "100"),
            ("reconnect.backoff.max.ms", "1000"),
            ("log_level", "4"),
        ]
        properties += self.properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return properties
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
