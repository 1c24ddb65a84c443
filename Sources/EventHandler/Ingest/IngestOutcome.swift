import EventRules

/// What the ingest path decided about one event; the transport turns it into its own answer
/// (gRPC status now, a Kafka skip or pause later).
enum IngestOutcome: Sendable, Equatable {
    /// In the buffer: it will be written by a coming flush.
    case accepted
    /// Not for us, or moves no goal; acknowledged and never stored (retrying would not help).
    case ignored(IgnoreReason)
    /// Bad input (wire.md "What a valid event is"); `field` names the offending field.
    case rejected(field: EventField, reason: String)
    /// A memory limit is reached (`Pushback` says which): deliver again later.
    case overloaded(Pushback)
    /// The service is draining for shutdown: deliver again later (elsewhere).
    case unavailable
    /// Deduplication cannot let it in yet: deliver again later.
    case deferred(DeferReason)

    /// The counted outcome: a closed set, so metric label sets stay bounded.
    var counted: CountedOutcome {
        switch self {
        case .accepted: .accepted
        case .ignored(let reason): .ignored(reason)
        case .rejected(let field, _): .rejected(RejectReason(field))
        case .overloaded(let limit): .rejected(limit.rejectReason)
        case .unavailable: .rejected(.shuttingDown)
        case .deferred(let reason): .rejected(reason.rejectReason)
        }
    }
}

/// Where an event came from: the `source` label of the event counters.
enum EventSource: String, Sendable, CaseIterable {
    case grpc
    case kafka
}

enum IgnoreReason: String, Sendable, CaseIterable {
    case otherNamespace = "other_namespace"
    case noMatchingGoal = "no_matching_goal"
    /// Its id was applied already (or is in the buffer): acknowledged, not applied again.
    case duplicate
}

/// Which memory limit pushed an event back. Each bounds what a database outage can make the
/// service hold: entries, ids of events not yet committed, calls waiting for a commit.
enum Pushback: String, Sendable, CaseIterable {
    /// The buffer is at `BUFFER_SIZE_LIMIT` entries.
    case bufferFull = "buffer_full"
    /// `BUFFER_EVENT_ID_LIMIT` ids of accepted events wait for their commit.
    case eventIDLimit = "event_id_limit"
    /// `ACK_WAITING_LIMIT` calls wait for their commit (`ACK_MODE=durable`).
    case waitingLimit = "ack_waiting_limit"

    /// Dense index into `allCases`.
    var index: Int {
        switch self {
        case .bufferFull: 0
        case .eventIDLimit: 1
        case .waitingLimit: 2
        }
    }

    var rejectReason: RejectReason {
        switch self {
        case .bufferFull: .bufferFull
        case .eventIDLimit: .eventIDLimit
        case .waitingLimit: .ackWaitingLimit
        }
    }

    /// The setting that sets the limit.
    var setting: String {
        switch self {
        case .bufferFull: "BUFFER_SIZE_LIMIT"
        case .eventIDLimit: "BUFFER_EVENT_ID_LIMIT"
        case .waitingLimit: "ACK_WAITING_LIMIT"
        }
    }

    /// The answer's words: which setting, and what to do.
    var message: String {
        switch self {
        case .bufferFull: "event buffer is full (BUFFER_SIZE_LIMIT); retry later"
        case .eventIDLimit: "too many accepted events wait for their commit (BUFFER_EVENT_ID_LIMIT); retry later"
        case .waitingLimit: "too many calls wait for their commit (ACK_WAITING_LIMIT); retry later"
        }
    }
}

/// Why deduplication holds an event back for now.
enum DeferReason: String, Sendable, CaseIterable {
    /// Another delivery of the same id holds its claim and has not committed it yet.
    case inFlightElsewhere = "duplicate_in_flight"
    /// Redis is unreachable and `DEDUP_FAIL_MODE=closed`.
    case dedupUnavailable = "dedup_unavailable"

    var rejectReason: RejectReason {
        switch self {
        case .inFlightElsewhere: .duplicateInFlight
        case .dedupUnavailable: .dedupUnavailable
        }
    }
}

/// Why an event was not taken: the `reason` label of `events_rejected_total`.
enum RejectReason: String, Sendable, CaseIterable {
    case invalidUserID = "invalid_user_id"
    case invalidID = "invalid_id"
    case invalidPayload = "invalid_payload"
    case invalidStatCode = "invalid_stat_code"
    case invalidLatestValue = "invalid_latest_value"
    case invalidInc = "invalid_inc"
    /// Back-pressure: the buffer is at its limit.
    case bufferFull = "buffer_full"
    /// Back-pressure: too many ids of accepted events wait for their commit.
    case eventIDLimit = "event_id_limit"
    /// Back-pressure: too many durable calls wait for their commit.
    case ackWaitingLimit = "ack_waiting_limit"
    /// Draining for shutdown.
    case shuttingDown = "shutting_down"
    /// Deduplication: another delivery of the id is in flight.
    case duplicateInFlight = "duplicate_in_flight"
    /// Deduplication: Redis unreachable in closed mode.
    case dedupUnavailable = "dedup_unavailable"

    init(_ field: EventField) {
        switch field {
        case .userID: self = .invalidUserID
        case .id: self = .invalidID
        case .payload: self = .invalidPayload
        case .statCode: self = .invalidStatCode
        case .latestValue: self = .invalidLatestValue
        case .inc: self = .invalidInc
        }
    }
}

/// An outcome as the counters tell them apart.
enum CountedOutcome: Hashable, Sendable, CaseIterable {
    case accepted
    case ignored(IgnoreReason)
    case rejected(RejectReason)

    static let allCases: [CountedOutcome] =
        [.accepted] + IgnoreReason.allCases.map { .ignored($0) } + RejectReason.allCases.map { .rejected($0) }

    /// Dense index into `allCases`, without a search.
    var index: Int {
        switch self {
        case .accepted: 0
        case .ignored(let reason): 1 + IgnoreReason.allCases.firstIndex(of: reason)!
        case .rejected(let reason): 1 + IgnoreReason.allCases.count + RejectReason.allCases.firstIndex(of: reason)!
        }
    }
}
