import EventRules
import GameEvents
import NIOCore
import UnaryGRPC

/// When the event methods answer OK (`ACK_MODE`).
enum AcknowledgementMode: String, Sendable, CaseIterable {
    /// Once the event is in the buffer (the incumbent's behaviour; a crash can lose one flush window).
    case buffered
    /// Once the flush holding the event has committed (group commit: a flush's callers all wait
    /// for it together).
    case durable
}

/// The platform's two event methods (wire.md), as the gRPC server calls them: decode the
/// message, hand the event to the ingest pipeline, answer from its outcome: OK for stored or
/// deliberately ignored events, INVALID_ARGUMENT naming the field for bad input (never retried
/// usefully), RESOURCE_EXHAUSTED / UNAVAILABLE for "deliver again later". In durable mode an
/// accepted event (or a repeat of one held here) is answered when its receipt says the flush
/// holding it committed. Everything runs on the connection's event loop until a Redis reply or a
/// commit calls back; no task per call.
enum EventMethods {
    static let loginService = "accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService"
    static let statService = "accelbyte.social.statistic.v1.StatisticStatItemUpdatedService"

    static func methods(ingestor: EventIngestor) -> [GRPCMethod] {
        [(loginService, IncomingEvent.MessageKind.login), (statService, .stat)].map { service, kind in
            GRPCMethod(service: service, name: "OnMessage", recordsRequestDuration: true, handler: .unary { call in
                do {
                    handle(try IncomingEvent(serialized: Array(call.request.readableBytesView), as: kind), call, ingestor)
                } catch {
                    call.fail(GRPCStatus(.invalidArgument, "the request is not a valid \(kind.messageName): \(error)"))
                }
            })
        }
    }

    private static func handle(_ event: IncomingEvent, _ call: GRPCCall, _ ingestor: EventIngestor) {
        ingestor.ingest(event, receivedAt: call.arrived) { outcome, receipt in
            guard let receipt else { return answer(call, outcome) }
            let wait = receipt.whenCommitted { committed in
                if committed {
                    call.respond(emptyResponse)
                } else {
                    call.fail(GRPCStatus(.unavailable, "the service stopped before this event was committed; retry"))
                }
            }
            // A call whose deadline passes (or that the client gives up) stops waiting at once.
            call.onCancel { wait.cancel() }
        }
    }

    static func answer(_ call: GRPCCall, _ outcome: IngestOutcome) {
        switch outcome {
        case .accepted, .ignored:
            call.respond(emptyResponse)
        case .rejected(let field, let reason):
            call.fail(GRPCStatus(.invalidArgument, "\(field.rawValue): \(reason)"))
        case .overloaded(let limit):
            call.fail(GRPCStatus(.resourceExhausted, limit.message))
        case .unavailable:
            call.fail(GRPCStatus(.unavailable, "the service is shutting down; retry later"))
        case .deferred(.inFlightElsewhere):
            call.fail(GRPCStatus(.unavailable, "id: another delivery of this event is being applied; retry later"))
        case .deferred(.dedupUnavailable):
            call.fail(GRPCStatus(.unavailable, "id: deduplication store (Redis) unreachable and DEDUP_FAIL_MODE=closed; retry later"))
        }
    }

    /// google.protobuf.Empty, serialized: no bytes.
    static let emptyResponse = ByteBuffer()
}
