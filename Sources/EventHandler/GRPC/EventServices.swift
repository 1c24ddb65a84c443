import GRPCCore
import GameEvents
import SwiftProtobuf

/// The platform's two event methods (wire.md). Each maps its message to an `IncomingEvent`, hands
/// it to the ingest path and turns the outcome into the answer the bridge understands:
/// OK for stored or deliberately ignored events, INVALID_ARGUMENT naming the field for bad input
/// (never retried usefully), RESOURCE_EXHAUSTED / UNAVAILABLE for "deliver again later".
/// Each call's time, from the handler's start to its answer, goes to
/// `grpc_request_duration_seconds{method}`; the same clock reading is the event's arrival.
struct LoginEventService: Accelbyte_Iam_Account_V1_UserAuthenticationUserLoggedInService.SimpleServiceProtocol {
    let ingestor: EventIngestor
    let metrics: ServiceMetrics

    func onMessage(
        request: Accelbyte_Iam_Account_V1_UserLoggedIn, context: ServerContext
    ) async throws -> Google_Protobuf_Empty {
        let arrived = MonotonicTime.now
        defer { metrics.loginRequestDuration.recordNanoseconds(Int64(MonotonicTime.now &- arrived)) }
        try answer(ingestor.ingest(IncomingEvent(request), from: .grpc, receivedAt: arrived))
        return Google_Protobuf_Empty()
    }
}

struct StatEventService: Accelbyte_Social_Statistic_V1_StatisticStatItemUpdatedService.SimpleServiceProtocol {
    let ingestor: EventIngestor
    let metrics: ServiceMetrics

    func onMessage(
        request: Accelbyte_Social_Statistic_V1_StatItemUpdated, context: ServerContext
    ) async throws -> Google_Protobuf_Empty {
        let arrived = MonotonicTime.now
        defer { metrics.statRequestDuration.recordNanoseconds(Int64(MonotonicTime.now &- arrived)) }
        try answer(ingestor.ingest(IncomingEvent(request), from: .grpc, receivedAt: arrived))
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
    }
}
