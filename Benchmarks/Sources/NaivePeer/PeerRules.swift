import Buffer
import Catalog
import EventRules

/// What to do with one event.
enum EventDecision: Sendable {
    /// Write these rows for this user, then answer OK.
    case write(userID: String, changes: [GoalUpdate])
    /// Answer OK and store nothing (another namespace, or no goal follows the event).
    case ignore
    /// Answer INVALID_ARGUMENT naming the field.
    case reject(field: String, reason: String)
}

/// The service's own rules for one event (EventRules: the same validation and the same goal
/// matching, so both answer a bad event alike and move the same goals), with nothing in
/// between: no deduplication, no buffer. The peer is the incumbent's way of working, which had
/// neither.
struct PeerRules: Sendable {
    let namespace: String
    let matcher: GoalMatcher

    init(namespace: String, catalog: Catalog) {
        self.namespace = namespace
        self.matcher = GoalMatcher(catalog: catalog)
    }

    func decide(_ event: IncomingEvent) -> EventDecision {
        switch EventValidator.check(event, namespace: namespace) {
        case .otherNamespace:
            return .ignore
        case .invalid(let field, let reason):
            return .reject(field: field.rawValue, reason: reason)
        case .valid:
            let updates = matcher.updates(for: event)
            return updates.isEmpty ? .ignore : .write(userID: event.userID, changes: updates)
        }
    }
}
