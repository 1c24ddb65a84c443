import GameEvents

/// The wire messages as the ingest path sees them, whichever transport carried them.
extension IncomingEvent {
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
