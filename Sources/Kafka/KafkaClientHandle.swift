import CRdKafka

/// Creating a librdkafka handle, the same way for every client of this module: properties set
/// one by one (a refused one names itself), `opaque` behind the handle for the C callbacks, its
/// log lines routed through swift-log, and `configure` for the client's own callbacks.
enum KafkaClientHandle {
    static func create<Opaque: KafkaLogDestination>(
        _ type: rd_kafka_type_t, properties: [(String, String)], opaque: Opaque,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws -> OpaquePointer {
        var error = [CChar](repeating: 0, count: 512)
        guard let conf = rd_kafka_conf_new() else { throw KafkaError("rd_kafka_conf_new failed") }
        for (name, value) in properties {
            guard rd_kafka_conf_set(conf, name, value, &error, error.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError("\(name)=\(value): \(KafkaError.text(error))")
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(opaque).toOpaque())
        KafkaLogRouting.install(on: conf)
        configure(conf)
        // rd_kafka_new takes the configuration over when it succeeds, and only then.
        guard let rk = rd_kafka_new(type, conf, &error, error.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("cannot create the \(type == RD_KAFKA_CONSUMER ? "consumer" : "producer"): \(KafkaError.text(error))")
        }
        return rk
    }
}
