import CRdKafka

/// A librdkafka failure, with its error name and message.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    init(_ what: String, code: rd_kafka_resp_err_t) {
        description = "\(what): \(Self.message(code))"
    }

    static func message(_ code: rd_kafka_resp_err_t) -> String {
        let name = rd_kafka_err2name(code).map { String(cString: $0) } ?? "\(code.rawValue)"
        let text = rd_kafka_err2str(code).map { String(cString: $0) } ?? ""
        return "\(name) (\(text))"
    }

    /// librdkafka's error text from a fixed-size C buffer (up to its NUL).
    static func text(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
