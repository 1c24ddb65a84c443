import Catalog
@testable import EventHandler
import EventRules
import FuzzSupport
import GameEvents
import Kafka
import SwiftProtobuf

/// A Kafka record's value → `KafkaEventDecoder` → `EventValidator` → `GoalMatcher`: what
/// `KafkaIngest` does with each record before the buffer. The input's first byte picks the topic
/// (bits 0–1: login, statistic, GDPR, an unknown topic) and the encoding (bit 2: binary protobuf,
/// the `application/x-protobuf` content type; otherwise proto3 JSON); the rest is the value.
///
/// Beyond not crashing: an unknown topic is refused as such; an event that passes validation has
/// a user id of 1…100 bytes and an event id of at most 200, neither with a control character, and
/// (stat events) a stat code of 1…100 bytes and finite values; its goal updates name goals of its
/// source; a deletion that passes has such a user id. And the two encodings agree: a message
/// decoded from JSON, written as binary protobuf and decoded again, is the same event.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKafkaValue(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = input.first else { return 0 }
    let value = Array(input.dropFirst())
    let protobuf = selector & 4 != 0
    let record = KafkaRecord(
        topic: topics[Int(selector & 3)], partition: 0, offset: 0, key: nil, value: value,
        contentType: protobuf ? "application/x-protobuf" : "application/json")
    switch selector & 3 {
    case 2:
        if case .success(let request) = KafkaEventDecoder.deletion(record),
            request.check(namespace: FuzzSupport.namespace) == .valid
        {
            checkUserID(request.userID)
        }
    case 3:
        require(KafkaEventDecoder.event(record) == .failure(.unknownTopic), "a record of an unknown topic is not refused as such")
    default:
        guard case .success(let event) = KafkaEventDecoder.event(record) else { return 0 }
        check(event)
        if !protobuf { checkEncodingsAgree(event, record) }
    }
    return 0
}

private let topics = [
    "mygame.iam.account.v1.userLoggedIn", "mygame.social.statistic.v1.statItemUpdated", "mygame.gdpr", "mygame.other.v1.topic",
]
private let matcher = GoalMatcher(catalog: FuzzSupport.catalog)

private func check(_ event: IncomingEvent) {
    guard EventValidator.check(event, namespace: FuzzSupport.namespace) == .valid else { return }
    checkUserID(event.userID)
    require(event.id.utf8.count <= 200, "an accepted event id of \(event.id.utf8.count) bytes")
    require(ControlCharacters.first(in: event.id) == nil, "an accepted event id with a control character: \(event.id.debugDescription)")
    let login: Bool
    switch event {
    case .login:
        login = true
    case .stat(let stat):
        login = false
        guard let payload = stat.payload else { FuzzSupport.fail(target, "an accepted stat event without payload") }
        require((1...100).contains(payload.statCode.utf8.count), "an accepted statCode of \(payload.statCode.utf8.count) bytes")
        require(payload.latestValue.isFinite && payload.inc.isFinite, "accepted values that are not finite")
    }
    for update in matcher.updates(for: event) {
        let goals = FuzzSupport.catalog.goals
        require(goals.indices.contains(Int(update.goal)), "an update of goal \(update.goal), not in the catalog")
        require((goals[Int(update.goal)].eventSource == .login) == login, "a \(event.kind) event moves goal \(goals[Int(update.goal)].goalId)")
        require((0...Int64(Int32.max)).contains(update.value), "an update to \(update.value)")
    }
}

private func checkUserID(_ userID: String) {
    require((1...100).contains(userID.utf8.count), "an accepted user id of \(userID.utf8.count) bytes")
    require(ControlCharacters.first(in: userID) == nil, "an accepted user id with a control character: \(userID.debugDescription)")
}

/// The JSON value's message, written as binary protobuf, decodes to the same event.
private func checkEncodingsAgree(_ event: IncomingEvent, _ record: KafkaRecord) {
    let binary: [UInt8]
    do {
        switch event {
        case .login:
            binary = try Accelbyte_Iam_Account_V1_UserLoggedIn(jsonUTF8Bytes: record.value, options: KafkaEventDecoder.jsonOptions)
                .serializedBytes()
        case .stat:
            binary = try Accelbyte_Social_Statistic_V1_StatItemUpdated(jsonUTF8Bytes: record.value, options: KafkaEventDecoder.jsonOptions)
                .serializedBytes()
        }
    } catch {
        FuzzSupport.fail(target, "a decoded message does not decode or serialize again: \(error)")
    }
    var again = record
    again.value = binary
    again.contentType = "application/x-protobuf"
    guard case .success(let decoded) = KafkaEventDecoder.event(again) else {
        FuzzSupport.fail(target, "the binary form of a JSON event does not decode")
    }
    require(same(decoded, event), "JSON and binary protobuf disagree: \(event) against \(decoded)")
}

/// Equality, with NaN equal to NaN (proto3 JSON writes it "NaN"; -0 and 0 are equal, and
/// binary protobuf leaves both out).
private func same(_ a: IncomingEvent, _ b: IncomingEvent) -> Bool {
    guard case .stat(let x) = a, case .stat(let y) = b, let p = x.payload, let q = y.payload else { return a == b }
    return x.id == y.id && x.namespace == y.namespace && x.userID == y.userID && p.statCode == q.statCode
        && sameValue(p.latestValue, q.latestValue) && sameValue(p.inc, q.inc)
}

private func sameValue(_ a: Double, _ b: Double) -> Bool {
    a == b || (a.isNaN && b.isNaN)
}

private let target = "fuzz-kafka-value"

private func require(_ condition: Bool, _ property: @autoclosure () -> String) {
    FuzzSupport.require(condition, target, property())
}
