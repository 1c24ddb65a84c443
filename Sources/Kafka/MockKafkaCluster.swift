import CRdKafka
import Logging
import Synchronization

/// librdkafka's mock cluster: real Kafka protocol servers on loopback, in this process, with no
/// persistence. A development and test broker, never a production one: records live in memory
/// and are gone when the process ends.
///
/// The cluster lives on a librdkafka handle that only owns it (a producer that never produces).
/// Its brokers listen on 127.0.0.1 ports the system picks; `bootstrapServers` names them for
/// any client, in this process or another (kcat, the service).
public final class MockKafkaCluster: Sendable {
    /// The C handles, owned by this object; only the mock API touches them, and librdkafka
    /// serializes that through the cluster's own thread.
    private struct Handles: @unchecked Sendable {
        let owner: OpaquePointer
        let cluster: OpaquePointer
    }

    private let handles: Mutex<Handles?>
    private let logDestination: MockLogDestination
    public let bootstrapServers: String
    public let brokerCount: Int

    /// Starts `brokers` mock brokers; librdkafka's log lines about them go to `logger`.
    public init(brokers: Int = 1, logger: Logger = Logger(label: "kafka.mock")) throws {
        precondition(brokers > 0, "a cluster needs a broker")
        var error = [CChar](repeating: 0, count: 512)
        guard let conf = rd_kafka_conf_new() else { throw KafkaError("rd_kafka_conf_new failed") }
        // The owner handle logs nothing of its own; a bootstrap it never uses keeps it quiet.
        _ = rd_kafka_conf_set(conf, "log_level", "3", &error, error.count)
        let logDestination = MockLogDestination(logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(logDestination).toOpaque())
        KafkaLogRouting.install(on: conf)
        guard let owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &error, error.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("cannot create the mock cluster's handle: \(KafkaError.text(error))")
        }
        guard let cluster = rd_kafka_mock_cluster_new(owner, Int32(brokers)) else {
            rd_kafka_destroy(owner)
            throw KafkaError("rd_kafka_mock_cluster_new(\(brokers)) failed")
        }
        bootstrapServers = rd_kafka_mock_cluster_bootstraps(cluster).map { String(cString: $0) } ?? ""
        brokerCount = brokers
        self.logDestination = logDestination
        handles = Mutex(Handles(owner: owner, cluster: cluster))
    }

    /// Creates `topic` with `partitions` partitions (replicated on every broker, up to 3).
    public func createTopic(_ topic: String, partitions: Int) throws {
        try withCluster { cluster in
            let code = rd_kafka_mock_topic_create(cluster, topic, Int32(partitions), Int32(min(brokerCount, 3)))
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("create topic \(topic)", code: code) }
        }
    }

    /// Takes broker `id` (1-based) down: its connections drop and it refuses new ones.
    public func setBrokerDown(_ id: Int) throws {
        try withCluster { cluster in
            let code = rd_kafka_mock_broker_set_down(cluster, Int32(id))
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("broker \(id) down", code: code) }
        }
    }

    /// Brings broker `id` (1-based) back up.
    public func setBrokerUp(_ id: Int) throws {
        try withCluster { cluster in
            let code = rd_kafka_mock_broker_set_up(cluster, Int32(id))
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("broker \(id) up", code: code) }
        }
    }

    /// Stops the brokers; everything they held is gone. Idempotent.
    public func shutdown() {
        guard let handles = handles.withLock({ handles -> Handles? in
            defer { handles = nil }
            return handles
        }) else { return }
        rd_kafka_mock_cluster_destroy(handles.cluster)
        rd_kafka_destroy(handles.owner)
    }

    deinit { shutdown() }

    private func withCluster<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        try handles.withLock { handles in
            guard let handles else { throw KafkaError("the mock cluster is shut down") }
            return try body(handles.cluster)
        }
    }
}

private final class MockLogDestination: Sendable, KafkaLogDestination {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}
