/// The fields validation can refuse, named as in wire.md (the gRPC error message starts with it).
public enum EventField: String, Sendable, CaseIterable {
    case userID = "user_id"
    case id
    case payload
    case statCode = "payload.stat_code"
    case latestValue = "payload.latest_value"
    case inc = "payload.inc"
}
