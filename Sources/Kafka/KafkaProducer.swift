import CRdKafka
import Foundation
import Logging
import Synchronization

/// A record to produce.
public struct KafkaOutgoingRecord: Sendable {
    public var topic: String
    /// Nil: librdkafka's partitioner picks one from the key.
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [(name: String, value: String)]

    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8], headers: [(name: String, value: String)] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// A record librdkafka gave up on: delivery failed for good (a permanent broker error, or
/// `message.timeout.ms` passed).
public struct KafkaDeliveryFailure: Sendable {
    public var topic: String
    public var headers: [String: String]
    public var error: String
}

/// What a `KafkaProducer` connects to.
public struct KafkaProducerConfiguration: Sendable {
    public var bootstrapServers: String
    public var clientID = "event-handler"
    /// `message.timeout.ms`: how long librdkafka retries a record before reporting it failed;
    /// nil keeps librdkafka's default (300 s), zero retries for ever.
    public var deliveryTimeout: Duration?
    /// Where librdkafka's own log lines go.
    public var logger = Logger(label: "kafka")
    /// More librdkafka properties (name → value), applied last.
    public var properties: [String: String] = [:]

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    var librdkafkaProperties: [(String, String)] {
        var list: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            // Retries never reorder or duplicate a record.
            ("enable.idempotence", "true"),
            ("log_level", "4"),
        ]
        if let deliveryTimeout { list.append(("message.timeout.ms", String(deliveryTimeout.milliseconds))) }
        list += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return list
    }
}

/// A Kafka producer over librdkafka. `send` only queues (librdkafka copies the record and
/// delivers it on its own threads); `flush` waits for what is queued. Delivery reports are
/// served inside `send` and `flush`; failures go to `onFailure`.
public final class KafkaProducer: Sendable {
    private struct Handle: @unchecked Sendable {
        let rk: OpaquePointer
    }

    private let handle: Handle
    private let callbacks: ProducerCallbacks
    private let closed = Atomic<Bool>(false)

    public init(
        configuration: KafkaProducerConfiguration,
        onFailure: @escaping @Sendable (KafkaDeliveryFailure) -> Void = { _ in }
    ) throws {
        callbacks = ProducerCallbacks(logger: configuration.logger, onFailure: onFailure)
        let rk = try KafkaClientHandle.create(
            RD_KAFKA_PRODUCER, properties: configuration.librdkafkaProperties, opaque: callbacks
        ) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        }
        handle = Handle(rk: rk)
    }

    deinit { close(timeout: .zero) }

    /// Records delivered, and records given up on, since the start.
    public var delivered: Int { callbacks.delivered.load(ordering: .relaxed) }
    public var failed: Int { callbacks.failed.load(ordering: .relaxed) }

    /// Records queued and not yet delivered or given up on.
    public var outstanding: Int { Int(rd_kafka_outq_len(handle.rk)) }

    /// Queues `record`. When librdkafka's queue is full this serves delivery reports and tries
    /// again (back-pressure on the caller) until `timeout`; other refusals throw at once.
    public func send(_ record: KafkaOutgoingRecord, timeout: Duration = .seconds(30)) throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let code = produce(record)
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                rd_kafka_poll(handle.rk, 0)
                return
            }
            guard code == RD_KAFKA_RESP_ERR__QUEUE_FULL, ContinuousClock.now < deadline else {
                throw KafkaError("produce to \(record.topic)", code: code)
            }
            rd_kafka_poll(handle.rk, 10)
        }
    }

    private func produce(_ record: KafkaOutgoingRecord) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                var value = Array(header.value.utf8)
                _ = rd_kafka_header_add(headers, header.name, -1, &value, value.count)
            }
        }
        let key = record.key ?? []
        let code = key.withUnsafeBytes { keyBytes in
            record.value.withUnsafeBytes { valueBytes in
                eh_rd_kafka_produce(
                    handle.rk, record.topic, record.partition ?? -1,
                    record.key == nil ? nil : keyBytes.baseAddress, record.key == nil ? 0 : keyBytes.count,
                    valueBytes.baseAddress, valueBytes.count, headers, nil)
            }
        }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR, let headers { rd_kafka_headers_destroy(headers) }
        return code
    }

    /// Waits until every queued record is delivered or given up on. False if `timeout` came first.
    @discardableResult
    public func flush(timeout: Duration) -> Bool {
        rd_kafka_flush(handle.rk, Int32(clamping: timeout.milliseconds)) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Flushes for up to `timeout`, then destroys the handle (whatever is still queued is lost).
    /// Idempotent.
    public func close(timeout: Duration) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        rd_kafka_flush(handle.rk, Int32(clamping: timeout.milliseconds))
        rd_kafka_destroy(handle.rk)
    }
}

fileprivate final class ProducerCallbacks: Sendable, KafkaLogDestination {
    let logger: Logger
    let onFailure: @Sendable (KafkaDeliveryFailure) -> Void
    let delivered = Atomic<Int>(0)
    let failed = Atomic<Int>(0)

    init(logger: Logger, onFailure: @escaping @Sendable (KafkaDeliveryFailure) -> Void) {
        self.logger = logger
        self.onFailure = onFailure
    }
}

/// Served inside rd_kafka_poll / rd_kafka_flush, on the thread that called them.
private func deliveryCallback(rk: OpaquePointer?, message: UnsafePointer<rd_kafka_message_t>?, opaque: UnsafeMutableRawPointer?) {
    guard let message, let opaque else { return }
    let callbacks = Unmanaged<ProducerCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let m = message.pointee
    guard m.err != RD_KAFKA_RESP_ERR_NO_ERROR else {
        callbacks.delivered.add(1, ordering: .relaxed)
        return
    }
    callbacks.failed.add(1, ordering: .relaxed)
    var headers: [String: String] = [:]
    var list: OpaquePointer?
    if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let name {
                headers[String(cString: name)] =
                    value.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) } ?? ""
            }
            index += 1
        }
    }
    let topic = m.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? "?"
    callbacks.onFailure(KafkaDeliveryFailure(topic: topic, headers: headers, error: KafkaError.message(m.err)))
}
