import GameEvents
import SwiftProtobuf

/// Turns a planned event into its gRPC method path and serialized message. Everything per
/// event that can be computed up front is: user ids and the stat codes' strings.
struct EventEncoder: Sendable {
    static let loginPath = "/accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService/OnMessage"
    static let statPath = "/accelbyte.social.statistic.v1.StatisticStatItemUpdatedService/OnMessage"

    let runID: String
    let namespace: String
    let userIDs: [String]
    let statCodes: [String]

    init(runID: String, namespace: String, userIDs: [String], statCodes: Int) {
        self.runID = runID
        self.namespace = namespace
        self.userIDs = userIDs
        self.statCodes = (0..<statCodes).map { "stat-\($0)" }
    }

    /// The event's path and message, stamped `timestamp`, with the id `<runID>-<sequence>`.
    func encode(_ event: PlannedEvent, timestamp: String) -> (path: String, message: [UInt8]) {
        let user = userIDs[event.user]
        let id = "\(runID)-\(event.sequence)"
        switch event.kind {
        case .login:
            var message = Accelbyte_Iam_Account_V1_UserLoggedIn()
            message.id = id
            message.name = "userLoggedIn"
            message.namespace = namespace
            message.userID = user
            message.timestamp = timestamp
            message.payload.userAccount.userID = user
            message.payload.userAccount.namespace = namespace
            return (Self.loginPath, Self.bytes(message))
        case .stat(let code, let value):
            var message = Accelbyte_Social_Statistic_V1_StatItemUpdated()
            message.id = id
            message.name = "statItemUpdated"
            message.namespace = namespace
            message.userID = user
            message.timestamp = timestamp
            message.payload.statCode = statCodes[code]
            message.payload.userID = user
            message.payload.namespace = namespace
            message.payload.latestValue = Double(value)
            message.payload.inc = 1
            return (Self.statPath, Self.bytes(message))
        }
    }

    /// Serialization of these messages cannot fail (no required fields, no Any).
    private static func bytes(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        (try? message.serializedBytes()) ?? []
    }
}
