import Catalog

/// The wire contract's rules for a valid event (wire.md, "What a valid event is").
///
/// Checked in this order, so an answer is stable: namespace first (an event of another
/// namespace is not an error, whatever else it carries), then the fields.
public enum EventValidator {
    public static let maxUserIDBytes = 100
    public static let maxStatCodeBytes = 100
    public static let maxEventIDBytes = 200

    public enum Verdict: Equatable, Sendable {
        case valid
        case otherNamespace
        case invalid(field: EventField, reason: String)
    }

    public static func check(_ event: IncomingEvent, namespace expected: String) -> Verdict {
        switch event {
        case .login(let login):
            return checkCommon(id: login.id, namespace: login.namespace, userID: login.userID, expected: expected)
        case .stat(let stat):
            let common = checkCommon(id: stat.id, namespace: stat.namespace, userID: stat.userID, expected: expected)
            guard common == .valid else { return common }
            guard let payload = stat.payload else {
                return .invalid(field: .payload, reason: "is required for a stat event")
            }
            if payload.statCode.isEmpty {
                return .invalid(field: .statCode, reason: "must not be empty")
            }
            if payload.statCode.utf8.count > maxStatCodeBytes {
                return .invalid(field: .statCode, reason: "must be at most \(maxStatCodeBytes) bytes, got \(payload.statCode.utf8.count)")
            }
            if !payload.latestValue.isFinite {
                return .invalid(field: .latestValue, reason: "must be a finite number, got \(payload.latestValue)")
            }
            if !payload.inc.isFinite {
                return .invalid(field: .inc, reason: "must be a finite number, got \(payload.inc)")
            }
            return .valid
        }
    }

    private static func checkCommon(id: String, namespace: String, userID: String, expected: String) -> Verdict {
        if namespace != expected { return .otherNamespace }
        if userID.isEmpty { return .invalid(field: .userID, reason: "must not be empty") }
        if userID.utf8.count > maxUserIDBytes {
            return .invalid(field: .userID, reason: "must be at most \(maxUserIDBytes) bytes, got \(userID.utf8.count)")
        }
        // No NUL (PostgreSQL text cannot hold one: the row would fail its flush) and no other
        // control character (it would reach the logs raw).
        if let refusal = ControlCharacters.refusal(in: userID) { return .invalid(field: .userID, reason: refusal) }
        if id.utf8.count > maxEventIDBytes {
            return .invalid(field: .id, reason: "must be at most \(maxEventIDBytes) bytes, got \(id.utf8.count)")
        }
        if let refusal = ControlCharacters.refusal(in: id) { return .invalid(field: .id, reason: refusal) }
        return .valid
    }
}
