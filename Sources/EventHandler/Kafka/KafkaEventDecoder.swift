import EventRules
import GameEvents
import Kafka
import SwiftProtobuf

/// A Kafka record's value into the platform's message (wire.md, Kafka section): proto3 JSON,
/// or binary protobuf when the record's `content-type` header says `application/x-protobuf`;
/// unknown JSON fields are ignored, as the platform adds fields. Which message is told by the
/// topic's suffix. Pure: no state, no I/O.
enum KafkaEventDecoder {
    enum Failure: Error, Equatable {
        /// Not a known topic: neither `*.iam.account.v1.userLoggedIn` nor `*.social.statistic.v1.statItemUpdated`.
        case unknownTopic
        /// The value is not the topic's message.
        case malformed
    }

    static let jsonOptions: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    /// An event record of the login or statistic topic.
    static func event(_ record: KafkaRecord) -> Result<IncomingEvent, Failure> {
        do {
            if record.topic.hasSuffix(".iam.account.v1.userLoggedIn") {
                let message: Accelbyte_Iam_Account_V1_UserLoggedIn = try decode(record)
                return .success(IncomingEvent(message))
            }
            if record.topic.hasSuffix(".social.statistic.v1.statItemUpdated") {
                let message: Accelbyte_Social_Statistic_V1_StatItemUpdated = try decode(record)
                return .success(IncomingEvent(message))
            }
            return .failure(.unknownTopic)
        } catch {
            return .failure(.malformed)
        }
    }

    /// A record of the GDPR topic (`KAFKA_GDPR_TOPIC`, whatever its name).
    static func deletion(_ record: KafkaRecord) -> Result<UserDeletionRequest, Failure> {
        do {
            let message: Accelbyte_Iam_Account_V1_GdprRequestDataDeletionResponse = try decode(record)
            return .success(UserDeletionRequest(message))
        } catch {
            return .failure(.malformed)
        }
    }

    private static func decode<M: SwiftProtobuf.Message>(_ record: KafkaRecord) throws -> M {
        record.contentType == "application/x-protobuf"
            ? try M(serializedBytes: record.value) : try M(jsonUTF8Bytes: record.value, options: jsonOptions)
    }
}
