import CRdKafka
import Logging

/// An object behind a librdkafka handle's opaque pointer that knows where the handle's own log
/// lines go.
protocol KafkaLogDestination: AnyObject {
    var logger: Logger { get }
}

/// librdkafka's own log lines (a broker unreachable, a rebalance gone wrong) through swift-log,
/// with the service's format and level, instead of librdkafka's `%3|…|FAIL|…` on standard error.
/// The handle's `log_level` property still decides what librdkafka produces at all.
enum KafkaLogRouting {
    /// Routes the logs of the handle `conf` creates; `conf`'s opaque must be a `KafkaLogDestination`.
    static func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_log_cb(conf, logCallback)
    }

    /// syslog(3) levels, as librdkafka uses them, in swift-log's terms.
    static func level(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }
}

/// Called on librdkafka's threads, any of them; swift-log handlers are thread-safe.
private func logCallback(rk: OpaquePointer?, level: Int32, facility: UnsafePointer<CChar>?, line: UnsafePointer<CChar>?) {
    guard let rk, let opaque = rd_kafka_opaque(rk),
        let destination = Unmanaged<AnyObject>.fromOpaque(opaque).takeUnretainedValue() as? any KafkaLogDestination
    else { return }
    let message = line.map { String(cString: $0) } ?? ""
    var metadata: Logger.Metadata = ["kafka_facility": "\(facility.map { String(cString: $0) } ?? "?")"]
    if let name = rd_kafka_name(rk) { metadata["kafka_client"] = "\(String(cString: name))" }
    destination.logger.log(level: KafkaLogRouting.level(syslog: level), "librdkafka: \(message)", metadata: metadata)
}
