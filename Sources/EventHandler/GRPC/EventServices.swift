import EventRules
import GRPCCore
import GameEvents
import SwiftProtobuf

/// When the event methods answer OK (`ACK_MODE`).
enum AcknowledgementMode: String, Sendable, CaseIterable {
    /// Once the event is in the buffer (the incumbent's behaviour; a crash can lose one flush window).
    case buffered
    /// Once the flush holding the event has committed (group commit: a flush's callers all wait
    /// for it together).
    case durable
}

/// What the two event methods share: the ingest path, and how and when to answer.
struct EventCallHandler: Sendable {
    let ingestor: EventIngestor
    let flusher: Flusher
    let mode: AcknowledgementMode

    /// Ingests one event and throws the gRPC status for an outcome that is not OK. In durable
    /// mode an accepted event (or a repeat of one held here) is answered once it has committed.
    func handle(_ event: IncomingEvent, arrived: UInt64) async throws {
        let outcome = await ingestor.ingest(event, receivedAt: arrived)
        if mode == .durable, outcome == .accepted || outcome == .ignored(.duplicate) {
            let ticket = flusher.commitTicket(userID: event.userID)
            guard await flusher.waitForCommit(ticket) else {
                throw RPCError(code: .unavailable, message: "the service stopped before this event was committed; retry")
            }
        }
        try answer(outcome)
    }
}

/// The platform's two event methods (wire.md). Each maps its message to an `IncomingEvent`, hands
/// it to the ingest path and turns the outcome into the answer the bridge understands:
/// OK for stored or deliberately ignored events, INVALID_ARGUMENT naming the field for bad input
/// (never retried usefully), RESOURCE_EXHAUSTED / UNAVAILABLE for "deliver again later".
/// Each call's time, from the handler's start to its answer, goes to
/// `grpc_request_duration_seconds{method}`; the same clock reading is the event's arrival.
struct LoginEventService: Accelbyte_Iam_Account_V1_UserAuthenticationUserLoggedInService.SimpleServiceProtocol {
    let handler: EventCallHandler
    let metrics: ServiceMetrics

    func onMessage(
        request: Accelbyte_Iam_Account_V1_UserLoggedIn, context: ServerContext
    ) async throws -> Google_Protobuf_Empty {
        let arrived = MonotonicTime.now
        defer { metrics.loginRequestDuration.recordNanoseconds(Int64(MonotonicTime.now &- arrived)) }
        try await handler.handle(IncomingEvent(request), arrived: arrived)
        return Google_Protobuf_Empty()
    }
}

struct StatEventService: Accelbyte_Social_Statistic_V1_StatisticStatItemUpdatedService.SimpleServiceProtocol {
    let handler: EventCallHandler
    let metrics: ServiceMetrics

    func onMessage(
        request: Accelbyte_Social_Statistic_V1_StatItemUpdated, context: ServerContext
    ) async throws -> Google_Protobuf_Empty {
        let arrived = MonotonicTime.now
        defer { metrics.statRequestDuration.recordNanoseconds(Int64(MonotonicTime.now &- arrived)) }
        try await handler.handle(IncomingEvent(request), arrived: arrived)
        return Google_Protobuf_Empty()
    }
}

/// Throws the gRPC status for an outcome that is not OK.
private func answer(_ outcome: IngestOutcome) throws {
    switch outcome {
    case .accepted, .ignored:
        return
    case .rejected(let field, let reason):
        throw RPCError(code: .invalidArgument, message: "\(field.rawValue): \(reason)")
    case .overloaded:
        throw RPCError(code: .resourceExhausted, message: "event buffer is full (BUFFER_SIZE_LIMIT); retry later")
    case .unavailable:
        throw RPCError(code: .unavailable, message: "the service is shutting down; retry later")
    case .deferred(.inFlightElsewhere):
        throw RPCError(code: .unavailable, message: "id: another delivery of this event is being applied; retry later")
    case .deferred(.dedupUnavailable):
        throw RPCError(code: .unavailable, message: "id: deduplication store (Redis) unreachable and DEDUP_FAIL_MODE=closed; retry later")
    }
}
