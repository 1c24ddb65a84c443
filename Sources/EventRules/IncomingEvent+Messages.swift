import GameEvents
import SwiftProtobuf

/// The wire messages as the ingest path sees them, whichever transport carried them.
extension IncomingEvent {
    /// The method an event message came in by, and so how its bytes decode.
    public enum MessageKind: Sendable {
        case login
        case stat

        public var messageName: String {
            switch self {
            case .login: Accelbyte_Iam_Account_V1_UserLoggedIn.protoMessageName
            case .stat: Accelbyte_Social_Statistic_V1_StatItemUpdated.protoMessageName
            }
        }
    }

    /// Decodes a serialized `UserLoggedIn` or `StatItemUpdated`; throws SwiftProtobuf's error
    /// for bytes that are not one.
    public init(serialized bytes: [UInt8], as kind: MessageKind) throws {
        switch kind {
        case .login: self.init(try Accelbyte_Iam_Account_V1_UserLoggedIn(serializedBytes: bytes))
        case .stat: self.init(try Accelbyte_Social_Statistic_V1_StatItemUpdated(serializedBytes: bytes))
        }
    }

    public init(_ message: Accelbyte_Iam_Account_V1_UserLoggedIn) {
        self = .login(.init(id: message.id, namespace: message.namespace, userID: message.userID))
    }

    public init(_ message: Accelbyte_Social_Statistic_V1_StatItemUpdated) {
        let payload: StatPayload? =
            message.hasPayload
            ? .init(statCode: message.payload.statCode, latestValue: message.payload.latestValue, inc: message.payload.inc)
            : nil
        self = .stat(.init(id: message.id, namespace: message.namespace, userID: message.userID, payload: payload))
    }

    public var userID: String {
        switch self {
        case .login(let login): login.userID
        case .stat(let stat): stat.userID
        }
    }

    /// The deduplication key (empty when the sender gave none).
    public var id: String {
        switch self {
        case .login(let login): login.id
        case .stat(let stat): stat.id
        }
    }
}
