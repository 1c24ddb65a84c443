/// What the ingest path decided about one event; the transport turns it into its own answer
/// (gRPC status now, a Kafka skip or pause later).
enum IngestOutcome: Sendable, Equatable {
    /// In the buffer: it will be written by a coming flush.
    case accepted
    /// Not for us, or moves no goal; acknowledged and never stored (retrying would not help).
    case ignored(IgnoreReason)
    /// Bad input (wire.md "What a valid event is"); `field` names the offending field.
    case rejected(field: String, reason: String)
    /// The buffer is at `BUFFER_SIZE_LIMIT`: deliver again later.
    case overloaded
    /// The service is draining for shutdown: deliver again later (elsewhere).
    case unavailable
}

enum IgnoreReason: String, Sendable {
    case otherNamespace = "other_namespace"
    case noMatchingGoal = "no_matching_goal"
}
