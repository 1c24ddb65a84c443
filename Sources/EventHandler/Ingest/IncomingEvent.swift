/// An event as the ingest path sees it, whatever carried it (gRPC now, Kafka later): only the
/// fields validation and matching read. Building one copies no payload bytes (strings share
/// storage with the decoded message).
enum IncomingEvent: Sendable {
    case login(LoginEvent)
    case stat(StatEvent)

    struct LoginEvent: Sendable {
        var id: String
        var namespace: String
        var userID: String
    }

    struct StatEvent: Sendable {
        var id: String
        var namespace: String
        var userID: String
        /// nil when the message has no payload at all.
        var payload: StatPayload?
    }

    struct StatPayload: Sendable {
        var statCode: String
        var latestValue: Double
        var inc: Double
    }

    var kind: EventKind {
        switch self {
        case .login: .login
        case .stat: .stat
        }
    }
}

enum EventKind: String, Sendable, CaseIterable {
    case login
    case stat
}
