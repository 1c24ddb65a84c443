import EventRules
import GameEvents
import Kafka
import SwiftProtobuf
import Testing

@testable import EventHandler

/// Kafka values into events, in process (KafkaIngestionTests sends the same through a broker).
@Suite("Kafka values into events, without a broker")
struct KafkaEventDecoderTests {
    static func record(_ topic: String, _ value: [UInt8], protobuf: Bool = false) -> KafkaRecord {
        KafkaRecord(
            topic: topic, partition: 0, offset: 7, key: nil, value: value,
            contentType: protobuf ? "application/x-protobuf" : nil)
    }

    @Test("proto3 JSON and binary protobuf decode to the same event; unknown JSON fields are ignored; the topic's suffix picks the message")
    func bothEncodings() throws {
        let stat = Accelbyte_Social_Statistic_V1_StatItemUpdated.with {
            $0.id = "e-1"
            $0.namespace = "ns"
            $0.userID = "u-1"
            $0.payload.statCode = "kills"
            $0.payload.userID = "u-1"
            $0.payload.latestValue = 12
            $0.payload.inc = 2
        }
        let topic = "prod.social.statistic.v1.statItemUpdated"
        let fromBinary = try KafkaEventDecoder.event(Self.record(topic, try stat.serializedBytes() as [UInt8], protobuf: true)).get()
        var json = try stat.jsonString()
        json.removeLast()
        json += #","addedByANewerPlatform":{"x":1}}"#
        let fromJSON = try KafkaEventDecoder.event(Self.record(topic, Array(json.utf8))).get()
        #expect(fromBinary == IncomingEvent(stat))
        #expect(fromJSON == fromBinary)

        let login = Accelbyte_Iam_Account_V1_UserLoggedIn.with {
            $0.id = "e-2"
            $0.namespace = "ns"
            $0.userID = "u-2"
        }
        let decoded = try KafkaEventDecoder.event(Self.record("x.iam.account.v1.userLoggedIn", Array(try login.jsonString().utf8))).get()
        #expect(decoded == IncomingEvent(login))
    }

    @Test("an unknown topic, a value that is not the topic's message, or protobuf bytes under a JSON content type are refused with their reason")
    func refusals() throws {
        let stat = Accelbyte_Social_Statistic_V1_StatItemUpdated.with { $0.id = "e-1" }
        #expect(KafkaEventDecoder.event(Self.record("prod.other.topic", Array("{}".utf8))) == .failure(.unknownTopic))
        #expect(KafkaEventDecoder.event(Self.record("a.social.statistic.v1.statItemUpdated", Array("{\"id\":".utf8))) == .failure(.malformed))
        #expect(
            KafkaEventDecoder.event(Self.record("a.social.statistic.v1.statItemUpdated", try stat.serializedBytes() as [UInt8]))
                == .failure(.malformed))
        #expect(KafkaEventDecoder.deletion(Self.record("gdpr", Array("[1,2]".utf8))) == .failure(.malformed))
    }
}
