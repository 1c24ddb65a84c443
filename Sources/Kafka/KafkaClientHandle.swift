import CRdKafka

/// Creating a librdkafka handle, the same way for every client of this module: properties set
/// one by one (a refused one names itself), `opaque` behind the handle for the C callbacks, its
/// log lines routed through swift-log, and `configure` for the client's own callbacks.
enum KafkaClientHandle {
    static func create<Opaque: KafkaLogDestination>(
        _ type: rd_kafka_type_t, properties: [(String, String)], opaque: Opaque,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws -> OpaquePointer {
        let conf = try configuration(properties)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(opaque).toOpaque())
        KafkaLogRouting.install(on: conf)
        configure(conf)
        // rd_kafka_new takes the configuration over when it succeeds, and only then.
        var error = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &error, error.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaConfigurationError(
                property: nil, message: "cannot create the \(clientName(type)): \(KafkaError.text(error))")
        }
        return rk
    }

    /// A new configuration with `properties` set in order through `rd_kafka_conf_set`, which
    /// checks each: an unknown name or a bad value throws, naming the property. The caller owns
    /// the result (`rd_kafka_conf_destroy`, or `rd_kafka_new` takes it over).
    static func configuration(_ properties: [(String, String)]) throws -> OpaquePointer {
        var error = [CChar](repeating: 0, count: 512)
        guard let conf = rd_kafka_conf_new() else { throw KafkaError("rd_kafka_conf_new failed") }
        for (name, value) in properties {
            guard rd_kafka_conf_set(conf, name, value, &error, error.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaConfigurationError(property: name, message: KafkaError.text(error))
            }
        }
        return conf
    }

    static func clientName(_ type: rd_kafka_type_t) -> String {
        type == RD_KAFKA_CONSUMER ? "consumer" : "producer"
    }
}
