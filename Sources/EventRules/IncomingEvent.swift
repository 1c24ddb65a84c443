/// An event as the ingest path sees it, whatever carried it (gRPC now, Kafka later): only the
/// fields validation and matching read. Building one copies no payload bytes (strings share
/// storage with the decoded message).
public enum IncomingEvent: Sendable, Equatable {
    case login(LoginEvent)
    case stat(StatEvent)

    public struct LoginEvent: Sendable, Equatable {
        public var id: String
        public var namespace: String
        public var userID: String

        public init(id: String, namespace: String, userID: String) {
            self.id = id
            self.namespace = namespace
            self.userID = userID
        }
    }

    public struct StatEvent: Sendable, Equatable {
        public var id: String
        public var namespace: String
        public var userID: String
        /// nil when the message has no payload at all.
        public var payload: StatPayload?

        public init(id: String, namespace: String, userID: String, payload: StatPayload?) {
            self.id = id
            self.namespace = namespace
            self.userID = userID
            self.payload = payload
        }
    }

    public struct StatPayload: Sendable, Equatable {
        public var statCode: String
        public var latestValue: Double
        public var inc: Double

        public init(statCode: String, latestValue: Double, inc: Double) {
            self.statCode = statCode
            self.latestValue = latestValue
            self.inc = inc
        }
    }

    public var kind: EventKind {
        switch self {
        case .login: .login
        case .stat: .stat
        }
    }
}

public enum EventKind: String, Sendable, CaseIterable {
    case login
    case stat
}
